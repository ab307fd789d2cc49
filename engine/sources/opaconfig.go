package sources

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/open-policy-agent/opa/v1/config"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/discovery"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
	"helm.sh/helm/v4/pkg/strvals"

	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/internal/patherr"
	"github.com/geoscope/geoscope/internal/secretfile"
)

// HasOPAConfig reports whether an OPA configuration is given: a file
// (--config), overrides (--set, --set-file), or both.
func (c Config) HasOPAConfig() bool {
	return c.OPAConfig != "" || c.overridden()
}

// overridden reports whether --set or --set-file is given.
func (c Config) overridden() bool {
	return len(c.OPASet) > 0 || len(c.OPASetFile) > 0
}

// ReadOPAConfig reads the OPA configuration as OPA's runtime does: the file
// at c.OPAConfig (if any), with ${NAME} replaced by the environment
// variable NAME where it is set (left as written where it is not), which
// must be YAML or JSON; then c.OPASet and c.OPASetFile merged over it, the
// overrides winning. Errors name the flag and the file.
func (c Config) ReadOPAConfig() ([]byte, error) {
	raw, _, err := c.readOPAConfig()
	return raw, err
}

// readOPAConfig is ReadOPAConfig, also returning the parsed document
// (never nil: an empty file is an empty mapping).
func (c Config) readOPAConfig() ([]byte, map[string]any, error) {
	raw, doc, err := readOPAConfigFile(c.OPAConfig)
	if err != nil || !c.overridden() {
		return raw, doc, err
	}
	overrides, err := c.overrides()
	if err != nil {
		return nil, nil, err
	}
	mergeInto(doc, overrides)
	// JSON is YAML: OPA's parsers read either.
	if raw, err = json.Marshal(doc); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrConfig, c.opaConfigName(), err)
	}
	return raw, doc, nil
}

// overrides parses --set and --set-file as OPA's runtime does, with the
// parser OPA's own was taken from (Helm's strvals): "a.b=v,c[0]=w" sets
// nested keys, values typed as YAML scalars (true, 10); --set-file reads
// each value from a file, trimmed (a token from a mounted secret). ${NAME}
// in a --set is replaced from the environment, as in the file. The
// parser's errors name the key, not the value, which may be a credential.
func (c Config) overrides() (map[string]any, error) {
	out := map[string]any{}
	for _, s := range c.OPASet {
		if err := strvals.ParseInto(substituteEnv(s), out); err != nil {
			return nil, fmt.Errorf("%w: --set: %v (expected KEY=VALUE[,KEY=VALUE...])", ErrConfig, err)
		}
	}
	var unreadable error
	secrets := secretFiles(c.OPASetFile)
	read := func(path []rune) (any, error) {
		var b []byte
		var err error
		if key, secret := secrets[string(path)]; secret {
			b, err = secretfile.ReadPrivate(string(path), key+"="+string(path),
				"it holds a credential of the OPA configuration, which whoever reads it can use as this server does")
		} else {
			b, err = os.ReadFile(string(path))
		}
		var pathErr *fs.PathError
		switch {
		case err == nil:
		case errors.As(err, &pathErr):
			unreadable = fmt.Errorf("%s: %v", string(path), patherr.Cause(err))
			return nil, unreadable
		default: // open to other users
			unreadable = err
			return nil, unreadable
		}
		return strings.TrimSpace(string(b)), nil
	}
	for _, s := range c.OPASetFile {
		if err := strvals.ParseIntoFile(s, out, read); err != nil {
			if unreadable != nil {
				return nil, fmt.Errorf("%w: --set-file: %v", ErrConfig, unreadable)
			}
			return nil, fmt.Errorf("%w: --set-file: %v (expected KEY=FILE[,KEY=FILE...])", ErrConfig, err)
		}
	}
	return out, nil
}

