// Package ledger is geoscope's durable record of enforcement decisions.
//
// OPA's decision logs are best effort: they are buffered, dropped under
// pressure and lost with the process. Compliance needs the opposite, so the
// ledger is written before a decision is answered: Record returns only once
// the entry is committed (fsynced), and a decision the ledger could not
// take is not answered at all (ErrUnavailable; the meeting server then
// fails open). Concurrent records share one fsync (group commit); no
// caller returns before the commit that holds its entry.
//
// PostgreSQL commits entries in its tables directly. SQLite commits them
// to an append-only journal beside the database (see journal.go), from
// which a writer copies them into the tables in large batches; reads
// through a Ledger wait for the entries recorded before them, and a
// restart after a crash copies what the journal still holds first.
//
// Plain allowed admissions and decisions with nothing to do are not stored
// one by one but counted in aggregate rows, flushed every FlushInterval:
// they carry no enforcement, so a crash may lose at most one interval of
// these counts and nothing else.
package ledger

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/internal/patherr"
	"github.com/geoscope/geoscope/internal/secretfile"
)

// Coded errors, matched with errors.Is.
var (
	// ErrUnavailable: the ledger cannot commit now. The decision must not
	// be answered.
	ErrUnavailable = errors.New("ledger unavailable")
	// ErrNotFound: no entry has that decision id.
	ErrNotFound = errors.New("no such decision in the ledger")
	// ErrConfig: the ledger configuration is unusable.
	ErrConfig = errors.New("invalid ledger configuration")
)

// Config configures a ledger.
type Config struct {
	// URL selects the backend: "" or "sqlite" for SQLite in DataDir, or a
	// postgres:// (postgresql://) URL.
	URL string
	// DataDir holds the SQLite database and the generated key.
	DataDir string
	// KeyFile holds the pseudonymization key (at least 32 bytes, raw or
	// hex). Empty: DataDir/ledger.key, generated on first start.
	KeyFile string
	// EngineVersion is written into every entry.
	EngineVersion string
	// Replica names the process that decides, written into every entry so
	// that a ledger shared by many replicas shows who decided what. Empty:
	// DefaultReplica(). See ValidReplica for what a name may hold.
	Replica string
	// FlushInterval is how often aggregate counts are written.
	FlushInterval time.Duration
	// MaxBatch bounds one group commit.
	MaxBatch int
	// CopyDelay is how long the SQLite ledger lets journaled entries
	// gather before it copies them into its tables (see copyDelay, the
	// default); a read through this Ledger does not wait for it.
	CopyDelay time.Duration
	// ReadOnly opens an existing ledger for reading (reports, exports): it
	// writes no entry, needs no key (a KeyFile given is checked against
	// the key the ledger was written with), and refuses to record (SQLite may
	// still create its -shm and -wal files beside a database in a
	// writable directory).
	ReadOnly bool
	// Pseudonyms, with ReadOnly, loads the ledger's key (KeyFile, or
	// DataDir/ledger.key; never a new one) and checks it against the
	// ledger, so that Pseudonymizer computes the pseudonyms its entries
	// hold: an operator finds the entries of a person whose id it holds.
	Pseudonyms bool
	Logger     *slog.Logger
}

// KeyInDataDir is where a SQLite ledger's key is kept when no KeyFile
// is given (generated there on first start), and ok is false for a
// PostgreSQL ledger, whose key is always given: replicas share it.
func (c Config) KeyInDataDir() (path string, ok bool) {
	if c.URL != "" && c.URL != "sqlite" {
		return "", false
	}
	return filepath.Join(c.DataDir, keyFileName), true
}

// keyFileName is the key's file in a data directory.
const keyFileName = "ledger.key"

// DefaultDataDir is where the SQLite ledger lives by default.
const DefaultDataDir = "geoscope-data"

// Ledger records decisions. It implements engine.Recorder.
type Ledger struct {
	cfg     Config
	backend backend
	pseudo  *Pseudonymizer
	log     *slog.Logger

	writes chan *pending
	stop   chan struct{}
	done   chan struct{}

	// The journal (SQLite only; nil otherwise). Record hands entries to
	// the journaling goroutine on journalWrites; once they are durable
	// there, it hands them on to the writer, which copies them into the
	// tables. journalStop stops the journaling goroutine, journalDone
	// says it has stopped.
	journal       *journal
	journalWrites chan *pending
	journalStop   chan struct{}
	journalDone   chan struct{}
	// journaled and indexed count the entries committed to the journal
	// and copied from it into the tables; progress is closed (and
	// replaced) whenever indexed grows.
	journaled, indexed atomic.Int64
	progressMu         sync.Mutex
	progress           chan struct{}
	// backlog is how many journaled entries the writer failed to copy
	// and retries; while there are any, nothing new is recorded.
	backlog atomic.Int64
	// committed wakes the checkpointer after a commit; checkpointed is
	// closed when it has stopped. uncheckpointed counts the bytes of
	// entries committed since the last checkpoint began.
	uncheckpointed atomic.Int64
	committed      chan struct{}
	checkpointed   chan struct{}
	// finish asks the writer to copy the last frames of the log.
	finish chan struct{}
	// hurry asks the writer to copy what it has gathered now: a reader
	// waits for it (see settle).
	hurry chan struct{}

	// adoptNext is when the writer next looks for entries without a
	// link; adoptMore says its last look left some (see adopt).
	adoptNext time.Time
	adoptMore bool

	// countsFailingSince is when writing the aggregate counts began to
	// fail (zero while it does not), countsLoggedAt when that was last
	// logged; only the writer's goroutine, which flushes them, uses them,
	// and the three below.
	countsFailingSince, countsLoggedAt time.Time
	// countsWriter identifies this Ledger's batches of counts in the
	// ledger, with their numbers (countsSeq is the last one's);
	// countsPending is the batch not known written, sent again as it is
	// (see flushCounts).
	countsWriter  string
	countsSeq     int64
	countsPending *countBatch

	// observe, when set, is told of every write (see ObserveWrites).
	observe atomic.Pointer[func(Write)]

	// sendMu orders Record's enqueue against Close: once Close holds it,
	// nothing more is queued, so everything queued is drained.
	sendMu sync.RWMutex
	closed bool

	mu     sync.Mutex
	counts map[countKey]int64
	// lastErr is the backend's latest failure (nil after a success),
	// journalErr the journal's.
	journalErr error
	lastErr    error
	lastErrT   time.Time
	// rechecked is closed when recheckStart has ended (nil: not run).
	rechecked chan struct{}
	lastOK    time.Time

	// unseen is how many journaled entries a read-only ledger found
	// missing from the database when it opened (see warnUnindexed).
	unseen int
}

