package registry

import (
	"embed"
	"path"
)

// The registry's validation rules are Rego (validation.rego, package
// geoscope.registry, tested with `opa test` like any policy) but they belong
// to the engine, not to the replaceable policy bundle: a bundle that left
// them out would otherwise switch validation off. The policy stage compiles
// them on their own and evaluates them over the registry data at every
// activation.
//
// iso3166_2.rego, in the same package, is the generated list of ISO 3166-2
// subdivision codes they check jurisdictions against (see
// internal/gen).

//go:embed validation.rego iso3166_2.rego
var validationFiles embed.FS

// validationDir is the directory the built-in rules are compiled under;
// error messages and locations name their files in it.
const validationDir = "engine/registry"

// ValidationModules returns the Rego source of the built-in validation
// rules, by the file name they are compiled under.
func ValidationModules() map[string]string {
	entries, err := validationFiles.ReadDir(".")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		b, err := validationFiles.ReadFile(e.Name())
		if err != nil {
			panic(err)
		}
		out[path.Join(validationDir, e.Name())] = string(b)
	}
	return out
}

// ValidationQuery lists the registry's violations, each an object
// {"path", "message"}. The built-in rules define it; a policy bundle may
// add to it.
const ValidationQuery = "data.geoscope.registry.violations"
