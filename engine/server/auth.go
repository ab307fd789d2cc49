package server

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Scopes a token may hold. admin includes decide.
const (
	ScopeDecide = "decide"
	ScopeAdmin  = "admin"
)

// tokens holds SHA-256 digests of bearer tokens. Only digests are stored,
// so a leaked tokens file does not leak the tokens.
type tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	scope  string
	digest [sha256.Size]byte
}

// loadTokens reads a tokens file: one "SCOPE SHA256-HEX" per line; blank
// lines and lines starting with # are ignored.
func loadTokens(path string) (*tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --tokens-file: %v", ErrConfig, err)
	}
	defer f.Close()
	t := &tokens{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%w: --tokens-file %s line %d: want \"SCOPE SHA256-HEX\"", ErrConfig, path, n)
		}
		scope := fields[0]
		if scope != ScopeDecide && scope != ScopeAdmin {
			return nil, fmt.Errorf("%w: --tokens-file %s line %d: unknown scope %q (decide, admin)", ErrConfig, path, n, scope)
		}
		raw, err := hex.DecodeString(fields[1])
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%w: --tokens-file %s line %d: the second field must be the 64-hex-digit SHA-256 of the token", ErrConfig, path, n)
		}
		e := tokenEntry{scope: scope}
		copy(e.digest[:], raw)
		t.entries = append(t.entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: --tokens-file: %v", ErrConfig, err)
	}
	if len(t.entries) == 0 {
		return nil, fmt.Errorf("%w: --tokens-file %s holds no tokens", ErrConfig, path)
	}
	return t, nil
}

// scopes returns the scopes the presented token holds. Every entry is
// compared, in constant time, whatever matches: timing reveals neither
// which entry matched nor how much of a digest did.
func (t *tokens) scopes(presented string) (decide, admin bool) {
	d := sha256.Sum256([]byte(presented))
	for _, e := range t.entries {
		match := subtle.ConstantTimeCompare(d[:], e.digest[:]) == 1
		admin = admin || (match && e.scope == ScopeAdmin)
		decide = decide || (match && (e.scope == ScopeDecide || e.scope == ScopeAdmin))
	}
	return decide, admin
}