// Unseen is how many entries were in the data directory's journal, and
// not yet in the database, when this read-only ledger opened: a reader
// does not see them (after a crash, until `geoscope serve` next starts on
// the directory). 0 for a ledger that writes, which copies them first.
func (l *Ledger) Unseen() int { return l.unseen }

type pending struct {
	entry *Entry
	raw   []byte
	// done receives the commit's outcome; nil for an entry the journal
	// has committed, which the writer only copies into the tables.
	done chan error
	// segment is the journal segment holding the entry.
	segment int
}

type countKey struct {
	day, kind, meeting, orders string
}

// countBatch is one flush of aggregate counts, identified in the ledger
// by its writer and number (see sqlBackend.addCounts).
type countBatch struct {
	writer string
	seq    int64 // 1, 2, ...: a writer's batches, written in this order
	counts map[countKey]int64
}

// Validate makes the checks of Open that read the configuration alone
// and create nothing: the backend the URL names and, for a ledger that
// records, the replica's name, the key file a PostgreSQL ledger needs and
// a SQLite data directory that other users cannot write (checkDataDir).
// A server makes them before it binds its address, so that an address in
// use does not hide them (the operator who frees it is refused for them
// next); Open makes them again, first.
func (c Config) Validate() error {
	// A backend nobody can open is named before anything else is checked.
	if err := checkURL(c.URL); err != nil {
		return err
	}
	if c.ReadOnly {
		return nil
	}
	if err := ValidReplica(cmp.Or(c.Replica, DefaultReplica())); err != nil {
		return fmt.Errorf("%w: --replica-id: %v", ErrConfig, err)
	}
	if _, sqlite := c.KeyInDataDir(); sqlite {
		return checkDataDir(cmp.Or(c.DataDir, DefaultDataDir))
	}
	if c.KeyFile == "" {
		// Replicas sharing one ledger must share one key, or the same
		// person gets a different pseudonym from each replica.
		return fmt.Errorf("%w: a shared PostgreSQL ledger needs --ledger-key-file, the same on every replica", ErrConfig)
	}
	return nil
}

