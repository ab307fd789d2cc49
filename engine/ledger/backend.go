package ledger

import (
	"cmp"
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// backend is one SQL database holding the ledger: SQLite (embedded, the
// default) or PostgreSQL (many replicas, one ledger). Both get the same
// schema and the same statements; only placeholders and locking differ.
type backend interface {
	name() string
	insert(ctx context.Context, entries []*Entry, raws [][]byte) error
	// addCounts adds batch's counts, unless an earlier attempt wrote
	// them (already: the outcome of that attempt was lost).
	addCounts(ctx context.Context, batch *countBatch) (already bool, err error)
	checkpoint(ctx context.Context) (frames int, err error)
	query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	// database returns the open database, for a read of its own.
	database(ctx context.Context) (*sql.DB, error)
	// beginRead begins a read-only transaction that sees one state of the
	// database throughout.
	beginRead(ctx context.Context) (*sql.Tx, error)
	// adoptUnlinked links entries without a link (chain.go).
	adoptUnlinked(ctx context.Context) (int, error)
	// chained reports whether the schema has the chain (see chain.go).
	chained(ctx context.Context) (bool, error)
	// reachable opens the database if needed and pings it.
	reachable(ctx context.Context) error
	close() error
}

type sqlBackend struct {
	dialect  string // "sqlite" or "postgres"
	dsn      string
	readOnly bool
	// fingerprint is the writer's key fingerprint, bound to the ledger
	// once it is reachable.
	fingerprint string
	// unreachable is why the database could not be reached at start.
	unreachable error

	mu       sync.Mutex
	db       *sql.DB // nil until (re)opened
	migrated bool
	schema   int // the schema version, once migrated (or checked)
	// inserts are prepared once per db (not once per commit: parsing the
	// statements was an eighth of a small commit's CPU).
	inserts *insertStmts
	// writer is SQLite's connection for writes, taken from db at the
	// first write (see beginWrite); writing holds writing.
	writer  *sql.Conn
	writing sync.Mutex
}

// walSizeLimit is the size SQLite cuts its write-ahead log file back to
// when it starts the log over (PRAGMA journal_size_limit). A checkpoint
// copies frames only up to the oldest read still under way, so while a
// report reads its period (one query, one snapshot: seconds, or minutes
// for a year of a busy ledger) the log is appended to and grows with
// every entry recorded meanwhile (about 2 KB for an entry of 1 KB, an
// admission's or a small decision's, with its index pages). SQLite
// reuses the file from its start afterwards but never shrinks it: without
// a limit the data directory kept the size of the longest read's log for
// good (9 MB after 4,000 small entries recorded during one read, and a
// multiple of that after each longer report). 64 MiB is above the log of
// steady load (23-31 MB measured at 9,000-16,000 denials a second), so
// only a log a long read has grown is cut, once, at the first commit
// after it starts over.
var walSizeLimit = 64 << 20

// openBackend opens the ledger's database. fingerprint identifies the
// pseudonymization key of a writer (see bindKey); readers give none.
//
// unreachable is why a writer's database could not be reached at start
// (it is retried at the first record); err is nil then.
func openBackend(ctx context.Context, cfg Config, fingerprint string) (b backend, unreachable, err error) {
	sb, err := openSQLBackend(ctx, cfg, fingerprint)
	if err != nil {
		return nil, nil, err
	}
	return sb, sb.unreachable, nil
}

func openSQLBackend(ctx context.Context, cfg Config, fingerprint string) (*sqlBackend, error) {
	b := &sqlBackend{readOnly: cfg.ReadOnly, fingerprint: fingerprint}
	switch u := cfg.URL; {
	case u == "" || u == "sqlite":
		path, err := filepath.Abs(filepath.Join(cfg.DataDir, "ledger.db"))
		if err != nil {
			return nil, err
		}
		q := url.Values{}
		if cfg.ReadOnly {
			// Reading takes no write lock and creates no database, so an
			// auditor can export from a write-protected copy.
			q.Set("mode", "ro")
			q.Add("_pragma", "busy_timeout(10000)")
		} else {
			if err := makeDataDir(cfg.DataDir); err != nil {
				return nil, err
			}
			// Created owner-only; SQLite gives its -wal and -shm files the
			// database file's permissions.
			if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
				f.Close()
			}
			// WAL with synchronous=FULL: a commit returns once the WAL is
			// fsynced. busy_timeout covers a reader holding the lock
			// briefly. Checkpoints are not run by the committing
			// connection (wal_autocheckpoint 0) but beside it, see
			// Ledger.checkpointer.
			for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "wal_autocheckpoint(0)", "busy_timeout(10000)", "foreign_keys(1)",
				fmt.Sprintf("journal_size_limit(%d)", walSizeLimit)} {
				q.Add("_pragma", p)
			}
			q.Set("_txlock", "immediate")
		}
		// The path is part of a URI: '?', '#' and '%' in it must not be
		// read as its query, fragment or escapes.
		escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
		b.dialect, b.dsn = "sqlite", "file:"+escaped+"?"+q.Encode()
	case strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://"):
		b.dialect, b.dsn = "postgres", u // parsed by Open's checkURL
	default:
		return nil, checkURL(u)
	}
	// A database that is down at start is retried at the first record; a
	// schema this code cannot use is a configuration error now. A server
	// that accepts the connection and never answers (or a host whose
	// packets are dropped) counts as down after startTimeout: waiting on
	// it, the process served nothing, not even /health, and an
	// orchestrator's liveness probe restarted it again and again.
	// Readers too: a command run from cron that waited on such a server
	// would never end.
	octx := ctx
	if b.dialect == "postgres" {
		bound := startTimeout
		// A reader serves nobody meanwhile: a longer connect_timeout the
		// URL states (a database that is slow to wake) is waited for.
		if pc, err := pgconn.ParseConfig(b.dsn); err == nil && cfg.ReadOnly && pc.ConnectTimeout > bound {
			bound = pc.ConnectTimeout
		}
		var cancel context.CancelFunc
		octx, cancel = context.WithTimeout(ctx, bound)
		defer cancel()
	}
	if _, err := b.conn(octx); err != nil {
		if !errors.Is(err, ErrConfig) && refusedForGood(err) {
			err = fmt.Errorf("%w: the PostgreSQL server refused this ledger's settings, which waiting will not change (%v): check the URL's database, user, password and TLS settings", ErrConfig, err)
		}
		// A reader has nothing to wait for: it reads now or fails.
		if errors.Is(err, ErrConfig) || cfg.ReadOnly {
			b.close()
			return nil, err
		}
		cfg.Logger.Error("ledger not reachable yet; decisions are refused until it is", "backend", b.dialect, "error", err.Error())
		b.unreachable = err
	}
	return b, nil
}

