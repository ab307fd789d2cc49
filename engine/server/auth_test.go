package server

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Each scope grants what it names (admin every scope), a token listed
// under two scopes holds both, and a token not listed holds none.
func TestTokenScopes(t *testing.T) {
	path := writeScopedTokens(t, ScopeDecide, "d", ScopeAdmin, "a", ScopeMetrics, "m", ScopeDecide, "dm", ScopeMetrics, "dm")
	tok, err := loadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string][]string{
		"d":  {ScopeDecide},
		"a":  {ScopeDecide, ScopeAdmin, ScopeMetrics},
		"m":  {ScopeMetrics},
		"dm": {ScopeDecide, ScopeMetrics},
		"x":  nil,
		"":   nil,
	} {
		g := tok.scopes(token)
		if (g == 0) != (len(want) == 0) {
			t.Errorf("token %q: grants %b, want %v", token, g, want)
		}
		for _, scope := range []string{ScopeDecide, ScopeAdmin, ScopeMetrics} {
			if holds := slices.Contains(want, scope); g.has(scope) != holds {
				t.Errorf("token %q: has(%s) = %v, want %v", token, scope, !holds, holds)
			}
		}
	}
}

// A tokens file is read line by line, and a line that is not exactly
// "SCOPE SHA256-HEX" refuses the whole file, naming its line: a digest of
// another length (an MD5, a SHA-512, one cut short) would admit nobody in
// silence, and a third field (a trailing comment) is not a form the file
// has. A file without a token is refused at start, where a mistake is
// likelier than an operator shutting everyone out.
func TestTokensFileLinesRefused(t *testing.T) {
	digest := sha256.Sum256([]byte("token"))
	hexDigest := hex.EncodeToString(digest[:])
	for name, line := range map[string]string{
		"a third field":       "admin " + hexDigest + " # the ops team",
		"a scope alone":       "admin",
		"a digest cut short":  "admin " + hexDigest[:62],
		"an MD5":              "admin " + strings.Repeat("ab", md5.Size),
		"a SHA-512":           "admin " + strings.Repeat("ab", sha512.Size),
		"a digest not in hex": "admin " + strings.Repeat("zz", sha256.Size),
		"an unknown scope":    "root " + hexDigest,
		// Past the line bound, which the message names.
		"a line of 64 KiB": "# " + strings.Repeat("x", 64<<10),
	} {
		path := filepath.Join(t.TempDir(), "tokens")
		if err := os.WriteFile(path, []byte("# tokens\ndecide "+hexDigest+"\n"+line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadTokens(path)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), path+" line 3") {
			t.Errorf("%s: %v, want a configuration error naming the file's line 3", name, err)
		}
		if strings.HasPrefix(name, "a line of") && !strings.Contains(err.Error(), "longer than 65536 bytes") {
			t.Errorf("%s: %v, want the bound named", name, err)
		}
	}

	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("# every token revoked\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTokens(path); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "holds no tokens") {
		t.Errorf("a tokens file with comments only, at start: %v, want a configuration error", err)
	}
}
