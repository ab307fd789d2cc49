package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/geoscope/geoscope/internal/secretfile"
)

// Scopes a token may hold. admin includes decide and metrics. metrics
// reads /metrics and /v1/status and nothing else: a monitoring system
// holds a token that can neither decide, nor read the ledger or the
// reports, nor reload.
const (
	ScopeDecide  = "decide"
	ScopeAdmin   = "admin"
	ScopeMetrics = "metrics"
)

// grants is the set of scopes a token holds, one bit per scope, so that
// the entries matching a token are merged without a branch on which
// matched.
type grants uint8

const (
	grantDecide grants = 1 << iota
	grantAdmin
	grantMetrics
)

// scopeGrants is what each scope of the tokens file grants.
var scopeGrants = map[string]grants{
	ScopeDecide:  grantDecide,
	ScopeAdmin:   grantAdmin | grantDecide | grantMetrics,
	ScopeMetrics: grantMetrics,
}

// grantOf is the grant an endpoint's scope asks for.
func grantOf(scope string) grants {
	switch scope {
	case ScopeDecide:
		return grantDecide
	case ScopeMetrics:
		return grantMetrics
	default:
		return grantAdmin
	}
}

// has reports whether the token holds scope.
func (g grants) has(scope string) bool { return g&grantOf(scope) != 0 }

// tokens holds SHA-256 digests of bearer tokens. Only digests are stored,
// so a leaked tokens file does not leak the tokens.
//
// The file is read again when it changes (see Server.watchFiles): a token
// is added or revoked by editing the file (or the Secret it is mounted
// from), without a restart that would drop every connection. A version
// that does not load (missing, unreadable, a malformed line, empty, or
// writable by other users than its owner, who could add a token of their
// own: see secretfile) keeps the tokens in use. A version that holds comments and no token
// revokes them all: that is the operator's way to shut everyone out at
// once, when the one token there was has leaked. An empty file is not
// taken for that: a disk that filled up, or an editor truncating before it
// writes, leaves one by accident, and every meeting server would then
// fail open without a word. At start, a file without
// tokens is refused, as a mistake: the server would answer nothing but
// /health, /ready and /openapi.json.
type tokens struct {
	path    string
	entries atomic.Pointer[[]tokenEntry]
}

type tokenEntry struct {
	grants grants
	digest [sha256.Size]byte
}

// loadTokens reads a tokens file: one "SCOPE SHA256-HEX" per line; blank
// lines and lines starting with # are ignored.
func loadTokens(path string) (*tokens, error) {
	entries, _, err := readTokens(path)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: --tokens-file %s holds no tokens", ErrConfig, path)
	}
	t := &tokens{path: path}
	t.entries.Store(&entries)
	return t, nil
}

// readTokens parses a tokens file; commented reports whether it holds a
// comment.
func readTokens(path string) (entries []tokenEntry, commented bool, err error) {
	raw, err := secretfile.ReadUnwritable(path, "--tokens-file "+path, "whoever can write it can give themselves a token with the admin scope")
	var pathErr *fs.PathError
	switch {
	case errors.As(err, &pathErr):
		return nil, false, fmt.Errorf("%w: --tokens-file: %v", ErrConfig, err)
	case err != nil:
		return nil, false, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	n := 1
	for ; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			commented = true
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, false, fmt.Errorf("%w: --tokens-file %s line %d: want \"SCOPE SHA256-HEX\"", ErrConfig, path, n)
		}
		scope := fields[0]
		g, known := scopeGrants[scope]
		if !known {
			return nil, false, fmt.Errorf("%w: --tokens-file %s line %d: unknown scope %q (decide, admin, metrics)", ErrConfig, path, n, scope)
		}
		raw, err := hex.DecodeString(fields[1])
		if err != nil || len(raw) != sha256.Size {
			return nil, false, fmt.Errorf("%w: --tokens-file %s line %d: the second field must be the 64-hex-digit SHA-256 of the token", ErrConfig, path, n)
		}
		e := tokenEntry{grants: g}
		copy(e.digest[:], raw)
		entries = append(entries, e)
	}
	// A line is some 70 bytes. One past the scanner's bound is a file
	// that is not a tokens file (or a comment pasted whole): the
	// scanner's own words, "token too long", would read as if a bearer
	// token were, and named neither the file nor the line.
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, false, fmt.Errorf("%w: --tokens-file %s line %d: longer than %d bytes; a line is \"SCOPE SHA256-HEX\" or a comment", ErrConfig, path, n, bufio.MaxScanTokenSize)
	} else if err != nil {
		return nil, false, fmt.Errorf("%w: --tokens-file: %v", ErrConfig, err)
	}
	return entries, commented, nil
}

// reload reads the file again.
func (t *tokens) reload(log *slog.Logger) {
	entries, commented, err := readTokens(t.path)
	if err == nil && len(entries) == 0 && !commented {
		err = fmt.Errorf("%w: --tokens-file %s is empty (to revoke every token, leave a comment in it)", ErrConfig, t.path)
	}
	if err != nil {
		log.Warn("--tokens-file changed but does not load; the tokens in use stay", "error", err.Error())
		return
	}
	if slices.Equal(entries, *t.entries.Load()) {
		return // another watched file changed
	}
	t.entries.Store(&entries)
	if len(entries) == 0 {
		log.Warn("--tokens-file read again and holds no tokens: every token is revoked, and every request that needs one is refused")
		return
	}
	log.Info("--tokens-file read again", "tokens", len(entries))
}

// scopes returns the scopes the presented token holds, none for a token
// that is not valid. Every entry is compared, in constant time, whatever
// matches, and merged without a branch: timing reveals neither which
// entry matched nor how much of a digest did.
func (t *tokens) scopes(presented string) grants {
	d := sha256.Sum256([]byte(presented))
	var g grants
	for _, e := range *t.entries.Load() {
		g |= e.grants * grants(subtle.ConstantTimeCompare(d[:], e.digest[:]))
	}
	return g
}