// refusedForGood reports whether err is a PostgreSQL server's answer that
// the ledger's settings cannot work, however long one waits: the login
// refused (class 28: a wrong password, no such role, pg_hba.conf), no
// such database (3D000), or its certificate not verified (an unknown CA,
// another host name). A server that is down, starting or unreachable
// is waited for instead. Started anyway, the replica was ready, and
// refused every decision to be recorded: a rollout with a wrong Secret
// went through every replica, and every meeting server failed open.
func refusedForGood(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "28") || pgErr.Code == "3D000"
	}
	var unverified *tls.CertificateVerificationError
	return errors.As(err, &unverified)
}

// startTimeout bounds the first connection to a PostgreSQL ledger at
// start (a SQLite ledger is a local file).
const startTimeout = 5 * time.Second

// checkURL refuses a --ledger value that names no backend.
func checkURL(u string) error {
	switch {
	case u == "" || u == "sqlite":
		return nil
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		// Parsed now: a malformed URL (sslmode=verify_full) would
		// otherwise start a server that refuses every decision, with
		// every probe saying it is fine.
		// The environment first: the parse reads it (PGSERVICE's file).
		if err := checkEnvironment(u); err != nil {
			return err
		}
		if _, err := pgconn.ParseConfig(u); err != nil {
			return fmt.Errorf("%w: --ledger %s: %s", ErrConfig, quoteSetting(u), parseFailure(err))
		}
		return nil
	}
	return fmt.Errorf("%w: --ledger %s: want \"sqlite\", \"off\" or a postgres:// URL", ErrConfig, quoteSetting(u))
}

// pgEnvironment maps each environment variable the PostgreSQL driver
// reads (pgconn's parseEnvSettings, pgx v5.12) to the setting it gives.
var pgEnvironment = map[string]string{
	"PGHOST": "host", "PGPORT": "port", "PGDATABASE": "database", "PGUSER": "user",
	"PGPASSWORD": "password", "PGPASSFILE": "passfile", "PGAPPNAME": "application_name",
	"PGCONNECT_TIMEOUT": "connect_timeout", "PGSSLMODE": "sslmode", "PGSSLKEY": "sslkey",
	"PGSSLCERT": "sslcert", "PGSSLCERTMODE": "sslcertmode", "PGSSLSNI": "sslsni",
	"PGSSLROOTCERT": "sslrootcert", "PGSSLPASSWORD": "sslpassword", "PGSSLNEGOTIATION": "sslnegotiation",
	"PGTARGETSESSIONATTRS": "target_session_attrs", "PGSERVICE": "service", "PGSERVICEFILE": "servicefile",
	"PGTZ": "timezone", "PGOPTIONS": "options", "PGMINPROTOCOLVERSION": "min_protocol_version",
	"PGMAXPROTOCOLVERSION": "max_protocol_version", "PGCHANNELBINDING": "channel_binding",
	"PGREQUIREAUTH": "require_auth",
}

