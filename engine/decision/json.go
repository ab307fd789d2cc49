package decision

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the admission answer as encoding/json writes it (the
// same bytes: field order, escaping, null for nil). It is the join-time
// answer, written thousands of times a second; reflection over the struct
// and its map cost more than the rest of answering an admission nobody
// targets. TestAppendJSONIsEncodingJSON keeps the two identical, field by
// field.
func (a *Admission) AppendJSON(b []byte) []byte {
	b = append(b, `{"decision_id":`...)
	b = appendString(b, a.DecisionID)
	b = append(b, `,"allow":`...)
	b = strconv.AppendBool(b, a.Allow)
	b = append(b, `,"actions":`...)
	if a.Actions == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range a.Actions {
			if i > 0 {
				b = append(b, ',')
			}
			b = a.Actions[i].AppendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"order_ids":`...)
	b = appendStrings(b, a.OrderIDs)
	b = append(b, `,"bundles":`...)
	if a.Bundles == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		var names [4]string
		keys := names[:0]
		for k := range a.Bundles {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, a.Bundles[k])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// AppendJSON appends the action as encoding/json writes it.
func (a *Action) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, a.Type)
	if a.MeetingID != "" {
		b = append(b, `,"meeting_id":`...)
		b = appendString(b, a.MeetingID)
	}
	if a.ParticipantID != "" {
		b = append(b, `,"participant_id":`...)
		b = appendString(b, a.ParticipantID)
	}
	if a.AccountID != "" {
		b = append(b, `,"account_id":`...)
		b = appendString(b, a.AccountID)
	}
	if a.Host {
		b = append(b, `,"host":true`...)
	}
	b = append(b, `,"order_id":`...)
	b = appendString(b, a.OrderID)
	b = append(b, `,"jurisdiction":`...)
	b = appendStrings(b, a.Jurisdiction)
	if a.Country != "" {
		b = append(b, `,"country":`...)
		b = appendString(b, a.Country)
	}
	if a.LocatedBy != "" {
		b = append(b, `,"located_by":`...)
		b = appendString(b, a.LocatedBy)
	}
	if len(a.Subdivisions) > 0 {
		b = append(b, `,"subdivisions":`...)
		b = appendStrings(b, a.Subdivisions)
	}
	b = append(b, `,"reason":`...)
	b = appendString(b, a.Reason)
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hex = "0123456789abcdef"

// appendString quotes s as encoding/json does by default: control
// characters, quote and backslash escaped; <, > and & escaped for HTML;
// U+2028 and U+2029 escaped for JavaScript; invalid UTF-8 replaced by
// U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