// secretFiles are the files of --set-file values that hold credentials,
// each with its key: those under a service's credentials (a bearer token,
// an OAuth2 client secret, a key's passphrase). Such a file is read only
// if other users of the system cannot read it, as --tls-key and the
// ledger key are (secretfile.ReadPrivate); OPA reads it whatever its mode.
// A key's "key" is left out: it is most often a public key, which a
// ConfigMap mounts readable by all (and a key's private_key is refused
// whatever its file: a verifying server holds no signing key).
//
// The KEY=FILE pairs are split at commas and at the first "=", as the
// parser splits them when neither is escaped; a pair it reads otherwise
// is read without the check.
func secretFiles(setFiles []string) map[string]string {
	out := map[string]string{}
	for _, s := range setFiles {
		for _, pair := range strings.Split(s, ",") {
			key, file, ok := strings.Cut(pair, "=")
			if !ok {
				continue
			}
			parts := strings.Split(key, ".")
			if slices.Contains(parts, "credentials") {
				out[file] = key
			}
		}
	}
	return out
}

// mergeInto merges src into dst as OPA's runtime merges --set over the
// file: mappings merge key by key, anything else in src replaces what dst
// holds.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		sub, isMap := v.(map[string]any)
		into, intoMap := dst[k].(map[string]any)
		if isMap && intoMap {
			mergeInto(into, sub)
			continue
		}
		dst[k] = v
	}
}

// opaConfigName names the OPA configuration in errors: the file, the
// overrides, or both.
func (c Config) opaConfigName() string {
	switch {
	case c.OPAConfig == "":
		return "--set"
	case c.overridden():
		return "--config " + c.OPAConfig + " with --set"
	}
	return "--config " + c.OPAConfig
}

// readOPAConfigFile reads and parses the file at path; no path is an
// empty configuration.
func readOPAConfigFile(path string) ([]byte, map[string]any, error) {
	if path == "" {
		return nil, map[string]any{}, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: --config %s: %v", ErrConfig, path, patherr.Cause(err))
	}
	raw = []byte(substituteEnv(string(raw)))
	var doc any
	if err := util.Unmarshal(raw, &doc); err != nil {
		return nil, nil, fmt.Errorf("%w: --config %s: not YAML or JSON: %v", ErrConfig, path, err)
	}
	m, ok := doc.(map[string]any)
	switch {
	case doc == nil:
		m = map[string]any{}
	case !ok:
		return nil, nil, fmt.Errorf("%w: --config %s: expected a mapping at the top level, got %T", ErrConfig, path, doc)
	}
	return raw, m, nil
}

// envReference is OPA's ${NAME} notation (the shortest match, as OPA's
// own loader reads it). OPA keeps that loader in an internal package, so
// the substitution is repeated here, with the same rule: a name that is
// not set stays as written, one set to "" becomes "".
var envReference = regexp.MustCompile(`(?U:\$\{.*\})`)

func substituteEnv(s string) string {
	return envReference.ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := os.LookupEnv(ref[2 : len(ref)-1]); ok {
			return v
		}
		return ref
	})
}

