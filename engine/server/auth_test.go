package server

import (
	"slices"
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
