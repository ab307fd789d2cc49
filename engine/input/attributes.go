package input

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Attributes are what a meeting server knows about a person beyond their
// id and role (a clearance, an accreditation, a caller-id attestation), for
// policies to read. They never count as a location: a policy may use them
// to withhold enforcement, and the guard ignores them.
type Attributes map[string]AttributeValue

// Bounds on attributes: a request describes people, it does not carry
// documents about them.
const (
	MaxAttributes          = 32
	MaxAttributeKeyLength  = 64
	MaxAttributeTextLength = 256
	MaxAttributeListLength = 32
)

// AttributeKind is the JSON type of an attribute value.
type AttributeKind uint8

// Kinds of attribute values.
const (
	AttributeString AttributeKind = iota + 1
	AttributeNumber
	AttributeBool
	AttributeStrings
)

// AttributeValue is a string, a number, a boolean or an array of strings.
type AttributeValue struct {
	Kind AttributeKind
	// Text is the string, or the number exactly as written in the request.
	Text string
	Bool bool
	List []string
}

// UnmarshalJSONFrom reads one attribute value, refusing anything but a
// string, a number, a boolean or an array of strings.
func (v *AttributeValue) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch dec.PeekKind() {
	case '"':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		*v = AttributeValue{Kind: AttributeString, Text: tok.String()}
	case '0':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		*v = AttributeValue{Kind: AttributeNumber, Text: tok.String()}
	case 't', 'f':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		*v = AttributeValue{Kind: AttributeBool, Bool: tok.Bool()}
	case '[':
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		list := []string{}
		for dec.PeekKind() != ']' {
			switch k := dec.PeekKind(); k {
			case '"':
			case 'n', 'f', 't', '0', '{', '[':
				return errAttributeValue{fmt.Sprintf("expected an array of strings, got %s in it", kindText(k))}
			default: // a syntax error: let the decoder report it
				_, err := dec.ReadToken()
				return err
			}
			tok, err := dec.ReadToken()
			if err != nil {
				return err
			}
			list = append(list, tok.String())
		}
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		*v = AttributeValue{Kind: AttributeStrings, List: list}
	case '{', 'n':
		return errAttributeValue{fmt.Sprintf("expected a string, a number, a boolean or an array of strings, got %s", kindText(dec.PeekKind()))}
	default: // not the start of a value: the decoder says what is wrong
		_, err := dec.ReadToken()
		return err
	}
	return nil
}

// MarshalJSONTo writes the value back as it was given (clients build
// requests with the same types).
func (v AttributeValue) MarshalJSONTo(enc *jsontext.Encoder) error {
	switch v.Kind {
	case AttributeString:
		return enc.WriteToken(jsontext.String(v.Text))
	case AttributeNumber:
		return enc.WriteValue(jsontext.Value(v.Text))
	case AttributeBool:
		return enc.WriteToken(jsontext.Bool(v.Bool))
	case AttributeStrings:
		if err := enc.WriteToken(jsontext.BeginArray); err != nil {
			return err
		}
		for _, s := range v.List {
			if err := enc.WriteToken(jsontext.String(s)); err != nil {
				return err
			}
		}
		return enc.WriteToken(jsontext.EndArray)
	}
	return enc.WriteToken(jsontext.Null)
}

// errAttributeValue is a type error inside an attribute value; the decoder
// adds where it happened.
type errAttributeValue struct{ msg string }

func (e errAttributeValue) Error() string { return e.msg }

// check enforces the bounds. Keys are visited in order so that the error
// reported for a request is always the same one.
func (a Attributes) check(f field) error {
	if len(a) == 0 {
		return nil
	}
	field := f.String()
	if len(a) > MaxAttributes {
		return invalid(field, "has %d attributes; the limit is %d", len(a), MaxAttributes)
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		kf := field + "." + k
		switch {
		case k == "":
			return invalid(field, "an attribute name is empty")
		case len(k) > MaxAttributeKeyLength:
			return invalid(field, "the attribute name %s is %d bytes long; the limit is %d", Quote(k), len(k), MaxAttributeKeyLength)
		}
		if err := checkText(f, k); err != nil {
			return err
		}
		v := a[k]
		switch v.Kind {
		case AttributeString:
			if len(v.Text) > MaxAttributeTextLength {
				return invalid(kf, "is %d bytes long; the limit is %d", len(v.Text), MaxAttributeTextLength)
			}
			// A string value is held to what its name is: no control
			// character (a NUL, a line break), which policies would carry
			// into reasons, and reasons into the ledger and logs.
			if err := checkTextAt(kf, v.Text); err != nil {
				return err
			}
		case AttributeStrings:
			if len(v.List) > MaxAttributeListLength {
				return invalid(kf, "has %d items; the limit is %d", len(v.List), MaxAttributeListLength)
			}
			for i, s := range v.List {
				if len(s) > MaxAttributeTextLength {
					return invalid(indexed(kf, i), "is %d bytes long; the limit is %d", len(s), MaxAttributeTextLength)
				}
				if err := checkTextAt(indexed(kf, i), s); err != nil {
					return err
				}
			}
		case AttributeNumber:
			if err := checkNumber(kf, v.Text); err != nil {
				return err
			}
		case AttributeBool:
		default:
			// null, or a value built in Go without a kind.
			return invalid(kf, "expected a string, a number, a boolean or an array of strings, got null")
		}
	}
	return nil
}

// checkNumber bounds a number attribute to what a policy can compare. OPA
// compares numbers exactly, as written (math/big), and panics on one whose
// exponent math/big refuses (1e99999999, 1e-99999999); one just under that
// bound costs a large exact power of ten at every comparison. A number is
// therefore at most MaxAttributeTextLength bytes as written and within the
// range of a 64-bit float (the interoperable range of RFC 8259, section 6):
// not beyond its largest value, and not so small that it rounds to zero.
// Precision is not bounded: 12345678901234567890123 stays exact.
func checkNumber(field, text string) error {
	if len(text) > MaxAttributeTextLength {
		return invalid(field, "is a number %d bytes long; the limit is %d", len(text), MaxAttributeTextLength)
	}
	f, err := strconv.ParseFloat(text, 64)
	mantissa, _, _ := strings.Cut(strings.ToLower(text), "e")
	if err != nil || (f == 0 && strings.ContainsAny(mantissa, "123456789")) {
		return invalid(field, "the number %s is beyond the range of a 64-bit float (0, or a magnitude from about 5e-324 to 1.8e308)", text)
	}
	return nil
}

func kindText(k jsontext.Kind) string {
	switch k {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "nothing"
}

// MarshalJSON and UnmarshalJSON serve encoding/json (v1) callers, such as
// clients that build requests with these types.
func (v AttributeValue) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := jsontext.NewEncoder(&b)
	if err := v.MarshalJSONTo(enc); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b.Bytes()), nil
}

// UnmarshalJSON reads one attribute value (see UnmarshalJSONFrom).
func (v *AttributeValue) UnmarshalJSON(data []byte) error {
	return v.UnmarshalJSONFrom(jsontext.NewDecoder(bytes.NewReader(data)))
}