// Open connects to the backend, applies migrations, loads (or creates) the
// key and starts the writer.
func Open(ctx context.Context, cfg Config) (*Ledger, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 256
	}
	if cfg.CopyDelay == 0 {
		cfg.CopyDelay = copyDelay
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if !cfg.ReadOnly && cfg.Replica == "" {
		cfg.Replica = DefaultReplica()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var key []byte
	// readKey: a reader loads the ledger's own key from DataDir (Pseudonyms
	// without a KeyFile), as it would a KeyFile.
	readKey := false
	if cfg.ReadOnly {
		// Reading needs no pseudonyms but to find a previewed order by
		// its id (Query.Order), which takes the key given; without one,
		// a random key keeps the pseudonymizer defined without touching
		// any file.
		if cfg.URL == "" || cfg.URL == "sqlite" {
			switch _, err := os.Stat(filepath.Join(cfg.DataDir, "ledger.db")); {
			case errors.Is(err, os.ErrNotExist):
				return nil, fmt.Errorf("%w: --data-dir %s holds no ledger", ErrConfig, cfg.DataDir)
			case err != nil:
				// Permission denied, most likely: the ledger may well be there.
				return nil, fmt.Errorf("%w: --data-dir %s: %v", ErrConfig, cfg.DataDir, patherr.Cause(err))
			}
		}
		if cfg.Pseudonyms && cfg.KeyFile == "" {
			path, ok := cfg.KeyInDataDir()
			if !ok {
				return nil, fmt.Errorf("%w: the pseudonyms of a PostgreSQL ledger are made with the replicas' key: give it with --ledger-key-file", ErrConfig)
			}
			if _, err := os.Stat(path); err != nil {
				return nil, fmt.Errorf("%w: --data-dir %s holds no ledger key (ledger.key): give the ledger's key with --ledger-key-file", ErrConfig, cfg.DataDir)
			}
			// Read (loadKey's default path) and checked against the
			// ledger as a key given is.
			readKey = true
		}
		if cfg.KeyFile != "" || readKey {
			var err error
			if key, err = loadKey(cfg); err != nil {
				return nil, err
			}
		} else {
			key = make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return nil, err
			}
		}
	} else {
		var err error
		if key, err = loadKey(cfg); err != nil {
			return nil, err
		}
	}
	fingerprint := ""
	if !cfg.ReadOnly {
		fingerprint = keyFingerprint(key)
	}
	b, unreachable, err := openBackend(ctx, cfg, fingerprint)
	if err != nil {
		return nil, err
	}
	if cfg.ReadOnly && (cfg.KeyFile != "" || readKey) {
		if err := checkReaderKey(ctx, b, cfg, key); err != nil {
			b.close()
			return nil, err
		}
	}
	l := &Ledger{
		cfg: cfg, backend: b, pseudo: NewPseudonymizer(key), log: cfg.Logger,
		// Room for what the journal commits while the writer copies its
		// largest batch.
		writes: make(chan *pending, 2*copyBatchFactor*cfg.MaxBatch),
		hurry:  make(chan struct{}, 1),
		stop:   make(chan struct{}), done: make(chan struct{}),
		committed: make(chan struct{}, 1), checkpointed: make(chan struct{}), finish: make(chan struct{}, 1),
		counts:      map[countKey]int64{},
		journalStop: make(chan struct{}), journalDone: make(chan struct{}),
		progress: make(chan struct{}),
	}
	if !cfg.ReadOnly {
		// Drawn at every start, never derived from the replica's name: a
		// restart numbers its batches from 1 again, and would find the
		// numbers of its previous life written.
		w := make([]byte, 16)
		if _, err := rand.Read(w); err != nil {
			b.close()
			return nil, err
		}
		l.countsWriter = hex.EncodeToString(w)
	}
	var startFailure error
	if unreachable != nil {
		// Health says so, rather than ok until the first decision fails,
		// and says so no longer once the database can be reached (see
		// recheckStart, started once Open can no longer fail).
		startFailure = fmt.Errorf("%w: %v", ErrUnavailable, unreachable)
		l.lastErr, l.lastErrT = startFailure, time.Now()
	}
	if b.name() == "sqlite" {
		if cfg.ReadOnly {
			l.warnUnindexed(ctx)
		} else {
			if err := l.replayJournal(ctx); err != nil {
				b.close()
				return nil, err
			}
			var err error
			if l.journal, err = openJournal(cfg.DataDir); err != nil {
				b.close()
				return nil, fmt.Errorf("%w: journal: %v", ErrUnavailable, err)
			}
			l.journalWrites = make(chan *pending, 4*cfg.MaxBatch)
			if why := l.journal.syncer.plainBecause; why != "" {
				l.log.Info("ledger journal: flushes with the plain system call, asynchronous I/O is unavailable", "reason", why)
			}
		}
	}
	if l.journal != nil {
		go l.journaler()
	} else {
		close(l.journalDone)
	}
	go l.writer()
	go l.checkpointer()
	if startFailure != nil {
		l.rechecked = make(chan struct{})
		go l.recheckStart(startFailure)
	}
	return l, nil
}

// Pseudonymizer returns the ledger's pseudonymizer, so an operator tool can
// look up the entries of an id it knows (`ledger statements`). A reader
// opened with neither Config.Pseudonyms nor a KeyFile holds a random key:
// its pseudonyms match no entry.
func (l *Ledger) Pseudonymizer() *Pseudonymizer { return l.pseudo }

