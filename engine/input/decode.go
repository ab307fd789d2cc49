package input

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// strict are the decoding options for every request. The decoder
// (github.com/go-json-experiment/json, the design of encoding/json/v2)
// itself refuses what a proxy or a log could read differently from the
// decision: a name repeated in one object, invalid UTF-8, and, with these
// options, unknown names, including names that match a field only when
// case is ignored ("IP" for "ip"). It reports where, as a JSON pointer,
// in one pass and without a second walk over the document.
var strict = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// DecodeStrict decodes one JSON object from data into v, rejecting unknown
// fields, repeated and case-variant names, invalid UTF-8, trailing data and
// type mismatches. Errors are *FieldError values naming the offending field
// path with array indices ("meeting.participants[3].ip"), because an
// operator with 10k participants needs to know which one.
func DecodeStrict(data []byte, v any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return invalid("", "request body is empty; expected a JSON object")
	}
	// null decodes into a struct as nothing at all, and was answered as
	// a request without its first required member.
	if string(trimmed) == "null" {
		return invalid("", "expected a JSON object, got null")
	}
	if err := json.Unmarshal(data, v, strict); err != nil {
		return describe(err, reflect.TypeOf(v))
	}
	return nil
}

// describe turns a decoding error into a FieldError. Messages quote at most
// a short prefix of a bad value: a request of megabytes must not come back
// as an error of megabytes.
func describe(err error, target reflect.Type) error {
	var syn *jsontext.SyntacticError
	var sem *json.SemanticError
	switch {
	case errors.As(err, &syn):
		field := fieldPath(syn.JSONPointer)
		switch {
		case errors.Is(syn.Err, io.ErrUnexpectedEOF):
			return invalid("", "malformed JSON: unexpected end of input")
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return invalid(field, "appears twice in one object")
		case strings.Contains(syn.Err.Error(), "invalid UTF-8") && field == "":
			return invalid("", "the JSON text is not valid UTF-8") // no field to name: the message says what
		case strings.Contains(syn.Err.Error(), "invalid UTF-8"):
			return invalid(field, "is not valid UTF-8")
		case strings.Contains(syn.Err.Error(), "after top-level value"):
			return invalid("", "unexpected data after the JSON object")
		}
		return invalid(field, "malformed JSON at byte %d: %s", syn.ByteOffset, truncate(syn.Err.Error()))
	case errors.As(err, &sem):
		field := fieldPath(sem.JSONPointer)
		var av errAttributeValue
		switch {
		case errors.Is(sem.Err, json.ErrUnknownName):
			if hasFieldFold(target, sem.JSONPointer) {
				return invalid(field, "unknown field (field names are case-sensitive)")
			}
			return invalid(field, "unknown field")
		case errors.As(sem.Err, &av):
			return invalid(field, "%s", av.msg)
		case sem.GoType != nil && sem.JSONKind != 0:
			return invalid(field, "expected %s, got %s", goKindText(sem.GoType), kindText(sem.JSONKind))
		}
		if sem.Err != nil {
			return invalid(field, "%s", truncate(sem.Err.Error()))
		}
	}
	return invalid("", "%s", truncate(err.Error()))
}

// fieldPath turns a JSON pointer ("/meeting/participants/3/ip") into the
// field path used in messages ("meeting.participants[3].ip"). A numeric
// token is an array index, except under "attributes", whose names are the
// caller's own.
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	prev := ""
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && prev != "attributes" {
			b.WriteString("[" + tok + "]")
		} else {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(truncate(tok))
		}
		prev = tok
	}
	return b.String()
}

// hasFieldFold reports whether the unknown name at p matches a field of the
// struct it appeared in when case is ignored: the caller then most likely
// mistyped the case, and the message says so.
func hasFieldFold(t reflect.Type, p jsontext.Pointer) bool {
	var toks []string
	for tok := range p.Tokens() {
		toks = append(toks, tok)
	}
	if len(toks) == 0 {
		return false
	}
	for _, tok := range toks[:len(toks)-1] {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() == reflect.Slice {
			continue
		}
		if t.Kind() != reflect.Struct {
			return false
		}
		if _, err := strconv.Atoi(tok); err == nil {
			continue // an index into the slice we already stepped into
		}
		f, ok := jsonFields(t)[tok]
		if !ok {
			return false
		}
		t = f
	}
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	name := toks[len(toks)-1]
	for n := range jsonFields(t) {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps a struct's JSON names to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if v, ok := fieldCache.Load(t); ok {
		return v.(map[string]reflect.Type)
	}
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
	}
	fieldCache.Store(t, out)
	return out
}

func goKindText(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	}
	return "a number"
}

// MaxQuoted bounds how much of a value an error message repeats.
const MaxQuoted = 64

// truncate cuts s to MaxQuoted bytes, on a rune boundary, and marks the
// cut (the mark is past the limit: the limit is of what is quoted).
func truncate(s string) string {
	if len(s) <= MaxQuoted {
		return s
	}
	return cutMarked(s, MaxQuoted)
}

// Shorten cuts s to at most n bytes on a character boundary, the mark
// "…" included: for the messages and warnings that repeat what a client
// or a policy wrote.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cutMarked(s, max(n-len("…"), 0))
}

// cutMarked is s cut at or before byte cut, where a character starts,
// and marked.
func cutMarked(s string, cut int) string {
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Quote is %q of a value from a request, cut first to MaxQuoted bytes: an
// error repeats at most a short prefix of a bad value, never all of it.
func Quote(s string) string {
	if len(s) <= MaxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(truncate(s))
}