// opaConfig reads c.OPAConfig and returns it as OPA's plugin manager is to
// be given it, after the checks OPA itself leaves out:
//
//   - Unknown options are refused, naming them (OPA only warns): a
//     misspelt decision_logs would switch the audit trail off in silence.
//   - The deprecated single "bundle" block and "discovery" are refused:
//     the first has no "signing" block to require signatures with, and a
//     discovery bundle could replace the configuration (keys included)
//     from outside the file an operator reviews.
//   - Keys must be public keys of an asymmetric algorithm, as for
//     --verification-key.
//   - Every bundle must be signed when keys are configured (see
//     requireSignatures).
//
// Then OPA's own parsing runs on the result (services, credentials,
// plugins), without starting anything, so that a configuration error is
// reported before the server opens its ledger.
func (c Config) opaConfig() ([]byte, error) {
	_, doc, err := c.readOPAConfig()
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, c.opaConfigName(), fmt.Sprintf(format, args...))
	}
	if _, ok := doc["bundle"]; ok {
		return nil, bad(`the deprecated "bundle" block is not supported (it cannot require a signature); name the bundle under "bundles" instead`)
	}
	if _, ok := doc["discovery"]; ok {
		return nil, bad(`"discovery" is not supported: a discovery bundle could replace this configuration, keys included; name the bundles under "bundles"`)
	}
	// OPA's status plugin reports OPA's own Prometheus metrics with
	// prometheus: true; the server here has none of them (its metrics are
	// at GET /metrics), so the option would report nothing, in silence.
	if status, _ := doc["status"].(map[string]any); status != nil && status["prometheus"] == true {
		return nil, bad(`"status.prometheus" has no effect here: geoscope's metrics are at GET /metrics; leave the option out`)
	}
	if bundles, _ := doc["bundles"].(map[string]any); len(bundles) == 0 {
		return nil, bad(`no bundles are configured: name the policy and registry bundles under "bundles"`)
	}
	if err := withoutEffect(doc); err != nil {
		return nil, bad("%v", err)
	}
	// OPA's tracing reads distributed_tracing.exclude_paths (its
	// configuration docs recommend it for /health** and /metrics), yet
	// the list of known options ParseConfig checks lacks it: OPA warns
	// about a key it honours, and the warning would refuse it here. None
	// of OPA's plugins reads the block (geoscope's tracing reads the file
	// itself, strictly, patterns included), so the key is left out of
	// what OPA is given; a misspelt sibling is still refused.
	if dt, _ := doc["distributed_tracing"].(map[string]any); dt != nil {
		delete(dt, "exclude_paths")
	}
	if bundles, _ := doc["bundles"].(map[string]any); bundles != nil {
		if err := checkPolling(bundles); err != nil {
			return nil, bad("%v", err)
		}
	}
	if err := checkKeys(doc["keys"]); err != nil {
		return nil, bad("%v", err)
	}
	if err := checkCredentialFiles(doc["services"]); err != nil {
		return nil, bad("%v", err)
	}
	boundDecisionLogBuffer(doc)
	out, err := requireSignatures(doc, c.VerificationKeyPEM, c.VerificationKeyID, c.VerificationAlg)
	if err != nil {
		return nil, bad("%v", err)
	}
	parsed, err := config.ParseConfig(out, c.instanceID())
	if err != nil {
		return nil, bad("%v", err)
	}
	if len(parsed.Warnings) > 0 {
		return nil, bad("%s", strings.Join(parsed.Warnings, "; "))
	}
	// The manager and the plugins' configurations are built and dropped:
	// an undefined service or a malformed bundle entry is found here.
	m, err := plugins.New(out, c.instanceID(), inmem.New())
	if err != nil {
		return nil, bad("%v", err)
	}
	if _, err := discovery.New(m, discovery.BootConfig(doc)); err != nil {
		return nil, bad("%v", err)
	}
	if err := checkOCIStore(doc, m, parsed.PersistenceDirectory); err != nil {
		return nil, bad("%v", err)
	}
	return out, nil
}

