package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// A small JSON Schema validator for the subset openapi.json uses. Keywords
// outside that subset are reported by checkKeywords, so the document cannot
// grow a constraint this validator would silently ignore.

// schemaKeywords are the keywords the validator understands; annotations
// (description, format, ...) are accepted and not checked.
var (
	schemaKeywords = []string{
		"$ref", "allOf", "anyOf", "not", "type", "const", "enum", "required", "properties",
		"additionalProperties", "items", "minItems", "maxItems", "uniqueItems", "minLength",
		"maxLength", "pattern", "minimum", "maximum",
	}
	schemaAnnotations = []string{"description", "format", "title", "examples", "default"}
)

// openAPI is the parsed document with a validator over its schemas.
type openAPI struct {
	doc map[string]any
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(openAPIDocument))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if dec.More() {
		t.Fatal("openapi.json holds more than one JSON value")
	}
	return &openAPI{doc: doc}
}

// decodeJSON decodes data the way the validator expects values: numbers as
// json.Number.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// pointer resolves a local reference such as "#/components/schemas/Error".
func (o *openAPI) pointer(ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("reference %q is not local", ref)
	}
	var cur any = o.doc
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("reference %q: %q is not inside an object", ref, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("reference %q: no %q", ref, tok)
		}
	}
	return cur, nil
}

// deref follows $ref until an object without one.
func (o *openAPI) deref(v any) (map[string]any, error) {
	for range 16 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%v is not an object", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		var err error
		if v, err = o.pointer(ref); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("reference loop")
}

