package pgtest

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

func open(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestServerStopStartKeepsData(t *testing.T) {
	s := New(t)
	if !strings.HasPrefix(s.URL(), "postgres://") || !strings.Contains(s.URL(), "sslmode=disable") {
		t.Fatalf("URL = %s", s.URL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := open(t, s.URL())
	var name string
	if err := db.QueryRowContext(ctx, "SELECT current_database()").Scan(&name); err != nil || name != Database {
		t.Fatalf("current_database() = %q, %v", name, err)
	}
	var fsync, syncCommit string
	if err := db.QueryRowContext(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit); err != nil {
		t.Fatal(err)
	}
	if fsync != "on" || syncCommit != "on" {
		t.Errorf("fsync=%s synchronous_commit=%s; crash tests need both on", fsync, syncCommit)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE kept (v TEXT); INSERT INTO kept VALUES ('before stop')"); err != nil {
		t.Fatal(err)
	}

	s.Stop()
	if s.Running() {
		t.Fatal("Running() after Stop")
	}
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("ping succeeded while stopped")
	}
	s.Start()
	var v string
	if err := db.QueryRowContext(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "before stop" {
		t.Fatalf("after restart: %q, %v", v, err)
	}

	s.Kill()
	s.Start()
	if err := db.QueryRowContext(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "before stop" {
		t.Fatalf("after immediate stop and restart: %q, %v", v, err)
	}
}

func TestSharedSchemasAreIsolated(t *testing.T) {
	s := Shared(t)
	a, b := open(t, s.NewSchema(t)), open(t, s.NewSchema(t))
	if _, err := a.Exec("CREATE TABLE x (v INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec("CREATE TABLE x (v INTEGER)"); err != nil {
		t.Fatalf("same table name in another schema: %v", err)
	}
	if _, err := a.Exec("INSERT INTO x VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow("SELECT count(*) FROM x").Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema b sees %d rows (%v)", n, err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Stop on the shared server did not panic")
		}
	}()
	s.Stop()
}

func TestMissingBinariesSkipOrFail(t *testing.T) {
	t.Setenv(envBin, t.TempDir())
	if _, err := findBin(); err == nil {
		t.Fatal("findBin found binaries in an empty directory")
	}
	ft := &fakeTB{TB: t}
	func() {
		defer func() { _ = recover() }()
		t.Setenv(envRequire, "")
		skipOrFatal(ft, errNoPostgres)
	}()
	if !ft.skipped || ft.failed {
		t.Errorf("without %s: skipped=%v failed=%v", envRequire, ft.skipped, ft.failed)
	}
	ft = &fakeTB{TB: t}
	func() {
		defer func() { _ = recover() }()
		t.Setenv(envRequire, "1")
		skipOrFatal(ft, errNoPostgres)
	}()
	if ft.skipped || !ft.failed {
		t.Errorf("with %s=1: skipped=%v failed=%v", envRequire, ft.skipped, ft.failed)
	}
}

// fakeTB records Skipf and Fatalf instead of ending the test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(string, ...any) {
	f.skipped = true
	panic("skip")
}
func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	panic("fatal")
}