// checkOCIStore refuses an OCI bundle source whose local store OPA could
// not create. OPA's OCI downloader keeps the layers it pulls in a
// directory: persistence_directory/oci when persistence_directory is set,
// else a new directory under the temporary directory ($TMPDIR, else
// /tmp). When it cannot create that directory it panics, inside the
// plugin manager's start: a Go stack trace instead of an error naming the
// setting. That is the container image under a read-only root with no
// volume at /tmp, or TMPDIR naming a directory that does not exist.
//
// Whether a directory can be written to is known only by writing to it
// (modes, read-only mounts, ACLs and security modules all decide), so a
// directory is created there and removed at once. It is the one thing
// this check leaves on disk, for a moment, before the ledger opens.
func checkOCIStore(doc map[string]any, m *plugins.Manager, persistence *string) error {
	name, service := ociBundle(doc, m)
	if name == "" {
		return nil
	}
	source := fmt.Sprintf("bundles.%s: service %q is an OCI registry (type: oci)", name, service)
	if persistence != nil {
		dir := filepath.Join(*persistence, "oci")
		// OPA creates the directory and its parents.
		if err := probeWritable(dir, true); err != nil {
			return fmt.Errorf("%s, whose layers OPA keeps in persistence_directory/oci (%s): %v; "+
				"give a persistence_directory this process can write to", source, dir, err)
		}
		return nil
	}
	// OPA creates a directory in the temporary directory, not the
	// temporary directory itself.
	if err := probeWritable(os.TempDir(), false); err != nil {
		return fmt.Errorf("%s, whose layers OPA keeps in a new directory under the temporary directory %s "+
			"(TMPDIR, else /tmp), and none can be created there: %v; set persistence_directory to a directory "+
			"this process can write to (in the container image, one under /data), or TMPDIR to one", source, os.TempDir(), err)
	}
	return nil
}

// ociBundle is the first bundle, by name, that is downloaded from an OCI
// registry, and that registry's service; "" when there is none. A bundle
// that names no service is downloaded from one OPA picks among them all,
// so any OCI service counts for it.
func ociBundle(doc map[string]any, m *plugins.Manager) (name, service string) {
	isOCI := func(s string) bool { return strings.EqualFold(m.Client(s).Config().Type, "oci") }
	services := slices.Sorted(slices.Values(m.Services()))
	bundles, _ := doc["bundles"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(bundles)) {
		b, _ := bundles[name].(map[string]any)
		if resource, _ := b["resource"].(string); strings.HasPrefix(resource, "file://") {
			continue
		}
		if s, _ := b["service"].(string); s != "" {
			if isOCI(s) {
				return name, s
			}
			continue
		}
		for _, s := range services {
			if isOCI(s) {
				return name, s
			}
		}
	}
	return "", ""
}