// validate returns every violation of schema by v, each prefixed with the
// path of the offending value.
func (o *openAPI) validate(schema any, v any, path string) []string {
	if path == "" {
		path = "$"
	}
	s, ok := schema.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: schema is not an object: %v", path, schema)}
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }

	if ref, ok := s["$ref"].(string); ok {
		target, err := o.pointer(ref)
		if err != nil {
			return []string{path + ": " + err.Error()}
		}
		errs = append(errs, o.validate(target, v, path)...)
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			errs = append(errs, o.validate(sub, v, path)...)
		}
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		var why []string
		matched := false
		for _, sub := range anyOf {
			e := o.validate(sub, v, path)
			if len(e) == 0 {
				matched = true
				break
			}
			why = append(why, strings.Join(e, "; "))
		}
		if !matched {
			fail("matches no anyOf alternative (%s)", strings.Join(why, " | "))
		}
	}
	if not, ok := s["not"]; ok && len(o.validate(not, v, path)) == 0 {
		fail("matches the schema under not")
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, fmt.Sprint(x))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
			fail("%s is not of type %v", kindOf(v), types)
			return errs // the remaining keywords assume the type
		}
	}
	if c, ok := s["const"]; ok && !jsonEqual(c, v) {
		fail("%v is not %v", v, c)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return jsonEqual(e, v) }) {
		fail("%v is not one of %v", v, enum)
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, name := range req {
				if _, present := v[name.(string)]; !present {
					fail("required member %q is missing", name)
				}
			}
		}
		for _, name := range sortedKeys(v) {
			if sub, ok := props[name]; ok {
				errs = append(errs, o.validate(sub, v[name], path+"."+name)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("member %q is not allowed", name)
				}
			case map[string]any:
				errs = append(errs, o.validate(ap, v[name], path+"."+name)...)
			}
		}
	case []any:
		if n, ok := s["minItems"].(json.Number); ok {
			if min, _ := n.Int64(); int64(len(v)) < min {
				fail("has %d items, fewer than %d", len(v), min)
			}
		}
		if n, ok := s["maxItems"].(json.Number); ok {
			if max, _ := n.Int64(); int64(len(v)) > max {
				fail("has %d items, more than %d", len(v), max)
			}
		}
		if u, _ := s["uniqueItems"].(bool); u {
			for i := range v {
				for j := range i {
					if jsonEqual(v[i], v[j]) {
						fail("items %d and %d are equal", j, i)
					}
				}
			}
		}
		if items, ok := s["items"]; ok {
			for i, e := range v {
				errs = append(errs, o.validate(items, e, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case string:
		n := utf8.RuneCountInString(v)
		if min, ok := s["minLength"].(json.Number); ok {
			if m, _ := min.Int64(); int64(n) < m {
				fail("%q is shorter than %d", v, m)
			}
		}
		if max, ok := s["maxLength"].(json.Number); ok {
			if m, _ := max.Int64(); int64(n) > m {
				fail("%q is longer than %d", v, m)
			}
		}
		if p, ok := s["pattern"].(string); ok {
			re, err := regexp.Compile(p)
			if err != nil {
				fail("pattern %q: %v", p, err)
			} else if !re.MatchString(v) {
				fail("%q does not match %s", v, p)
			}
		}
	case json.Number:
		a, _ := new(big.Float).SetString(v.String())
		if min, ok := s["minimum"].(json.Number); ok {
			b, _ := new(big.Float).SetString(min.String())
			if a != nil && b != nil && a.Cmp(b) < 0 {
				fail("%s is less than %s", v, min)
			}
		}
		if max, ok := s["maximum"].(json.Number); ok {
			b, _ := new(big.Float).SetString(max.String())
			if a != nil && b != nil && a.Cmp(b) > 0 {
				fail("%s is more than %s", v, max)
			}
		}
	}
	return errs
}

func hasType(v any, t string) bool {
	switch v := v.(type) {
	case nil:
		return t == "null"
	case bool:
		return t == "boolean"
	case string:
		return t == "string"
	case map[string]any:
		return t == "object"
	case []any:
		return t == "array"
	case json.Number:
		if t == "number" {
			return true
		}
		if t == "integer" {
			f, ok := new(big.Float).SetString(v.String())
			return ok && f.IsInt()
		}
	}
	return false
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case json.Number:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// jsonEqual compares decoded JSON values (numbers by value).
func jsonEqual(a, b any) bool {
	na, okA := a.(json.Number)
	nb, okB := b.(json.Number)
	if okA && okB {
		x, _ := new(big.Float).SetString(na.String())
		y, _ := new(big.Float).SetString(nb.String())
		return x != nil && y != nil && x.Cmp(y) == 0
	}
	return reflect.DeepEqual(a, b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkKeywords reports schema keywords the validator does not know, in
// every schema of the document.
func (o *openAPI) checkKeywords(schema any, path string) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		return []string{path + ": schema is not an object"}
	}
	var errs []string
	for _, k := range sortedKeys(s) {
		if !slices.Contains(schemaKeywords, k) && !slices.Contains(schemaAnnotations, k) {
			errs = append(errs, fmt.Sprintf("%s: keyword %q is not supported by the test validator", path, k))
		}
	}
	for _, k := range []string{"allOf", "anyOf"} {
		if subs, ok := s[k].([]any); ok {
			for i, sub := range subs {
				errs = append(errs, o.checkKeywords(sub, fmt.Sprintf("%s/%s/%d", path, k, i))...)
			}
		}
	}
	if props, ok := s["properties"].(map[string]any); ok {
		for _, name := range sortedKeys(props) {
			errs = append(errs, o.checkKeywords(props[name], path+"/properties/"+name)...)
		}
	}
	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		errs = append(errs, o.checkKeywords(ap, path+"/additionalProperties")...)
	}
	if items, ok := s["items"]; ok {
		errs = append(errs, o.checkKeywords(items, path+"/items")...)
	}
	if ref, ok := s["$ref"].(string); ok {
		if _, err := o.pointer(ref); err != nil {
			errs = append(errs, path+": "+err.Error())
		}
	}
	return errs
}

// TestSchemaValidator keeps the validator honest: it must reject what it
// claims to check.
func TestSchemaValidator(t *testing.T) {
	o := loadOpenAPI(t)
	schema := func(s string) any {
		v, err := decodeJSON([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		schema, value string
		ok            bool
	}{
		{`{"type": "string"}`, `"x"`, true},
		{`{"type": "string"}`, `1`, false},
		{`{"type": ["string", "null"]}`, `null`, true},
		{`{"type": "integer"}`, `1`, true},
		{`{"type": "integer"}`, `1.5`, false},
		{`{"type": "number", "minimum": 0}`, `-1`, false},
		{`{"type": "integer", "maximum": 10}`, `11`, false},
		{`{"type": "object", "required": ["a"]}`, `{}`, false},
		{`{"type": "object", "additionalProperties": false, "properties": {"a": {}}}`, `{"a": 1, "b": 2}`, false},
		{`{"type": "object", "additionalProperties": {"type": "string"}}`, `{"a": 1}`, false},
		{`{"type": "object", "additionalProperties": {"type": "string"}}`, `{"a": "1"}`, true},
		{`{"type": "array", "items": {"type": "string"}}`, `["a", 1]`, false},
		{`{"type": "array", "minItems": 1}`, `[]`, false},
		{`{"type": "array", "maxItems": 1}`, `[1, 2]`, false},
		{`{"type": "array", "maxItems": 1}`, `[1]`, true},
		{`{"type": "array", "uniqueItems": true}`, `["a", "a"]`, false},
		{`{"enum": ["a", "b"]}`, `"c"`, false},
		{`{"const": "a"}`, `"a"`, true},
		{`{"type": "string", "pattern": "^[A-Z]{2}$"}`, `"us"`, false},
		{`{"type": "string", "maxLength": 2}`, `"abc"`, false},
		{`{"type": "string", "minLength": 1}`, `""`, false},
		{`{"anyOf": [{"type": "string"}, {"type": "null"}]}`, `1`, false},
		{`{"allOf": [{"type": "object"}, {"properties": {"code": {"const": "x"}}}]}`, `{"code": "y"}`, false},
		{`{"not": {"required": ["a", "b"]}}`, `{"a": 1, "b": 2}`, false},
		{`{"not": {"required": ["a", "b"]}}`, `{"a": 1}`, true},
		// A participant gives ip or phone, not both.
		{`{"$ref": "#/components/schemas/Participant"}`, `{"id": "p", "ip": "1.1.1.1", "phone": "+14155550100"}`, false},
		{`{"$ref": "#/components/schemas/Participant"}`, `{"id": "p", "phone": "+14155550100"}`, true},
		{`{"$ref": "#/components/schemas/Error"}`, `{"code": "internal", "message": "m", "error_id": "e"}`, true},
		{`{"$ref": "#/components/schemas/Error"}`, `{"code": "nope", "message": "m"}`, false},
		{`{"$ref": "#/components/schemas/InternalError"}`, `{"code": "internal", "message": "m"}`, false},
	}
	for _, tc := range cases {
		v, err := decodeJSON([]byte(tc.value))
		if err != nil {
			t.Fatal(err)
		}
		errs := o.validate(schema(tc.schema), v, "")
		if ok := len(errs) == 0; ok != tc.ok {
			t.Errorf("validate(%s, %s) = %v, want ok %v", tc.schema, tc.value, errs, tc.ok)
		}
	}
}
