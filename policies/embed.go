// Package policies embeds the default Rego policy bundle (root "geoscope").
// Test files are embedded too but skipped when the bundle is loaded; they
// run with `opa test` in CI.
package policies

import "embed"

// Bundle is the policy bundle tree.
//
//go:embed .manifest geoscope
var Bundle embed.FS