// probeWritable reports whether a directory can be created in dir. With
// parents, dir and its missing parents may be created too, and the
// nearest one that exists is probed.
func probeWritable(dir string, parents bool) error {
	for parents {
		_, err := os.Stat(dir)
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return patherr.Cause(err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	probe, err := os.MkdirTemp(dir, ".geoscope-write-check-")
	if err != nil {
		return patherr.Cause(err)
	}
	return os.Remove(probe)
}

// instanceID names this process to OPA's plugins: the "id" label of its
// decision logs and status reports, which tell replicas apart.
func (c Config) instanceID() string {
	if c.InstanceID != "" {
		return c.InstanceID
	}
	return defaultInstanceID
}

// defaultInstanceID is, as in OPA, drawn once per process.
var defaultInstanceID = uuid.NewString()

// ignoredOptions are options of OPA's configuration that OPA's runtime
// acts on and this server does not: accepted, they would switch nothing on,
// in silence.
var ignoredOptions = []struct{ path, why string }{
	{"server", "geoscope's HTTP server is set by its flags (serve --help)"},
	{"storage", "bundles are kept in memory; keep downloaded bundles across restarts with bundles.<name>.persist and a writable persistence_directory"},
	{"default_decision", "geoscope answers only its own decision paths"},
	{"default_authorization_decision", "geoscope's endpoints are authorized by --tokens-file"},
	{"nd_builtin_cache", "geoscope's decision-log events carry no builtin results"},
	{"decision_logs.request_context", "request headers are never logged: they may carry tokens and addresses"},
}

func withoutEffect(doc map[string]any) error {
	for _, o := range ignoredOptions {
		var v any = doc
		for part := range strings.SplitSeq(o.path, ".") {
			m, _ := v.(map[string]any)
			v = m[part]
		}
		if v != nil {
			return fmt.Errorf("%q has no effect here: %s; leave the option out", o.path, o.why)
		}
	}
	return nil
}

// decisionLogBufferBytes is the most, in compressed events, the
// decision-log plugin holds for upload when the configuration sets no
// limit of its own. OPA's default is no limit: while the collector is down
// or refuses the uploads, every event is kept and sent again, so memory
// grows with the outage until the process is killed, ledger writer and
// all: 6 MB of compressed events a minute at 650 decisions a second, held
// in about twice that of memory (the heap went from 35 to 120 MB in a
// five-minute outage). 32 MiB is about five minutes of events at that
// rate and fits beside the peak the memory limits of docs/operations.md
// are sized for; past it the oldest events are dropped, as OPA drops them
// at a limit it is given (the ledger is the durable record, decision logs
// are best effort).
const decisionLogBufferBytes = 32 << 20

// boundDecisionLogBuffer gives the decision_logs block the buffer limit
// above unless its reporting bounds the buffer itself: a byte limit of
// its own, the event buffer (bounded by a number of events, 10,000 by
// default), or a rate limit, which OPA refuses to combine with a byte
// limit (the rate then bounds what comes in).
func boundDecisionLogBuffer(doc map[string]any) {
	dl, ok := doc["decision_logs"].(map[string]any)
	if !ok {
		return
	}
	reporting, ok := dl["reporting"].(map[string]any)
	if !ok {
		if dl["reporting"] != nil {
			return // not a mapping: OPA's parser names the error
		}
		reporting = map[string]any{}
	}
	if reporting["buffer_size_limit_bytes"] != nil || reporting["max_decisions_per_second"] != nil || reporting["buffer_type"] == "event" {
		return
	}
	reporting["buffer_size_limit_bytes"] = decisionLogBufferBytes
	dl["reporting"] = reporting
}

// checkCredentialFiles refuses a service's credential file that other
// users of the system can read: a bearer token's token_path, or a client
// certificate's private_key. OPA reads them whatever their mode, the
// token at each request; here they are held to what --tls-key and the
// ledger key are (secretfile), and to what --set-file is for a credential.
// A file that is not there yet is left to OPA, which says so when it
// reads it. Services are a mapping of names, or a list of services with
// a name each, as OPA takes them.
func checkCredentialFiles(v any) error {
	services := map[string]any{}
	switch v := v.(type) {
	case map[string]any:
		services = v
	case []any:
		for i, s := range v {
			m, _ := s.(map[string]any)
			name, _ := m["name"].(string)
			services[cmp.Or(name, strconv.Itoa(i))] = m
		}
	}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		service, _ := services[name].(map[string]any)
		credentials, _ := service["credentials"].(map[string]any)
		for _, f := range []struct{ kind, field string }{{"bearer", "token_path"}, {"client_tls", "private_key"}} {
			kind, _ := credentials[f.kind].(map[string]any)
			path, _ := kind[f.field].(string)
			if path == "" {
				continue
			}
			what := fmt.Sprintf("services.%s.credentials.%s.%s %s", name, f.kind, f.field, path)
			err := secretfile.CheckPrivate(path, what, "whoever reads it can use the credential as this server does")
			var pathErr *fs.PathError
			if err != nil && !errors.As(err, &pathErr) {
				return err
			}
		}
	}
	return nil
}

// checkKeys refuses keys that do not belong on a verifying server: a
// shared secret (HS*), which would let it sign, and private keys.
func checkKeys(v any) error {
	if v == nil {
		return nil
	}
	keys, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("keys: expected a mapping of key ids, got %T", v)
	}
	for _, id := range slices.Sorted(maps.Keys(keys)) {
		k, ok := keys[id].(map[string]any)
		if !ok {
			return fmt.Errorf("keys.%s: expected a mapping, got %T", id, keys[id])
		}
		if _, ok := k["private_key"]; ok {
			return fmt.Errorf("keys.%s.private_key: a signing key does not belong on a verifying server; give only its public key", id)
		}
		alg, _ := k["algorithm"].(string)
		pem, _ := k["key"].(string)
		// OPA takes RS256 for a key without an algorithm; checked as
		// anything else, an EC key passed here and then failed every
		// download.
		if err := policy.CheckPublicKey([]byte(pem), alg); err != nil {
			return fmt.Errorf("keys.%s: %w", id, err)
		}
		if alg == "" {
			if err := policy.CheckPublicKey([]byte(pem), "RS256"); err != nil {
				return fmt.Errorf("keys.%s: no algorithm is given, so OPA takes RS256: %w; give the key's algorithm", id, err)
			}
		}
	}
	return nil
}

