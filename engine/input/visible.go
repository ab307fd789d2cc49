package input

import (
	"strconv"
	"strings"
	"unicode"
)

// Visible is text from outside geoscope (a registry's names, a bundle's
// revision, a GeoIP database's name) as geoscope prints it within its own
// words: each control character (C0, DEL, C1), line or paragraph
// separator, and bidirectional embedding, override or isolate written as
// its Go escape ("\x1b", "\u202e"), and invalid UTF-8 as U+FFFD. Printed
// raw, an escape sequence runs in the terminal of whoever reads it, and an
// override left open reverses the words and figures after it. The marks
// LRM, RLM and ALM open nothing and are kept: names in Arabic or Hebrew
// need them.
func Visible(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || ('\u202a' <= r && r <= '\u202e') || ('\u2066' <= r && r <= '\u2069') {
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
