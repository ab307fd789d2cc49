package registry

import _ "embed"

// The registry's validation rules are Rego (validation.rego, package
// geoscope.registry, tested with `opa test` like any policy) but they belong
// to the engine, not to the replaceable policy bundle: a bundle that left
// them out would otherwise switch validation off. The policy stage compiles
// them on their own and evaluates them over the registry data at every
// activation.

// ValidationRules is the Rego source of the built-in validation rules.
//
//go:embed validation.rego
var ValidationRules string

// ValidationFile is the name the built-in rules are compiled under; it is
// what error messages and locations show.
const ValidationFile = "engine/registry/validation.rego"

// ValidationQuery lists the registry's violations, each an object
// {"path", "message"}. The built-in rules define it; a policy bundle may
// add to it.
const ValidationQuery = "data.geoscope.registry.violations"
