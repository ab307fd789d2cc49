package tests

import (
	"database/sql"
	"strings"
	"testing"
)

// TestLedgerURLIsTheWholeConnection: the PostgreSQL driver fills every
// setting a ledger URL leaves out from PG* environment variables. A
// variable for a setting the URL does not state is refused (exit 2,
// naming it, never its value), so that nothing beside --ledger decides
// where the ledger is written or how: PGOPTIONS had the ledger created in
// another schema, PGSSLMODE=disable made a URL without sslmode connect
// without TLS. A variable for a setting the URL states is overridden by
// it, and accepted.
func TestLedgerURLIsTheWholeConnection(t *testing.T) {
	pg := lgPostgres(t)
	db, err := sql.Open("pgx", pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE SCHEMA elsewhere`); err != nil {
		t.Fatal(err)
	}
	key := lgKeyFile(t)
	noSSLMode, found := strings.CutSuffix(pg.URL(), "?sslmode=disable")
	if !found {
		t.Fatalf("pgtest's URL %s does not end in ?sslmode=disable", pg.URL())
	}
	tables := func(schema string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	decide := func(url string, env ...string) cliResult {
		t.Helper()
		return runIn(t, t.TempDir(), env, []byte(validRequest), "decide", "--ledger", url, "--ledger-key-file", key)
	}

	for _, tc := range []struct {
		name, url, env, names, hides string
	}{
		{"PGOPTIONS", pg.URL(), "PGOPTIONS=-c search_path=elsewhere", "PGOPTIONS", "search_path"},
		{"PGSSLMODE", noSSLMode, "PGSSLMODE=disable", "PGSSLMODE", "disable"},
		{"PGPASSWORD", pg.URL(), "PGPASSWORD=pw-from-the-environment", "PGPASSWORD", "pw-from-the-environment"},
		{"PGSERVICE", pg.URL(), "PGSERVICE=other", "PGSERVICE", "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := decide(tc.url, tc.env)
			if res.code != 2 {
				t.Fatalf("decide --ledger %s with %s: exit %d, want 2\n%v", tc.url, tc.env, res.code, res)
			}
			line := cliErrorLine(t, res.stderr)
			if !strings.Contains(line, tc.names) || !strings.Contains(line, "state the setting in it") {
				t.Errorf("error %q does not name %s and say what to do", line, tc.names)
			}
			if strings.Contains(res.stderr, tc.hides) {
				t.Errorf("the error shows the variable's value %q:\n%s", tc.hides, res.stderr)
			}
		})
	}
	if n := tables("elsewhere"); n != 0 {
		t.Errorf("PGOPTIONS created %d tables of the ledger in the schema it named", n)
	}
	if n := tables("public"); n != 0 {
		t.Errorf("a refused command created %d tables", n)
	}
	// serve refuses it as decide does, before it listens.
	if res := runIn(t, t.TempDir(), []string{"PGSSLMODE=disable"}, nil, "serve", "--addr", "127.0.0.1:0", "--ledger", noSSLMode, "--ledger-key-file", key); res.code != 2 ||
		!strings.Contains(cliErrorLine(t, res.stderr), "PGSSLMODE") {
		t.Errorf("serve --ledger without sslmode, PGSSLMODE set: %v; want exit 2 naming PGSSLMODE", res)
	}

	// The URL states host, port, user, database and sslmode: variables for
	// them change nothing, and are accepted; an empty one is unset.
	if res := decide(pg.URL(), "PGHOST=192.0.2.1", "PGPORT=1", "PGUSER=nobody", "PGDATABASE=nothing", "PGSSLMODE=require", "PGOPTIONS="); res.code != 0 {
		t.Fatalf("decide with variables the URL overrides: %v", res)
	}
	if n := tables("public"); n == 0 {
		t.Error("the ledger was not created where the URL says")
	}
}