// Record commits the record (or counts it, see the package comment) before
// returning. An error wraps ErrUnavailable.
func (l *Ledger) Record(ctx context.Context, r *engine.Record) error {
	if l.cfg.ReadOnly {
		return fmt.Errorf("%w: opened read-only", ErrUnavailable)
	}
	if !durable(r.Decision) {
		// A preview that would do nothing is no decision about anyone:
		// counted, it was a quiet decision of the report's, which leaves
		// previews out.
		if !r.Decision.Preview {
			l.count(r)
		}
		return nil
	}
	e := newEntry(r, l.pseudo, l.cfg.EngineVersion, l.cfg.Replica)
	raw, err := encodeEntry(e)
	if err != nil {
		return fmt.Errorf("%w: encoding entry: %v", ErrUnavailable, err)
	}
	// done is read from here, not through p: once p is committed, the
	// journaling goroutine hands it on (and changes it).
	done := make(chan error, 1)
	p := &pending{entry: e, raw: raw, done: done}
	queue := l.writes
	if l.journal != nil {
		queue = l.journalWrites
	}
	if err := l.enqueue(ctx, queue, p); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The entry may still commit; an entry recorded for a decision that
		// was never answered is harmless, the reverse is what must not
		// happen.
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

// enqueue hands p to the goroutine reading queue, unless the ledger is
// closed or ctx is already done (then nothing is written).
func (l *Ledger) enqueue(ctx context.Context, queue chan<- *pending, p *pending) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.sendMu.RLock()
	defer l.sendMu.RUnlock()
	if l.closed {
		return fmt.Errorf("%w: closed", ErrUnavailable)
	}
	select {
	case queue <- p:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

func (l *Ledger) count(r *engine.Record) {
	kind := KindDecision
	if r.Admission {
		kind = KindAdmission
	}
	k := countKey{day: r.Decision.Time.UTC().Format(time.DateOnly), kind: kind, orders: strings.Join(r.Decision.OrderIDs, ",")}
	// A meeting is named only while an order targets it: rows per day
	// and meeting of those nobody targets would be a daily log of every
	// meeting held, which no report or audit needs (the report counts
	// them in total).
	if len(r.Decision.OrderIDs) > 0 {
		k.meeting = r.Decision.MeetingID
	}
	l.mu.Lock()
	l.counts[k]++
	l.mu.Unlock()
}

// writer is the single goroutine that commits to the backend: it takes
// whatever entries are waiting (up to MaxBatch), commits them in one
// transaction, and tells each caller waiting for it the outcome. Entries
// the journal has committed, whose callers were answered already, are
// retried until they are in; meanwhile nothing new is recorded (see
// journaler).
func (l *Ledger) writer() {
	defer close(l.done)
	flush := time.NewTicker(l.cfg.FlushInterval)
	defer flush.Stop()
	var retry []*pending
	var retryTimer *time.Timer // running while retry holds entries
	for {
		if len(retry) > 0 {
			if retryTimer == nil {
				retryTimer = time.NewTimer(indexRetryDelay)
			}
			select {
			case p := <-l.writes:
				// Taken even now, so that the journaling goroutine is never
				// held up sending (it refuses new records meanwhile), and
				// copied at the next attempt.
				if p.done == nil {
					retry = append(retry, p)
				} else {
					retry = append(retry, l.commit([]*pending{p})...)
				}
			case <-retryTimer.C:
				retryTimer = nil
				retry = l.commitAll(retry)
			case <-flush.C:
				l.flushCounts()
			case <-l.stop:
				l.drain(retry)
				return
			}
			l.backlog.Store(int64(len(retry)))
			continue
		}
		select {
		case p := <-l.writes:
			batch := l.fill(l.writes, []*pending{p})
			if p.done == nil {
				batch = l.gather(batch)
			}
			retry = l.commit(batch)
			l.backlog.Store(int64(len(retry)))
		case <-flush.C:
			l.flushCounts()
			l.adopt()
		case <-l.finish:
			l.finishCheckpoint()
		case <-l.stop:
			l.drain(nil)
			return
		}
	}
}

// adopt links the entries without a link (chain.go), on the writer's
// tick: every adoptEvery while none is found, and at every tick while
// batches come back full. It gives the writer back as soon as records are
// waiting, after at most half a tick, and not at all while commits fail:
// on PostgreSQL a record waits for the writer's commit.
func (l *Ledger) adopt() {
	now := time.Now()
	if !l.adoptMore && now.Before(l.adoptNext) {
		return
	}
	l.adoptMore, l.adoptNext = false, now.Add(time.Duration(adoptEvery.Load()))
	l.mu.Lock()
	failing := l.lastErr != nil
	l.mu.Unlock()
	if failing {
		return
	}
	budget := l.cfg.FlushInterval / 2
	// A batch may wait for another replica's commit to release the lock.
	ctx, cancel := context.WithTimeout(context.Background(), budget+time.Second)
	defer cancel()
	linked := 0
	for {
		n, err := l.backend.adoptUnlinked(ctx)
		linked += n
		if err != nil {
			l.log.Warn("ledger: linking entries recorded without a link failed; tried again later", "error", err.Error())
			break
		}
		if n < adoptBatch {
			break
		}
		if time.Since(now) > budget || len(l.writes) > 0 {
			l.adoptMore = true
			break
		}
	}
	if linked > 0 {
		l.log.Info("ledger: linked entries recorded without a link (before the chain, or by an older replica)", "entries", linked, "more", l.adoptMore)
	}
}

// adoptEvery is how often the writer looks for entries without a link, in
// nanoseconds (10 s; tests shorten it).
var adoptEvery = func() *atomic.Int64 {
	var d atomic.Int64
	d.Store(int64(10 * time.Second))
	return &d
}()

// commitAll commits batch MaxBatch entries at a time, and returns what is
// left from the first commit that fails.
func (l *Ledger) commitAll(batch []*pending) []*pending {
	for len(batch) > 0 {
		n := min(len(batch), l.cfg.MaxBatch)
		if failed := l.commit(batch[:n]); len(failed) > 0 {
			return append(failed, batch[n:]...)
		}
		batch = batch[n:]
	}
	return nil
}

// indexRetryDelay is how long the writer waits before it tries again to
// copy journaled entries it could not.
const indexRetryDelay = 250 * time.Millisecond

// fill adds the entries waiting in queue, up to MaxBatch.
func (l *Ledger) fill(queue <-chan *pending, batch []*pending) []*pending {
	for len(batch) < l.cfg.MaxBatch {
		select {
		case p := <-queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// copyDelay is how long the writer lets journaled entries gather before
// it copies them into the tables, up to copyBatchFactor × MaxBatch of
// them. Nobody waits for the copy but readers, who hurry it (see
// settle), and a transaction's cost is mostly per page it dirties: a
// SQLite commit of six entries cost 83 µs of CPU per entry, one of 256
// entries 27 µs. At
// 8,000 denials a second spread over 256 orders, copies of up to 256
// entries every 20 ms made 2.5 write calls per entry and 50 syncs of
// SQLite's log a second, beside the journal's own on the same disk; up to
// 2,048 every 100 ms, 1.4 and 10 (docs/benchmarks.md, *Fewer, larger
// copies, and a checkpoint a second*).
const copyDelay = 100 * time.Millisecond

// copyBatchFactor times MaxBatch bounds one copy's transaction, and so
// does copyBytes of entries: a roster's entry runs to hundreds of
// kilobytes, and a transaction of many of them holds a CPU long enough to
// show in the latency of requests meanwhile (TestLoad's rosters of 1,000:
// p99 58-60 ms against 37-43 ms before the copies grew, without this
// bound).
const (
	copyBatchFactor = 8
	copyBytes       = 1 << 20
)

// gather adds journaled entries to batch for up to CopyDelay, or until it
// holds copyBatchFactor × MaxBatch entries or copyBytes of them, or until
// a reader hurries the copy.
func (l *Ledger) gather(batch []*pending) []*pending {
	size := entryBytes(batch)
	timer := time.NewTimer(l.cfg.CopyDelay)
	defer timer.Stop()
	for len(batch) < copyBatchFactor*l.cfg.MaxBatch && size < copyBytes {
		select {
		case p := <-l.writes:
			batch = append(batch, p)
			size += len(p.raw)
		case <-l.hurry:
			return l.fill(l.writes, batch)
		case <-timer.C:
			return batch
		case <-l.stop:
			return batch
		}
	}
	return batch
}

// entryBytes is the size of batch's entries as stored.
func entryBytes(batch []*pending) int {
	size := 0
	for _, p := range batch {
		size += len(p.raw)
	}
	return size
}

// drain runs once Close has stopped new records (and the journaling
// goroutine has handed on everything it committed): it commits what is
// still queued, then the counts. Journaled entries that cannot be copied
// now stay in the journal for the next start.
func (l *Ledger) drain(retry []*pending) {
	retry = l.commitAll(retry)
	for len(l.writes) > 0 && len(retry) == 0 {
		retry = l.commit(l.fill(l.writes, make([]*pending, 0, len(l.writes))))
	}
	left := len(retry)
	for len(l.writes) > 0 {
		// The database is failing: callers still waiting are told so.
		if p := <-l.writes; p.done != nil {
			p.done <- fmt.Errorf("%w: closed", ErrUnavailable)
		} else {
			left++
		}
	}
	if left > 0 {
		// Said as the process stops, since its log otherwise ends with
		// "stopped" and readers of the directory until the next start
		// see fewer entries than were answered.
		l.log.Warn("ledger: entries answered but not copied into the database stay in the journal; the next geoscope serve on this data directory copies them, and readers until then do not see them",
			"entries", left, "data_dir", l.cfg.DataDir)
	}
	l.flushCounts()
	// Counts not written were said to be kept and retried; they go with
	// the process, and the report will count fewer plain admissions than
	// were answered. (A batch whose attempt failed may be written, its
	// answer lost: "not known to be written".)
	l.mu.Lock()
	dropped := len(l.counts)
	l.mu.Unlock()
	if l.countsPending != nil {
		dropped += len(l.countsPending.counts)
	}
	if dropped > 0 {
		l.log.Warn("ledger: stopped with aggregate counts not known to be written; they are dropped", "rows", dropped)
	}
}

// commit commits batch and returns its journaled entries when that
// failed, for the writer to retry.
func (l *Ledger) commit(batch []*pending) (retry []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries := make([]*Entry, len(batch))
	raws := make([][]byte, len(batch))
	for i, p := range batch {
		entries[i], raws[i] = p.entry, p.raw
	}
	start := time.Now()
	err := l.backend.insert(ctx, entries, raws)
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	kind := WriteEntries
	if l.journal != nil {
		kind = WriteCopy // the journal committed them, and their answers went
	}
	l.observed(kind, len(batch), time.Since(start), err)
	if err != nil && l.journal != nil && l.backlog.Load() == 0 {
		// Journaled entries that could not be copied: new records are
		// refused (journalBatch) from before the failure shows in Health,
		// not from when the writer counts what it keeps to retry.
		l.backlog.Store(int64(len(batch)))
	}
	l.outcome(&l.lastErr, err, len(batch))
	journaled := 0
	for _, p := range batch {
		switch {
		case p.done != nil:
			p.done <- err
		case err != nil:
			retry = append(retry, p)
		default:
			journaled++
		}
	}
	if journaled > 0 {
		l.copied(batch, journaled)
	}
	if err == nil {
		l.uncheckpointed.Add(int64(entryBytes(batch)))
		select {
		case l.committed <- struct{}{}:
		default: // already signalled
		}
	}
	return retry
}

// outcome records a commit's outcome for Health in *latest (l.lastErr
// for the backend, l.journalErr for the journal), logging a failure at
// most every 10 s while it lasts, and the recovery.
func (l *Ledger) outcome(latest *error, err error, entries int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if *latest == nil || time.Since(l.lastErrT) > 10*time.Second {
			l.log.Error("ledger commit failed; decisions are refused until it recovers", "error", err.Error(), "entries", entries)
		}
		*latest, l.lastErrT = err, time.Now()
		return
	}
	if *latest != nil {
		l.log.Info("ledger recovered")
	}
	*latest, l.lastOK = nil, time.Now()
}

// copied tells the journal which of its entries are now in the tables
// (journaled of batch's), and wakes the readers waiting for them.
func (l *Ledger) copied(batch []*pending, journaled int) {
	n, seg := 0, batch[0].segment
	for _, p := range batch {
		if p.done != nil {
			continue
		}
		if p.segment != seg && n > 0 {
			l.journal.indexed(seg, n)
			n = 0
		}
		seg = p.segment
		n++
	}
	if n > 0 {
		l.journal.indexed(seg, n)
	}
	l.indexed.Add(int64(journaled))
	l.progressMu.Lock()
	close(l.progress)
	l.progress = make(chan struct{})
	l.progressMu.Unlock()
}

// checkpointInterval is the least time between two checkpoints. A page
// the copies dirty many times in between (the tail of an order's index
// entries) is written into the database file once per checkpoint. The
// log then holds a second or two of frames: 26 MB at most at 9,300
// denials a second (docs/benchmarks.md).
const checkpointInterval = time.Second

// checkpointBytes of entries committed since the last checkpoint bring
// the next one forward, to no sooner than checkpointSoonest after it.
// Admissions' entries (about a kilobyte) reach it in about a second at
// 8,000 a second; rosters' (hundreds of kilobytes each) in a fraction of
// that, and a second of them would be copied into the database file in
// one burst that holds a CPU: TestLoad's rosters of 1,000 had a p99 of
// 50-60 ms with checkpoints only once a second, 38-40 ms with them every
// 250 ms.
const (
	checkpointBytes   = 8 << 20
	checkpointSoonest = 250 * time.Millisecond
)

// finishBelow bounds what the checkpointer leaves for the writer to copy
// (see checkpointer): the frames committed during its last pass, which
// had fewer than this many new ones to copy. A megabyte of log, a
// millisecond or two of the writer's time.
const finishBelow = 256

// checkpointer copies committed entries from SQLite's write-ahead log into
// the database file, at most every checkpointInterval while entries are
// committed.
//
// SQLite would otherwise checkpoint inside the commit that takes the log
// past 1,000 pages: that commit, and every decision waiting for the next
// one, then waits for the log to be copied and the database file synced
// too (tens of milliseconds, more after a big roster's entry). Checkpoints
// beside the writer leave commits to pay for their own log writes only.
// They change nothing about durability: a commit is durable once its log
// frames are synced, whenever they are copied.
//
// But SQLite starts the log over, instead of appending to it, only at a
// commit that finds every frame already copied, and under steady load
// there is always a commit while a checkpoint beside the writer runs. The
// log then grew without bound (170 MB in a few seconds of a load run), and
// each commit appended to new blocks of the file: the file system zeroed
// them, and each fsync also committed the file's new size, which made the
// writer the bottleneck. So the checkpointer copies the bulk of the log
// (in passes, until one finds fewer than finishBelow new frames) and the
// writer copies the rest between two commits, when nothing can be
// committed meanwhile: the next commit then starts the log over.
func (l *Ledger) checkpointer() {
	defer close(l.checkpointed)
	if l.cfg.ReadOnly {
		return
	}
	var last, warned time.Time
	for {
		select {
		case <-l.stop:
			return
		case <-l.committed:
		}
		// Every checkpointInterval, or sooner (but not within
		// checkpointSoonest of the last) once checkpointBytes of entries
		// were committed since it.
		for {
			wait := checkpointInterval - time.Since(last)
			if l.uncheckpointed.Load() >= checkpointBytes {
				wait = checkpointSoonest - time.Since(last)
			}
			if wait <= 0 {
				break
			}
			select {
			case <-l.stop:
				return
			case <-l.committed:
			case <-time.After(wait):
			}
		}
		l.uncheckpointed.Store(0)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		frames, err := l.backend.checkpoint(ctx)
		// Each pass copies what was committed while the one before ran;
		// once that is little, the writer can copy the rest quickly.
		for pass := 1; err == nil && frames > 0 && pass < 4; pass++ {
			var next int
			next, err = l.backend.checkpoint(ctx)
			grown := next - frames
			if next < frames {
				grown = next // the log was started over meanwhile
			}
			frames = next
			if grown < finishBelow {
				break
			}
		}
		cancel()
		if err != nil && time.Since(warned) > time.Minute {
			l.log.Warn("ledger: checkpoint failed; retried after the next commit", "error", err.Error())
			warned = time.Now()
		}
		if err == nil && frames > 0 {
			select {
			case l.finish <- struct{}{}:
			default: // already asked
			}
		}
		last = time.Now()
	}
}

// finishCheckpoint copies the rest of the log on the writer's goroutine,
// so that no commit runs meanwhile (see checkpointer). A failure is left
// to the next round.
func (l *Ledger) finishCheckpoint() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := l.backend.checkpoint(ctx); err != nil {
		l.log.Debug("ledger: finishing a checkpoint failed; retried at the next one", "error", err.Error())
	}
}

// flushCounts writes the counts gathered since the last flush, as a batch
// of their own. A batch that failed is sent again first, as it was, and
// the counts gathered meanwhile wait for it: its attempt may have
// committed although it failed (a connection cut during COMMIT), and the
// ledger then recognizes it by its number and adds nothing. Merged back
// into the counts, as they were, such a batch's counts were added twice.
// The last flush, at Close, does the same.
func (l *Ledger) flushCounts() {
	if l.countsPending != nil && !l.writeCounts(l.countsPending) {
		return
	}
	// An empty map is left in place (no flush a second allocates one for
	// nothing), so it is looked at only under the lock: Record writes
	// into it.
	l.mu.Lock()
	counts := l.counts
	empty := len(counts) == 0
	if !empty {
		l.counts = map[countKey]int64{}
	}
	l.mu.Unlock()
	if empty {
		return
	}
	l.countsSeq++
	l.writeCounts(&countBatch{writer: l.countsWriter, seq: l.countsSeq, counts: counts})
}

// writeCounts writes batch and reports whether it is in the ledger now;
// if not, it is kept to be sent again.
func (l *Ledger) writeCounts(batch *countBatch) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	already, err := l.backend.addCounts(ctx, batch)
	l.observed(WriteCounts, len(batch.counts), time.Since(start), err)
	if err != nil {
		l.countsPending = batch
		// Said when it starts and every 10 s while it lasts, as a failing
		// commit is: at one flush a second, an outage of an hour would
		// otherwise log 3,600 lines per replica.
		if l.countsFailingSince.IsZero() || time.Since(l.countsLoggedAt) >= 10*time.Second {
			l.log.Warn("ledger: aggregate counts not written yet; kept and retried every second", "error", err.Error())
			l.countsLoggedAt = time.Now()
		}
		if l.countsFailingSince.IsZero() {
			l.countsFailingSince = time.Now()
		}
		return false
	}
	l.countsPending = nil
	if already {
		l.log.Info("ledger: aggregate counts sent again were written already, by the attempt that failed (its commit succeeded, its answer was lost); not added twice", "rows", len(batch.counts))
	}
	if !l.countsFailingSince.IsZero() {
		l.log.Info("ledger: aggregate counts written again", "failing_for", time.Since(l.countsFailingSince).Round(time.Second).String())
		l.countsFailingSince = time.Time{}
	}
	return true
}

// recheckStart tries, every second, to reach a database that could not be
// reached at start, and clears that failure from Health once it can: with
// no decision to record, nothing else would, and a database back up would
// show as down. It stops at the first commit, whose outcome Health then
// reports, and when the ledger closes.
func (l *Ledger) recheckStart(start error) {
	defer close(l.rechecked)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.mu.Lock()
		still := l.lastErr == start
		l.mu.Unlock()
		if !still {
			return
		}
		pctx, pcancel := context.WithTimeout(ctx, startTimeout)
		err := l.backend.reachable(pctx)
		pcancel()
		if err == nil {
			l.mu.Lock()
			if l.lastErr == start {
				l.lastErr = nil
				l.log.Info("ledger reachable", "backend", l.backend.name())
			}
			l.mu.Unlock()
			return
		}
	}
}

// Kinds of write, as ObserveWrites reports them.
const (
	// WriteEntries commits entries whose answers wait for it: to the
	// journal on SQLite, to the database on PostgreSQL.
	WriteEntries = "entries"
	// WriteCopy copies entries the SQLite journal committed into the
	// database, after they were answered.
	WriteCopy = "copy"
	// WriteCounts adds the aggregate counts of plain admissions.
	WriteCounts = "counts"
)

// Write is one write to the ledger, as ObserveWrites reports it.
type Write struct {
	Kind     string // WriteEntries, WriteCopy or WriteCounts
	Items    int    // entries, or rows of counts
	Duration time.Duration
	Err      error
}

// ObserveWrites has fn called after every write to the ledger (from the
// goroutine that wrote, so fn must be quick), for metrics: how long the
// commits that answers wait for take, and which fail.
func (l *Ledger) ObserveWrites(fn func(Write)) { l.observe.Store(&fn) }

func (l *Ledger) observed(kind string, items int, d time.Duration, err error) {
	if fn := l.observe.Load(); fn != nil {
		(*fn)(Write{Kind: kind, Items: items, Duration: d, Err: err})
	}
}

// Backlog is how many entries are waiting to reach the database: queued
// for a commit, and on SQLite committed to the journal (and answered) but
// not yet copied into the database. It grows while the database fails.
func (l *Ledger) Backlog() int {
	n := len(l.writes)
	if l.journal != nil {
		n = len(l.journalWrites) + int(max(l.journaled.Load()-l.indexed.Load(), 0))
	}
	return n
}

// Health reports the outcome of the latest commit.
type Health struct {
	Backend    string    `json:"backend"`
	OK         bool      `json:"ok"`
	LastError  string    `json:"last_error,omitempty"`
	LastErrAt  time.Time `json:"last_error_at,omitzero"`
	LastCommit time.Time `json:"last_commit,omitzero"`
}

// Health returns the ledger's health.
func (l *Ledger) Health() Health {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := Health{Backend: l.backend.name(), OK: l.lastErr == nil && l.journalErr == nil, LastErrAt: l.lastErrT, LastCommit: l.lastOK}
	if err := cmp.Or(l.journalErr, l.lastErr); err != nil {
		h.LastError = err.Error()
	}
	return h
}

// Close stops the writer after committing what is queued and flushing the
// counts, then closes the backend.
func (l *Ledger) Close() error {
	l.sendMu.Lock()
	if l.closed {
		l.sendMu.Unlock()
		return nil
	}
	l.closed = true
	l.sendMu.Unlock()
	// The journaling goroutine commits what was queued to it and hands
	// it to the writer before the writer is stopped.
	close(l.journalStop)
	<-l.journalDone
	close(l.stop)
	<-l.done
	<-l.checkpointed
	if l.rechecked != nil {
		<-l.rechecked
	}
	var jerr error
	if l.journal != nil {
		jerr = l.journal.close()
	}
	return errors.Join(l.backend.close(), jerr)
}

// keyFingerprint identifies a key without revealing it.
func keyFingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("geoscope ledger key fingerprint"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// printableText reports whether b is printable ASCII text, whitespace
// included: what a key written as text is made of. Thirty-two random bytes
// are all of it about once in 10^14.
func printableText(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// checkReaderKey checks, for a reader given --ledger-key-file, that the
// key is the one the ledger was written with: reading needs no key, but
// an auditor or a restore test that names one means to learn whether it
// is the ledger's (a backed-up key that is not would make every
// pseudonym unmatchable). A ledger that states no key (written before
// keys were bound) cannot say, and is read.
func checkReaderKey(ctx context.Context, b backend, cfg Config, key []byte) error {
	rows, err := b.query(ctx, `SELECT fingerprint FROM ledger_key WHERE id = 1`)
	if err != nil {
		// Only a ledger older than the table cannot say; any other
		// failure (a role that may not read it, a connection lost) must
		// not pass for a checked key.
		var pgErr *pgconn.PgError
		if strings.Contains(err.Error(), "no such table") || (errors.As(err, &pgErr) && pgErr.Code == "42P01") {
			cfg.Logger.Warn("the ledger states no key to check --ledger-key-file against: it was written before keys were bound")
			return nil
		}
		return fmt.Errorf("%w: checking --ledger-key-file against the ledger: %v", ErrUnavailable, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%w: checking --ledger-key-file against the ledger: %v", ErrUnavailable, err)
		}
		return nil
	}
	var bound string
	if err := rows.Scan(&bound); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if given := keyFingerprint(key); bound != given {
		what := "--ledger-key-file " + cfg.KeyFile
		if cfg.KeyFile == "" {
			what = "the ledger key " + filepath.Join(cfg.DataDir, keyFileName)
		}
		return fmt.Errorf("%w: %s is not this ledger's key (the ledger's has fingerprint %s, the file's %s)", ErrConfig, what, bound, given)
	}
	return nil
}

// loadKey reads the pseudonymization key (Config.KeyFile, or ledger.key in
// the data directory), or generates ledger.key on first start: never for
// a SQLite data directory that holds a ledger but lost its key.
func loadKey(cfg Config) ([]byte, error) {
	path := cfg.KeyFile
	generated := false
	if path == "" {
		path = filepath.Join(cfg.DataDir, keyFileName)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			// A ledger without its key is not given a new one: the
			// entries would then carry pseudonyms nobody can match.
			if cfg.URL == "" || cfg.URL == "sqlite" {
				if _, err := os.Stat(filepath.Join(cfg.DataDir, "ledger.db")); err == nil {
					return nil, fmt.Errorf("%w: %s holds a ledger but not its key (ledger.key): restore the key from its backup, or give it with --ledger-key-file", ErrConfig, cfg.DataDir)
				}
			}
			if err := makeDataDir(cfg.DataDir); err != nil {
				return nil, err
			}
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return nil, err
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return nil, fmt.Errorf("%w: creating %s: %v", ErrUnavailable, path, err)
			}
			_, err = f.WriteString(hex.EncodeToString(key) + "\n")
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("%w: writing %s: %v", ErrUnavailable, path, err)
			}
			generated = true
		}
	}
	what := "--ledger-key-file " + path
	if cfg.KeyFile == "" {
		what = "the ledger key " + path
	}
	raw, err := secretfile.ReadPrivate(path, what, "whoever reads the key can match the ledger's pseudonyms to the people they stand for")
	var pathErr *fs.PathError
	switch {
	case err == nil:
	case !errors.As(err, &pathErr):
		return nil, fmt.Errorf("%w: %v", ErrConfig, err) // open to others
	case cfg.KeyFile == "":
		return nil, fmt.Errorf("%w: the ledger key %s: %v", ErrConfig, path, err)
	default:
		return nil, fmt.Errorf("%w: --ledger-key-file: %v", ErrConfig, err)
	}
	// A key written as text (hex, or a passphrase) may end with a newline,
	// which is not part of it. A binary key is taken whole: a space or a
	// newline among its random bytes is part of it.
	key := raw
	if printableText(raw) {
		key = []byte(strings.TrimSpace(string(raw)))
		if dec, err := hex.DecodeString(string(key)); err == nil {
			key = dec
		}
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("%w: the ledger key in %s is %d bytes; at least 32 are needed", ErrConfig, path, len(key))
	}
	if generated {
		cfg.Logger.Info("generated a ledger pseudonymization key; back it up: without it the ledger's pseudonyms cannot be matched to accounts", "path", path)
	}
	return key, nil
}