// checkEnvironment refuses a PostgreSQL ledger URL that the process's
// environment would change. The driver fills every setting a URL leaves
// out from PG* variables, silently: PGSSLMODE=disable turns a URL that
// states no sslmode into a connection without TLS, PGHOST or PGPORT sends
// it to another server, PGOPTIONS="-c search_path=..." has the ledger
// written into another schema, PGSERVICE reads all of these from a file.
// What the ledger connects to, and how, is what --ledger (or
// GEOSCOPE_LEDGER) says and nothing else, so a variable for a setting the
// URL does not state is a configuration error, named (never its value);
// one the URL states is overridden by it and harmless.
//
// What the URL states is read with net/url, which refuses some URLs the
// driver's own parser takes (several hosts, a password holding "#"), and
// splits some otherwise (sameAuthority): of such a URL nothing counts as
// stated, so that any PG* variable is refused rather than let through
// unread.
func checkEnvironment(raw string) error {
	stated := map[string]bool{}
	unread := false
	if u, err := url.Parse(raw); err != nil || !sameAuthority(raw) {
		unread = true
	} else {
		for key, values := range u.Query() {
			switch key {
			case "dbname": // the driver's other name for it
				key = "database"
			case "ssl": // ssl=true is the driver's sslmode=require
				if len(values) > 0 && values[len(values)-1] == "true" {
					key = "sslmode"
				}
			}
			stated[key] = true
		}
		stated["host"] = stated["host"] || u.Hostname() != ""
		stated["port"] = stated["port"] || u.Port() != ""
		stated["database"] = stated["database"] || strings.TrimPrefix(u.Path, "/") != ""
		if u.User != nil {
			// An empty password ("user:@host") is none to the driver,
			// which then takes PGPASSWORD's.
			password, _ := u.User.Password()
			stated["user"] = stated["user"] || u.User.Username() != ""
			stated["password"] = stated["password"] || password != ""
		}
	}
	var names, settings []string
	for name, setting := range pgEnvironment {
		value, present := os.LookupEnv(name)
		// As pgconn reads them: an empty variable is unset, but for an
		// empty PGSSLCERTMODE, which it keeps (and refuses).
		if (value != "" || present && setting == "sslcertmode") && !stated[setting] {
			names, settings = append(names, name), append(settings, setting)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	slices.Sort(settings)
	if unread {
		return fmt.Errorf("%w: the environment sets %s, which the PostgreSQL driver would apply to the --ledger connection, and the URL cannot be read here to tell whether it states them (several hosts, or a character such as # or ? left unescaped in its password): "+
			"the URL alone configures the ledger's connection; percent-escape the password, or unset the variables", ErrConfig, strings.Join(names, ", "))
	}
	return fmt.Errorf("%w: the environment sets %s, which the PostgreSQL driver would apply to the --ledger connection, whose URL states no %s: "+
		"the URL alone configures the ledger's connection; state the setting in it (sslmode=verify-full, ...) or unset the variable",
		ErrConfig, strings.Join(names, ", "), strings.Join(settings, ", "))
}

// sameAuthority reports whether net/url and the driver split raw, a
// postgres:// URL, into the same user information and host. The driver
// reads it as libpq does: the user information ends at the first "@"
// before the first "/", wherever a "?" or "#" is; net/url ends the
// authority at the first "/", "?" or "#", and the user information at
// its last "@". A password holding "?" or "#" after a part net/url takes
// for a host and port ("user:5432?sslmode=verify-full@db/geoscope",
// "user:12#x@db/geoscope"), or a second "@", has net/url read a query,
// a port or a password the driver does not: what it says is stated
// cannot be trusted.
func sameAuthority(raw string) bool {
	_, rest, _ := strings.Cut(raw, "://")
	if slash := strings.IndexByte(rest, '/'); slash >= 0 {
		rest = rest[:slash]
	}
	at := strings.IndexByte(rest, '@')
	return at < 0 || strings.Count(rest, "@") == 1 && !strings.ContainsAny(rest[:at], "?#")
}

// parseFailure is why pgconn could not parse a URL, without the URL
// (which its error repeats, and which may hold a password).
func parseFailure(err error) string {
	// pgconn's message is "cannot parse `URL`: why (cause)".
	if _, why, ok := strings.Cut(err.Error(), "`: "); ok && !strings.Contains(why, "://") && !strings.Contains(why, "@") {
		return why
	}
	return "not a PostgreSQL connection URL"
}

// quoteSetting quotes a --ledger value that names no backend for an error
// message, unless it may hold a password: a URL's is redacted, and a value
// that is not a URL with its password where a URL keeps it (a libpq
// key=value string, "user:password@host" without the "//") is not shown.
func quoteSetting(s string) string {
	u, err := url.Parse(s)
	switch {
	case err == nil && u.RawQuery != "" && (u.Scheme == "postgres" || u.Scheme == "postgresql"):
		// libpq and pgx take a password as a query parameter too.
		q, qerr := url.ParseQuery(u.RawQuery)
		if qerr != nil {
			return "(value not shown: it may hold a password)"
		}
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return strconv.Quote(u.Redacted())
	case err == nil && u.User != nil:
		return strconv.Quote(u.Redacted())
	case err != nil, strings.ContainsAny(s, "@= \t"), len(s) > 128:
		return "(value not shown: it may hold a password)"
	}
	return strconv.Quote(s)
}

func (b *sqlBackend) name() string { return b.dialect }

// conn returns the open, migrated database, opening it if needed. After a
// failed write the SQLite handle is dropped and reopened here, so a data
// directory that was read-only or full recovers without a restart.
func (b *sqlBackend) conn(ctx context.Context) (*sql.DB, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.db == nil {
		driver := "sqlite"
		if b.dialect == "postgres" {
			driver = "pgx"
		}
		db, err := sql.Open(driver, b.dsn)
		if err != nil {
			return nil, err
		}
		if b.dialect == "sqlite" {
			// One writer at a time is what SQLite does anyway; readers use
			// the other connections (WAL lets them run beside the writer).
			// All four stay open once opened: database/sql keeps only two
			// idle unless told, and closed the others as each read ended,
			// so concurrent reads opened the database's files and read its
			// schema again, each time. The fdReserve counts them open.
			db.SetMaxOpenConns(4)
			db.SetMaxIdleConns(4)
		} else {
			// The connections a burst of reads opened stay for the next
			// one, until idle for 5 minutes: database/sql keeps only two
			// unless told, and closed the rest as each query ended, so
			// under load every other read started a backend and
			// authenticated again.
			db.SetMaxOpenConns(16)
			db.SetMaxIdleConns(16)
			db.SetConnMaxIdleTime(5 * time.Minute)
		}
		b.db = db
	}
	if !b.migrated {
		check := migrate
		if b.readOnly {
			check = checkSchema
		}
		schema, err := check(ctx, b.db, b.dialect)
		if err != nil && b.readOnly && b.dialect == "sqlite" && !strings.Contains(b.dsn, "immutable=1") {
			// A WAL database can only be read where SQLite may create its
			// -shm file. Where it may not (a write-protected copy, a
			// read-only mount), nobody can be writing either, so the file
			// is read as immutable.
			b.db.Close()
			b.dsn += "&immutable=1"
			if b.db, err = sql.Open("sqlite", b.dsn); err == nil {
				schema, err = check(ctx, b.db, b.dialect)
			}
		}
		if err == nil && !b.readOnly && b.fingerprint != "" {
			err = b.bindKey(ctx, b.db)
		}
		if err != nil {
			if b.dialect == "sqlite" {
				b.db.Close()
				b.db = nil
			}
			return nil, err
		}
		b.migrated, b.schema = true, schema
	}
	return b.db, nil
}

func (b *sqlBackend) database(ctx context.Context) (*sql.DB, error) { return b.conn(ctx) }

func (b *sqlBackend) chained(ctx context.Context) (bool, error) {
	if _, err := b.conn(ctx); err != nil {
		if errors.Is(err, ErrConfig) || errors.Is(err, ErrUnavailable) {
			return false, err
		}
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.schema >= chainSchema, nil
}

func (b *sqlBackend) beginRead(ctx context.Context) (*sql.Tx, error) {
	db, err := b.conn(ctx)
	if err != nil {
		return nil, err
	}
	opts := &sql.TxOptions{ReadOnly: true}
	if b.dialect == "postgres" {
		// READ COMMITTED, PostgreSQL's default, gives each statement a
		// state of its own. A SQLite transaction reads one state of its
		// log once it has read anything.
		opts.Isolation = sql.LevelRepeatableRead
	}
	return db.BeginTx(ctx, opts)
}

func (b *sqlBackend) reset() {
	if b.dialect != "sqlite" {
		return // the pgx pool replaces broken connections itself
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeLocked() //nolint:errcheck // reopened at the next use
}

// closeLocked closes the writing connection and the database, to be
// opened again (and its schema checked again) at the next use. b.mu is
// held.
func (b *sqlBackend) closeLocked() error {
	if b.writer != nil {
		b.writer.Close()
		b.writer = nil
	}
	if b.db == nil {
		return nil
	}
	err := b.db.Close()
	b.db, b.migrated, b.inserts = nil, false, nil
	return err
}

// beginWrite begins a transaction that writes; done ends the hold on the
// writing connection, after the transaction's end.
//
// SQLite's writes are all made on one connection of the pool, kept for
// them. A connection that begins a transaction and finds the database
// changed by another connection since its last one drops its whole page
// cache (and gives its memory back) and reads the pages again. With the
// pool handing commits to whichever connection was free, that happened at
// most commits: 1.7 % of the server's CPU in a profile of durable denials,
// besides the pages read again. PostgreSQL's pool has no such cache.
func (b *sqlBackend) beginWrite(ctx context.Context, db *sql.DB) (tx *sql.Tx, done func(), err error) {
	if b.dialect != "sqlite" {
		// READ COMMITTED, whatever the server's default: a commit reads
		// the chain's head after taking its lock (lockHead), and a
		// snapshot taken before that would miss the last commit's.
		tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
		return tx, func() {}, err
	}
	b.writing.Lock()
	w, err := b.writerConn(ctx, db)
	if err == nil {
		if tx, err = w.BeginTx(ctx, nil); err != nil {
			// A connection that cannot begin (broken, or closed by
			// database/sql) is not kept: the next write takes another.
			b.mu.Lock()
			if b.writer == w {
				b.writer = nil
			}
			b.mu.Unlock()
			w.Close()
		}
	}
	if err != nil {
		b.writing.Unlock()
		return nil, nil, err
	}
	return tx, b.writing.Unlock, nil
}

// writerConn returns the connection kept for writes to db, taking one
// from the pool if there is none. Taking one may wait for a reader to
// give one back, so it is done without holding b.mu.
func (b *sqlBackend) writerConn(ctx context.Context, db *sql.DB) (*sql.Conn, error) {
	b.mu.Lock()
	w, current := b.writer, b.db == db
	b.mu.Unlock()
	if !current {
		return nil, fmt.Errorf("%w: the database was reopened", ErrUnavailable)
	}
	if w != nil {
		return w, nil
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.db == db && b.writer == nil {
		b.writer = c
	}
	w = b.writer
	b.mu.Unlock()
	if w != c {
		c.Close()
	}
	if w == nil {
		return nil, fmt.Errorf("%w: the database was closed", ErrUnavailable)
	}
	return w, nil
}

func (b *sqlBackend) rebind(q string) string { return rebind(b.dialect, q) }

// bindKey records the writer's key fingerprint in a ledger that has none,
// and refuses a ledger written with another key: its pseudonyms would
// match none of the entries before (an auditor could no longer find a
// person's history), and replicas with different keys would record the
// same person under two names. One statement decides, so replicas
// starting together with different keys cannot both win.
func (b *sqlBackend) bindKey(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, b.rebind(`INSERT INTO ledger_key (id, fingerprint, since) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`),
		b.fingerprint, time.Now().UnixNano()); err != nil {
		return err
	}
	var bound string
	if err := db.QueryRowContext(ctx, `SELECT fingerprint FROM ledger_key WHERE id = 1`).Scan(&bound); err != nil {
		return err
	}
	if bound != b.fingerprint {
		return fmt.Errorf("%w: this ledger was written with another pseudonymization key (fingerprint %s; the key given has %s): "+
			"give the ledger's own key (--ledger-key-file, or the ledger.key backed up from --data-dir)", ErrConfig, bound, b.fingerprint)
	}
	return nil
}

// rebind turns the statements' "?" placeholders into PostgreSQL's $n.
func rebind(dialect, q string) string {
	if dialect != "postgres" {
		return q
	}
	var sb strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			sb.WriteString("$" + strconv.Itoa(n))
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// insert commits entries (raws are their stored texts) in one
// transaction, chained after the ledger's head (chain.go). An entry
// already in the ledger (a retried commit that had in fact succeeded, a
// journal copied again) is left as it is, with its link.
func (b *sqlBackend) insert(ctx context.Context, entries []*Entry, raws [][]byte) error {
	entries, raws = firstOfEach(entries, raws)
	// Entries already stored are found only when an insert skips them,
	// which is rare: the transaction is then rolled back (its numbers
	// counted them) and tried again without them.
	for attempt := 1; ; attempt++ {
		err := b.insertChained(ctx, entries, raws)
		switch {
		case !errors.Is(err, errStoredBefore):
			return err
		case attempt == 3:
			return fmt.Errorf("%w: entries kept appearing in the ledger while they were inserted", ErrUnavailable)
		}
		if entries, raws, err = b.notStored(ctx, entries, raws); err != nil || len(entries) == 0 {
			return err
		}
	}
}

// errStoredBefore: an entry of the batch is in the ledger already.
var errStoredBefore = errors.New("entry stored before")

// firstOfEach drops the entries whose decision id an earlier one has (the
// same decision recorded twice, concurrently).
func firstOfEach(entries []*Entry, raws [][]byte) ([]*Entry, [][]byte) {
	if len(entries) < 2 {
		return entries, raws
	}
	seen := make(map[string]bool, len(entries))
	es, rs := make([]*Entry, 0, len(entries)), make([][]byte, 0, len(raws))
	for i, e := range entries {
		if !seen[e.DecisionID] {
			seen[e.DecisionID] = true
			es, rs = append(es, e), append(rs, raws[i])
		}
	}
	return es, rs
}

// notStored returns the entries not in the ledger.
func (b *sqlBackend) notStored(ctx context.Context, entries []*Entry, raws [][]byte) ([]*Entry, [][]byte, error) {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.DecisionID
	}
	stored, err := storedIDs(ctx, b, ids)
	if err != nil {
		return nil, nil, err
	}
	var es []*Entry
	var rs [][]byte
	for i, e := range entries {
		if !stored[e.DecisionID] {
			es, rs = append(es, e), append(rs, raws[i])
		}
	}
	return es, rs, nil
}

// idsPerQuery is how many ids storedIDs asks about in one query (SQLite
// allows 32,766 parameters).
const idsPerQuery = 500

// storedIDs returns which of ids the ledger's tables hold.
func storedIDs(ctx context.Context, b backend, ids []string) (map[string]bool, error) {
	found := make(map[string]bool, len(ids))
	for start := 0; start < len(ids); start += idsPerQuery {
		batch := ids[start:min(start+idsPerQuery, len(ids))]
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		rows, err := b.query(ctx, `SELECT decision_id FROM ledger_decisions WHERE decision_id IN (?`+strings.Repeat(", ?", len(batch)-1)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			found[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return found, nil
}

func (b *sqlBackend) insertChained(ctx context.Context, entries []*Entry, raws [][]byte) (err error) {
	db, err := b.conn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && !errors.Is(err, errStoredBefore) {
			b.reset()
		}
	}()
	stmts, err := b.prepared(ctx, db)
	if err != nil {
		return err
	}
	tx, done, err := b.beginWrite(ctx, db)
	if err != nil {
		return err
	}
	defer done()
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	head, err := b.lockHead(ctx, tx)
	if err != nil {
		return err
	}
	// Rows are inserted rowsPerInsert at a time: one statement per table
	// for a typical batch, rather than one per row (each execution costs
	// the driver and SQLite's virtual machine a round of their own).
	var orders []any
	for start := 0; start < len(entries); start += rowsPerInsert {
		chunk := entries[start:min(len(entries), start+rowsPerInsert)]
		args := make([]any, 0, decisionColumns*len(chunk))
		for i, e := range chunk {
			var allow any
			if e.AllowJoin != nil {
				allow = boolInt(*e.AllowJoin)
			}
			at := e.Time.UnixNano()
			var raw any = raws[start+i]
			if b.dialect != "sqlite" {
				raw = string(raws[start+i])
			}
			head.seq++
			head.link = link(head.link, head.seq, raws[start+i])
			args = append(args, e.DecisionID, at, e.Kind, e.MeetingID, allow, raw, e.Replica, head.seq, hex.EncodeToString(head.link[:]))
			// An order is found by the entries that evaluated it and by
			// those it targeted while not in force (whose guard blocks may
			// cite it): the report counts both under its authority.
			for _, o := range e.Orders {
				orders = append(orders, e.DecisionID, o.OrderID, o.Authority, at)
			}
			for _, o := range e.OrdersNotInForce {
				orders = append(orders, e.DecisionID, o.OrderID, o.Authority, at)
			}
		}
		res, err := stmts.exec(ctx, b, tx, decisionsTable, args)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != int64(len(chunk)) {
			return errStoredBefore
		}
	}
	for len(orders) > 0 {
		n := min(len(orders), orderColumns*rowsPerInsert)
		if _, err := stmts.exec(ctx, b, tx, ordersTable, orders[:n]); err != nil {
			return err
		}
		orders = orders[n:]
	}
	return tx.Commit()
}

// lockHead takes the chain's lock in tx, which writes (SQLite's IMMEDIATE
// transaction holds the database's write lock already), and reads the
// head.
//
// On PostgreSQL the transaction also ends itself if it sits idle for
// idleInTransaction: a replica that hangs or is cut off in the middle of
// a commit holds the lock, and every replica's commits wait for it; the
// server would otherwise notice only when TCP gives up, which by default
// takes hours. Set for this transaction alone (set_config's is_local), in
// the statement that takes the lock: a URL parameter would be a startup
// parameter, which a connection pooler such as PgBouncer may refuse.
func (b *sqlBackend) lockHead(ctx context.Context, tx *sql.Tx) (chainHead, error) {
	if b.dialect == "postgres" {
		if _, err := tx.ExecContext(ctx, `SELECT set_config('idle_in_transaction_session_timeout', '`+idleInTransaction+`', true), pg_advisory_xact_lock(`+strconv.Itoa(chainLock)+`)`); err != nil {
			return chainHead{}, err
		}
	}
	return readHead(ctx, tx)
}

// idleInTransaction bounds how long a commit's transaction may sit idle
// on PostgreSQL, that is, between the end of one of its statements and
// the next: how long one replica frozen in a commit (a stopped VM or
// container, a node cut off the network, a process paused) keeps every
// replica from recording. A live writer leaves milliseconds between two
// statements (hashing and encoding a chunk of entries), and no answer
// waits longer than 5 s for its commit (engine's record timeout), so a
// transaction idle for that long has nobody waiting for it. It was 60 s:
// a replica stopped while it held the lock had every replica of the
// cluster refuse recorded decisions for a minute (each after waiting
// 5 s), where now they do so for about 5 s
// (tests/ledger_replicas_test.go).
const idleInTransaction = "5s"

// adoptUnlinked links up to adoptBatch entries without a link, oldest
// first, after the head, in a transaction of its own, and returns how
// many it linked (see chain.go).
func (b *sqlBackend) adoptUnlinked(ctx context.Context) (n int, err error) {
	db, err := b.conn(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			b.reset()
		}
	}()
	tx, done, err := b.beginWrite(ctx, db)
	if err != nil {
		return 0, err
	}
	defer done()
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	head, err := b.lockHead(ctx, tx)
	if err != nil {
		return 0, err
	}
	rows, err := tx.QueryContext(ctx, b.rebind(`SELECT decision_id, entry FROM ledger_decisions WHERE chain_seq IS NULL ORDER BY decided_at, decision_id LIMIT ?`), adoptBatch)
	if err != nil {
		return 0, err
	}
	var ids []string
	var raws [][]byte
	for rows.Next() {
		var id any
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return 0, err
		}
		// An id that is not text (SQLite keeps any type in any column)
		// was not written by geoscope, and an UPDATE by it would match
		// nothing: it is left without a link, for Verify to report.
		if s, ok := id.(string); ok {
			ids, raws = append(ids, s), append(raws, raw)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	stmt, err := tx.PrepareContext(ctx, b.rebind(`UPDATE ledger_decisions SET chain_seq = ?, chain_link = ? WHERE decision_id = ? AND chain_seq IS NULL`))
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	for i, id := range ids {
		head.seq++
		head.link = link(head.link, head.seq, raws[i])
		res, err := stmt.ExecContext(ctx, head.seq, hex.EncodeToString(head.link[:]), id)
		if err != nil {
			return 0, err
		}
		// A number given to no row would be a gap in the chain.
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return 0, fmt.Errorf("linking decision %s: %d rows updated (%v)", id, n, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// rowsPerInsert bounds the rows of one INSERT statement.
const rowsPerInsert = 16

// The tables a commit writes, and their columns per row.
const (
	decisionsTable, decisionColumns = 0, 9
	ordersTable, orderColumns       = 1, 4
)

// insertStmts are the statements of a commit, prepared on the database
// once per table and number of rows, the first time they are needed.
type insertStmts struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts [2][rowsPerInsert + 1]*sql.Stmt
}

// exec inserts the rows whose columns are args into table, in tx.
func (s *insertStmts) exec(ctx context.Context, b *sqlBackend, tx *sql.Tx, table int, args []any) (sql.Result, error) {
	columns := decisionColumns
	if table == ordersTable {
		columns = orderColumns
	}
	rows := len(args) / columns
	s.mu.Lock()
	stmt := s.stmts[table][rows]
	if stmt == nil {
		var err error
		if stmt, err = s.db.PrepareContext(ctx, b.rebind(insertSQL(b.dialect, table, rows))); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.stmts[table][rows] = stmt
	}
	s.mu.Unlock()
	return tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
}

// insertSQL is the INSERT of rows rows into table. An entry stored
// already (a retried commit that had in fact succeeded) is skipped: insert
// sees it in the rows affected, and commits the batch again without it,
// so that it keeps its place in the chain.
//
// SQLite's is INSERT OR FAIL: a statement that fails keeps the rows it
// inserted before failing, instead of undoing them (ABORT, the default).
// Undoing them needs a statement journal, a copy of every page the
// statement changes, which SQLite writes to a temporary file once it
// passes 64 KiB: for a multi-row insert of entries of a kilobyte or more,
// as many system calls as the commit's own log writes. A statement never
// fails alone here: any error rolls back the whole transaction (insert),
// so nothing of a failed batch is kept either way.
func insertSQL(dialect string, table, rows int) string {
	verb, entry := "INSERT INTO", "?"
	if dialect == "sqlite" {
		// SQLite is given the entry's bytes (see insert), stored as text:
		// a string made of them would be a copy of each entry, for the
		// driver to copy again.
		verb, entry = "INSERT OR FAIL INTO", "CAST(? AS TEXT)"
	}
	head, row, tail := ` ledger_decisions (decision_id, decided_at, kind, meeting_id, allow_join, entry, replica, chain_seq, chain_link) VALUES `,
		`(?, ?, ?, ?, ?, `+entry+`, ?, ?, ?)`, ` ON CONFLICT (decision_id) DO NOTHING`
	if table == ordersTable {
		head, row, tail = ` ledger_decision_orders (decision_id, order_id, authority, decided_at) VALUES `,
			`(?, ?, ?, ?)`, ` ON CONFLICT (decision_id, order_id) DO NOTHING`
	}
	var sb strings.Builder
	sb.WriteString(verb)
	sb.WriteString(head)
	for i := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(row)
	}
	sb.WriteString(tail)
	return sb.String()
}

// prepared returns the insert statements of db.
func (b *sqlBackend) prepared(_ context.Context, db *sql.DB) (*insertStmts, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inserts == nil || b.inserts.db != db {
		b.inserts = &insertStmts{db: db}
	}
	return b.inserts, nil
}

// checkpoint copies committed WAL frames into the SQLite database file
// (PASSIVE: without waiting for, or blocking, readers and the writer) and
// returns how many frames the log held when it started. PostgreSQL needs
// nothing of the kind.
func (b *sqlBackend) checkpoint(ctx context.Context) (frames int, err error) {
	if b.dialect != "sqlite" || b.readOnly {
		return 0, nil
	}
	db, err := b.conn(ctx)
	if err != nil {
		return 0, err
	}
	// busy is 1 when another checkpoint ran; frames is -1 when the
	// database is not in WAL mode.
	var busy, copied int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		return 0, err
	}
	return max(frames, 0), nil
}

// addCounts adds batch's counts to the aggregate rows, and records in the
// same transaction that the batch is written: its writer's row in
// ledger_count_flushes holds the number of the writer's last batch
// written. A batch sent again after an attempt whose outcome was lost (a
// connection cut during COMMIT, a deadline reached as the server
// committed) finds its number there if that attempt committed, and adds
// nothing: already is true. A writer sends its batches in order, each
// once the one before is known written (Ledger.flushCounts), so the
// number alone tells.
func (b *sqlBackend) addCounts(ctx context.Context, batch *countBatch) (already bool, err error) {
	db, err := b.conn(ctx)
	if err != nil {
		return false, err
	}
	tx, done, err := b.beginWrite(ctx, db)
	if err != nil {
		return false, err
	}
	defer done()
	defer tx.Rollback() //nolint:errcheck
	now := time.Now()
	// First, so that on PostgreSQL an attempt still running for the
	// same batch (its client gone, the server not yet aware) holds the
	// row until it ends, and this one then sees its outcome.
	res, err := tx.ExecContext(ctx, b.rebind(`INSERT INTO ledger_count_flushes (writer, batch, flushed_at) VALUES (?, ?, ?)
		ON CONFLICT (writer) DO UPDATE SET batch = excluded.batch, flushed_at = excluded.flushed_at
		WHERE ledger_count_flushes.batch < excluded.batch`), batch.writer, batch.seq, now.UnixNano())
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, err
	} else if n == 0 {
		return true, nil
	}
	stmt, err := tx.PrepareContext(ctx, b.rebind(`INSERT INTO ledger_quiet_counts (day, kind, meeting_id, order_ids, n)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (day, kind, meeting_id, order_ids) DO UPDATE SET n = ledger_quiet_counts.n + excluded.n`))
	if err != nil {
		return false, err
	}
	// In one order, the same in every replica: two replicas' flushes of
	// the same meetings' rows, each taking them in its map's order,
	// deadlocked on PostgreSQL (which ends one), 139 times in 160 flushes
	// of four replicas at once.
	keys := slices.SortedFunc(maps.Keys(batch.counts), func(a, b countKey) int {
		return cmp.Or(strings.Compare(a.day, b.day), strings.Compare(a.kind, b.kind), strings.Compare(a.meeting, b.meeting), strings.Compare(a.orders, b.orders))
	})
	for _, k := range keys {
		if _, err := stmt.ExecContext(ctx, k.day, k.kind, k.meeting, k.orders, batch.counts[k]); err != nil {
			return false, err
		}
	}
	// Last: a deletion that waits for another replica's, of the same
	// rows, waits for a transaction that adds no more counts, so the two
	// cannot deadlock over the counts' rows.
	if batch.seq%pruneWritersEvery == 1 {
		if _, err := tx.ExecContext(ctx, b.rebind(`DELETE FROM ledger_count_flushes WHERE flushed_at < ?`), now.Add(-countWritersKept).UnixNano()); err != nil {
			return false, err
		}
	}
	if err := tx.Commit(); err != nil {
		b.reset()
		return false, err
	}
	return false, nil
}

// countWritersKept is how long the row of a writer that wrote no counts
// since is kept in ledger_count_flushes: a writer's row is written again
// at each of its flushes, so only the rows of writers that stopped (a
// process per start) are old, and a table of them would grow with every
// restart. Deleting a writer's row is safe unless that writer still holds
// a batch whose outcome was lost and sends it again later than this: it
// sends it again every second while it runs, so only if its path to the
// database stays broken for this long after the lost commit, an outage
// nobody would leave unattended for a month. A deleted row makes such a
// batch counted twice; nothing is lost either way.
const countWritersKept = 30 * 24 * time.Hour

// pruneWritersEvery: the rows of stopped writers are deleted by a
// writer's first batch and every so many after (hourly at one batch a
// second), not by every one: replicas deleting the same rows at once
// would wait for each other.
const pruneWritersEvery = 3600

func (b *sqlBackend) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	db, err := b.conn(ctx)
	if err != nil {
		return nil, err
	}
	return db.QueryContext(ctx, b.rebind(q), args...)
}

func (b *sqlBackend) reachable(ctx context.Context) error {
	db, err := b.conn(ctx)
	if err != nil {
		return err
	}
	return db.PingContext(ctx)
}

func (b *sqlBackend) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closeLocked()
}

// migration is one step of the schema.
type migration struct {
	sql string
	// compatibleFrom is the oldest schema version whose code still reads
	// and writes the ledger correctly once this step is applied: a step
	// that only adds what older code ignores (a column with a default, a
	// table, an index) names the version before it, so replicas of the
	// previous release keep working, and may restart, while a rolling
	// upgrade migrates under them. 0 means only code that knows this step.
	compatibleFrom int
}

// migrations are applied in order, each once, recorded in
// ledger_migrations. Never edit an applied migration; add a new one.
var migrations = []migration{
	// 1: decisions, the orders they cite, aggregate counts.
	{sql: `CREATE TABLE ledger_decisions (
		decision_id TEXT PRIMARY KEY,
		decided_at  BIGINT NOT NULL,
		kind        TEXT NOT NULL,
		meeting_id  TEXT NOT NULL,
		allow_join  INTEGER,
		entry       TEXT NOT NULL
	);
	CREATE INDEX ledger_decisions_time ON ledger_decisions (decided_at, decision_id);
	CREATE TABLE ledger_decision_orders (
		decision_id TEXT NOT NULL,
		order_id    TEXT NOT NULL,
		authority   TEXT NOT NULL,
		decided_at  BIGINT NOT NULL,
		PRIMARY KEY (decision_id, order_id)
	);
	CREATE INDEX ledger_decision_orders_order ON ledger_decision_orders (order_id, decided_at);
	CREATE INDEX ledger_decision_orders_authority ON ledger_decision_orders (authority, decided_at);
	CREATE TABLE ledger_quiet_counts (
		day        TEXT NOT NULL,
		kind       TEXT NOT NULL,
		meeting_id TEXT NOT NULL,
		order_ids  TEXT NOT NULL,
		n          BIGINT NOT NULL,
		PRIMARY KEY (day, kind, meeting_id, order_ids)
	);`},
	// 2: the replica that decided each entry; each later step records how
	// far back it stays compatible. Code of schema 1 inserts without the
	// column and gets ''; it cannot read compatible_from, though, so it
	// refuses to start on this schema (see docs/operations.md, upgrades).
	{sql: `ALTER TABLE ledger_decisions ADD COLUMN replica TEXT NOT NULL DEFAULT '';
	ALTER TABLE ledger_migrations ADD COLUMN compatible_from INTEGER`, compatibleFrom: 1},
	// 3: the fingerprint of the pseudonymization key the ledger is written
	// with (one row), so that a replica or a restart with another key is
	// refused instead of writing pseudonyms that match nothing before.
	// Older code ignores the table.
	{sql: `CREATE TABLE ledger_key (
		id          INTEGER PRIMARY KEY CHECK (id = 1),
		fingerprint TEXT NOT NULL,
		since       BIGINT NOT NULL
	)`, compatibleFrom: 2},
	// 4: the chain (chain.go): every entry inserted from now on gets the
	// next number and a link, and the last chained entry is the head.
	// Entries already there, and those replicas of schema 3 (compatible)
	// insert during a rollout, are linked by the writer after the fact,
	// found through the partial index.
	{sql: `ALTER TABLE ledger_decisions ADD COLUMN chain_seq BIGINT;
	ALTER TABLE ledger_decisions ADD COLUMN chain_link TEXT;
	CREATE UNIQUE INDEX ledger_decisions_chain ON ledger_decisions (chain_seq);
	CREATE INDEX ledger_decisions_unlinked ON ledger_decisions (decided_at, decision_id) WHERE chain_seq IS NULL`, compatibleFrom: 3},
	// 5: the last batch of aggregate counts each writer (a Ledger, one per
	// process start) wrote, recorded with the counts, so that a batch sent
	// again after a commit whose outcome was lost is not added twice
	// (sqlBackend.addCounts). Older code ignores the table and adds its
	// counts as it did, so this step is compatible from the same version
	// as the one before it: a rollback to schema 3 or 4 keeps working.
	{sql: `CREATE TABLE ledger_count_flushes (
		writer     TEXT PRIMARY KEY,
		batch      BIGINT NOT NULL,
		flushed_at BIGINT NOT NULL
	)`, compatibleFrom: 3},
}

// SchemaVersion is the ledger schema version this code migrates to.
func SchemaVersion() int { return len(migrations) }

// compatColumnSince is the migration that added
// ledger_migrations.compatible_from.
const compatColumnSince = 2

// migrate brings the schema to this code's version, and returns the
// version it is at (a newer one than this code's when that is compatible).
func migrate(ctx context.Context, db *sql.DB, dialect string) (int, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck
	if dialect == "postgres" {
		// Replicas starting together must not migrate twice.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(736365)`); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS ledger_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return 0, err
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM ledger_migrations`).Scan(&current); err != nil {
		return 0, err
	}
	if current > len(migrations) {
		return current, newerSchema(ctx, tx, current)
	}
	for v := current + 1; v <= len(migrations); v++ {
		m := migrations[v-1]
		for _, stmt := range strings.Split(m.sql, ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return 0, fmt.Errorf("migration %d: %w", v, err)
			}
		}
		q, args := `INSERT INTO ledger_migrations (version, applied_at) VALUES (?, ?)`, []any{v, time.Now().UnixNano()}
		if v >= compatColumnSince {
			var from any // NULL: only code that knows this step
			if m.compatibleFrom > 0 {
				from = m.compatibleFrom
			}
			q, args = `INSERT INTO ledger_migrations (version, applied_at, compatible_from) VALUES (?, ?, ?)`, append(args, from)
		}
		if _, err := tx.ExecContext(ctx, rebind(dialect, q), args...); err != nil {
			return 0, err
		}
	}
	return len(migrations), tx.Commit()
}

// newerSchema decides about a schema at version current, newer than this
// code: usable when every step this code does not know declares itself
// compatible with this code's version, a configuration error otherwise.
func newerSchema(ctx context.Context, q rowQuerier, current int) error {
	var oldest int
	err := q.QueryRowContext(ctx, fmt.Sprintf(`SELECT COALESCE(MAX(COALESCE(compatible_from, version)), 0) FROM ledger_migrations WHERE version > %d`, len(migrations))).Scan(&oldest)
	if err == nil && oldest <= len(migrations) {
		return nil
	}
	return fmt.Errorf("%w: the ledger schema is at version %d, newer than this geoscope (%d), and not compatible with it", ErrConfig, current, len(migrations))
}

// checkSchema is migrate for readers: it changes nothing and fails unless
// the schema is one this code reads.
func checkSchema(ctx context.Context, db *sql.DB, dialect string) (int, error) {
	var current int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM ledger_migrations`).Scan(&current); err != nil {
		// A PostgreSQL server that cannot be reached is a ledger that
		// cannot be read now, not a wrong address: only an answer from
		// the server (no such table, no such database) says there is no
		// ledger there.
		var pgErr *pgconn.PgError
		switch {
		case errors.Is(err, ErrUnavailable):
			return 0, err
		case dialect == "postgres" && !errors.As(err, &pgErr):
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return 0, fmt.Errorf("%w: no ledger here (%v)", ErrConfig, err)
	}
	switch {
	case current == 0:
		return 0, fmt.Errorf("%w: the ledger holds no schema", ErrConfig)
	case current > len(migrations):
		return current, newerSchema(ctx, db, current)
	}
	return current, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
