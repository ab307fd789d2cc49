package policy

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Type checking against the input and registry schemas.
//
// `opa check --strict --schema docs/schemas` catches a policy that reads a
// misspelt input field (input.joining.rol for role), through the
// default policy's annotation, which types input and the registry for
// package geoscope and every package under it. The server compiled the
// same policy without the schemas, so that such a mistake went live
// without a word: input.joining.rol is undefined, and an exemption that
// tests it never applies. With the schemas compiled
// in, the bundle is rejected as for any other compile error, naming the
// file, the line and the member, and the last good one keeps answering.
//
// A policy of an operator's own that does not carry the annotation is not
// typed, as with opa check.
//
// The schemas are embedded from schemas/, a copy of docs/schemas (where
// policy authors find them) that TestEmbeddedSchemasAreTheDocumented keeps
// identical.

//go:embed schemas
var schemaFiles embed.FS

// schemaSet is the embedded schemas as opa check --schema reads a
// directory: schemas/input.json is schema.input, schemas/registry/orders.json
// schema.registry.orders.
var schemaSet = sync.OnceValues(func() (*ast.SchemaSet, error) {
	ss := ast.NewSchemaSet()
	err := fs.WalkDir(schemaFiles, "schemas", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := schemaFiles.ReadFile(name)
		if err != nil {
			return err
		}
		var schema any
		if err := json.Unmarshal(raw, &schema); err != nil {
			return fmt.Errorf("schema %s: %w", name, err)
		}
		ref := ast.Ref{ast.SchemaRootDocument}
		for _, part := range strings.Split(strings.TrimSuffix(name, path.Ext(name)), "/")[1:] {
			ref = append(ref, ast.StringTerm(part))
		}
		ss.Put(ref, schema)
		return nil
	})
	return ss, err
})

// typed returns c set to type-check against the schemas.
func typed(c *ast.Compiler) (*ast.Compiler, error) {
	ss, err := schemaSet()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	return c.WithSchemas(ss).WithUseTypeCheckAnnotations(true), nil
}

// typeCheck compiles modules again against the schemas (for a policy some
// other loader compiled: OPA's bundle plugin).
func typeCheck(modules map[string]*ast.Module) error {
	c, err := typed(ast.NewCompiler())
	if err != nil {
		return err
	}
	if c.Compile(modules); c.Failed() {
		return fmt.Errorf("%w: %v", ErrBundle, c.Errors)
	}
	return nil
}