// checkPolling refuses polling delays under a second. OPA takes 0 and
// negative delays and then downloads the bundle in a loop, without pause:
// hundreds of downloads a second, each rebuilding what the server
// decides with.
func checkPolling(bundles map[string]any) error {
	for _, name := range slices.Sorted(maps.Keys(bundles)) {
		b, _ := bundles[name].(map[string]any)
		polling, _ := b["polling"].(map[string]any)
		for _, option := range []string{"min_delay_seconds", "max_delay_seconds"} {
			v, ok := polling[option]
			if !ok || v == nil {
				continue
			}
			if n, isNumber := seconds(v); !isNumber || n < 1 {
				return fmt.Errorf("bundles.%s.polling.%s is %v: give a number of seconds, at least 1", name, option, v)
			}
		}
	}
	return nil
}

// seconds reads a number of the configuration (OPA's reader gives
// json.Number).
func seconds(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	}
	return 0, false
}

// requireSignatures closes OPA's optional-signature trap. In an OPA
// configuration, top-level "keys" without a "signing" block on a bundle
// make signatures optional for that bundle: an unsigned bundle is
// accepted. geoscope requires them: when keys are configured (in the file
// or with --verification-key), every bundle without a "signing" block gets
// one naming the key, and with several keys and no way to choose, the
// configuration is refused. It returns the configuration as JSON.
func requireSignatures(cfg map[string]any, keyPEM []byte, keyID, alg string) ([]byte, error) {
	keys, _ := cfg["keys"].(map[string]any)
	if keyPEM != nil {
		if keys == nil {
			keys = map[string]any{}
		}
		if keyID == "" {
			keyID = policy.DefaultKeyID
		}
		if _, ok := keys[keyID]; ok {
			// One of the two would be dropped in silence, and bundles
			// signed with it rejected.
			return nil, fmt.Errorf("keys.%s is given here and by --verification-key (--verification-key-id %s); give the key in one place", keyID, keyID)
		}
		keys[keyID] = map[string]any{"key": string(keyPEM), "algorithm": alg}
		cfg["keys"] = keys
	}
	bundles, _ := cfg["bundles"].(map[string]any)
	ids := slices.Sorted(maps.Keys(keys))
	for _, name := range slices.Sorted(maps.Keys(bundles)) {
		if len(keys) == 0 {
			break
		}
		b, ok := bundles[name].(map[string]any)
		if !ok {
			continue
		}
		if signing, ok := b["signing"].(map[string]any); ok && len(signing) > 0 {
			// OPA verifies a signed bundle's files except those excluded:
			// an excluded data.json (or policy) could be changed without
			// the signature, widening a jurisdiction in a bundle that
			// still verifies.
			if excluded, _ := signing["exclude_files"].([]any); len(excluded) > 0 {
				return nil, fmt.Errorf("bundles.%s.signing.exclude_files: a file left out of the signature could be changed without it (a registry's data.json, a policy); sign every file", name)
			}
			continue
		}
		switch {
		case keyPEM != nil:
			b["signing"] = map[string]any{"keyid": keyID}
		case len(ids) == 1:
			b["signing"] = map[string]any{"keyid": ids[0]}
		default:
			return nil, fmt.Errorf("bundle %q has no \"signing\" block and several keys are configured (%s); "+
				"name one with bundles.%s.signing.keyid, or OPA would accept the bundle unsigned", name, strings.Join(ids, ", "), name)
		}
	}
	return json.Marshal(cfg)
}
