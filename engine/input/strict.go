package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
)

// DecodeStrict decodes one JSON object from data into v, rejecting unknown
// fields, trailing data and type mismatches. Errors are *FieldError values
// naming the offending field path with array indices, because
// encoding/json's own messages drop the indices ("meeting.participants.ip")
// and an operator with 10k participants needs to know which one.
func DecodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return invalid("", "request body is empty; expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describe(data, v, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("", "unexpected data after the JSON object")
	}
	return checkKeys(data, jsonNames(reflect.TypeOf(v)))
}

// describe turns a decoding error into a FieldError. Syntax errors carry a
// byte offset; structural errors are located by walking a generic decoding
// of the document against the target type. That walk only happens on the
// error path, so the common path pays nothing for it.
func describe(data []byte, v any, err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return invalid("", "malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("", "malformed JSON: unexpected end of input")
	}
	var generic any
	if json.Unmarshal(data, &generic) == nil {
		if fe := walk(generic, reflect.TypeOf(v), ""); fe != nil {
			return fe
		}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return invalid(te.Field, "expected %s, got %s", kindName(te.Type), te.Value)
	}
	return invalid("", "%s", strings.TrimPrefix(err.Error(), "json: "))
}

func walk(val any, t reflect.Type, path string) *FieldError {
	for t.Kind() == reflect.Pointer {
		if val == nil {
			return nil
		}
		t = t.Elem()
	}
	if val == nil {
		return nil // null leaves the zero value; validation decides if that is allowed
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := val.(map[string]any)
		if !ok {
			return invalid(path, "expected an object, got %s", jsonKind(val))
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				return invalid(join(path, k), "unknown field")
			}
			if fe := walk(obj[k], f.Type, join(path, k)); fe != nil {
				return fe
			}
		}
	case reflect.Slice:
		arr, ok := val.([]any)
		if !ok {
			return invalid(path, "expected an array, got %s", jsonKind(val))
		}
		for i, e := range arr {
			if fe := walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); fe != nil {
				return fe
			}
		}
	case reflect.Map:
		obj, ok := val.(map[string]any)
		if !ok {
			return invalid(path, "expected an object, got %s", jsonKind(val))
		}
		for k, e := range obj {
			if fe := walk(e, t.Elem(), join(path, k)); fe != nil {
				return fe
			}
		}
	case reflect.String:
		if _, ok := val.(string); !ok {
			return invalid(path, "expected a string, got %s", jsonKind(val))
		}
	case reflect.Bool:
		if _, ok := val.(bool); !ok {
			return invalid(path, "expected a boolean, got %s", jsonKind(val))
		}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Float64:
		if _, ok := val.(float64); !ok {
			return invalid(path, "expected a number, got %s", jsonKind(val))
		}
	}
	return nil
}

func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	}
	return "a number"
}
