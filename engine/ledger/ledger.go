// Package ledger is geoscope's durable record of enforcement decisions.
//
// OPA's decision logs are best effort: they are buffered, dropped under
// pressure and lost with the process. Compliance needs the opposite, so the
// ledger is written before a decision is answered: Record returns only once
// the entry is committed (fsynced), and a decision the ledger could not
// take is not answered at all (ErrUnavailable; the meeting server then
// fails open). Concurrent records share one transaction and one fsync
// (group commit); no caller returns before the commit that holds its entry.
//
// Plain allowed admissions and decisions with nothing to do are not stored
// one by one but counted in aggregate rows, flushed every FlushInterval:
// they carry no enforcement, so a crash may lose at most one interval of
// these counts and nothing else.
package ledger

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/geoscope/geoscope/engine"
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
	// ReadOnly opens an existing ledger for reading (reports, exports): it
	// creates nothing, needs no key, and refuses to record.
	ReadOnly bool
	Logger   *slog.Logger
}

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
	// committed wakes the checkpointer after a commit; checkpointed is
	// closed when it has stopped.
	committed    chan struct{}
	checkpointed chan struct{}
	// finish asks the writer to copy the last frames of the log.
	finish chan struct{}

	// sendMu orders Record's enqueue against Close: once Close holds it,
	// nothing more is queued, so everything queued is drained.
	sendMu sync.RWMutex
	closed bool

	mu       sync.Mutex
	counts   map[countKey]int64
	lastErr  error
	lastErrT time.Time
	lastOK   time.Time
}

type pending struct {
	entry *Entry
	raw   []byte
	done  chan error
}

type countKey struct {
	day, kind, meeting, orders string
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
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// A backend nobody can open is named before anything else is checked
	// or created.
	if err := checkURL(cfg.URL); err != nil {
		return nil, err
	}
	if !cfg.ReadOnly {
		if cfg.Replica == "" {
			cfg.Replica = DefaultReplica()
		}
		if err := ValidReplica(cfg.Replica); err != nil {
			return nil, fmt.Errorf("%w: --replica-id: %v", ErrConfig, err)
		}
	}
	var key []byte
	if cfg.ReadOnly {
		// Reading needs no pseudonyms; a random key keeps the
		// pseudonymizer defined without touching any file.
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if cfg.URL == "" || cfg.URL == "sqlite" {
			if _, err := os.Stat(filepath.Join(cfg.DataDir, "ledger.db")); err != nil {
				return nil, fmt.Errorf("%w: --data-dir %s holds no ledger", ErrConfig, cfg.DataDir)
			}
		}
	} else {
		if cfg.KeyFile == "" && cfg.URL != "" && cfg.URL != "sqlite" {
			// Replicas sharing one ledger must share one key, or the same
			// person gets a different pseudonym from each replica.
			return nil, fmt.Errorf("%w: a shared PostgreSQL ledger needs --ledger-key-file, the same on every replica", ErrConfig)
		}
		var err error
		if key, err = loadKey(cfg); err != nil {
			return nil, err
		}
	}
	fingerprint := ""
	if !cfg.ReadOnly {
		fingerprint = keyFingerprint(key)
	}
	b, err := openBackend(ctx, cfg, fingerprint)
	if err != nil {
		return nil, err
	}
	l := &Ledger{
		cfg: cfg, backend: b, pseudo: NewPseudonymizer(key), log: cfg.Logger,
		writes: make(chan *pending, 4*cfg.MaxBatch),
		stop:   make(chan struct{}), done: make(chan struct{}),
		committed: make(chan struct{}, 1), checkpointed: make(chan struct{}), finish: make(chan struct{}, 1),
		counts: map[countKey]int64{},
	}
	go l.writer()
	go l.checkpointer()
	return l, nil
}

// Pseudonymizer returns the ledger's pseudonymizer, so an operator tool can
// look up the entries of an id it knows.
func (l *Ledger) Pseudonymizer() *Pseudonymizer { return l.pseudo }

// Record commits the record (or counts it, see the package comment) before
// returning. An error wraps ErrUnavailable.
func (l *Ledger) Record(ctx context.Context, r *engine.Record) error {
	if l.cfg.ReadOnly {
		return fmt.Errorf("%w: opened read-only", ErrUnavailable)
	}
	if !durable(r.Decision) {
		l.count(r)
		return nil
	}
	e := newEntry(r, l.pseudo, l.cfg.EngineVersion, l.cfg.Replica)
	raw, err := encodeEntry(e)
	if err != nil {
		return fmt.Errorf("%w: encoding entry: %v", ErrUnavailable, err)
	}
	p := &pending{entry: e, raw: raw, done: make(chan error, 1)}
	if err := l.enqueue(ctx, p); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		// The entry may still commit; an entry recorded for a decision that
		// was never answered is harmless, the reverse is what must not
		// happen.
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

// enqueue hands p to the writer, unless the ledger is closed or ctx is
// already done (then nothing is written).
func (l *Ledger) enqueue(ctx context.Context, p *pending) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.sendMu.RLock()
	defer l.sendMu.RUnlock()
	if l.closed {
		return fmt.Errorf("%w: closed", ErrUnavailable)
	}
	select {
	case l.writes <- p:
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
	k := countKey{day: r.Decision.Time.UTC().Format(time.DateOnly), kind: kind, meeting: r.Decision.MeetingID, orders: strings.Join(r.Decision.OrderIDs, ",")}
	l.mu.Lock()
	l.counts[k]++
	l.mu.Unlock()
}

// writer is the single goroutine that commits: it takes whatever records
// are waiting (up to MaxBatch), commits them in one transaction, and tells
// each caller the outcome.
func (l *Ledger) writer() {
	defer close(l.done)
	flush := time.NewTicker(l.cfg.FlushInterval)
	defer flush.Stop()
	for {
		select {
		case p := <-l.writes:
			batch := []*pending{p}
		more:
			for len(batch) < l.cfg.MaxBatch {
				select {
				case p := <-l.writes:
					batch = append(batch, p)
				default:
					break more
				}
			}
			l.commit(batch)
		case <-flush.C:
			l.flushCounts()
		case <-l.finish:
			l.finishCheckpoint()
		case <-l.stop:
			// Close has stopped new records; commit what callers are still
			// waiting for, then the counts.
			for len(l.writes) > 0 {
				batch := make([]*pending, 0, len(l.writes))
				for len(l.writes) > 0 && len(batch) < l.cfg.MaxBatch {
					batch = append(batch, <-l.writes)
				}
				l.commit(batch)
			}
			l.flushCounts()
			return
		}
	}
}

func (l *Ledger) commit(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries := make([]*Entry, len(batch))
	raws := make([][]byte, len(batch))
	for i, p := range batch {
		entries[i], raws[i] = p.entry, p.raw
	}
	err := l.backend.insert(ctx, entries, raws)
	l.mu.Lock()
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		if l.lastErr == nil || time.Since(l.lastErrT) > 10*time.Second {
			l.log.Error("ledger commit failed; decisions are refused until it recovers", "error", err.Error(), "entries", len(batch))
		}
		l.lastErr, l.lastErrT = err, time.Now()
	} else {
		if l.lastErr != nil {
			l.log.Info("ledger recovered")
		}
		l.lastErr, l.lastOK = nil, time.Now()
	}
	l.mu.Unlock()
	for _, p := range batch {
		p.done <- err
	}
	if err == nil {
		select {
		case l.committed <- struct{}{}:
		default: // already signalled
		}
	}
}

// checkpointInterval is the least time between two checkpoints.
const checkpointInterval = 250 * time.Millisecond

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
		if wait := checkpointInterval - time.Since(last); wait > 0 {
			select {
			case <-l.stop:
				return
			case <-time.After(wait):
			}
		}
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

func (l *Ledger) flushCounts() {
	l.mu.Lock()
	counts := l.counts
	l.counts = map[countKey]int64{}
	l.mu.Unlock()
	if len(counts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.backend.addCounts(ctx, counts); err != nil {
		// Put them back; they are retried at the next flush.
		l.mu.Lock()
		for k, n := range counts {
			l.counts[k] += n
		}
		l.mu.Unlock()
		l.log.Warn("ledger: aggregate counts not written yet", "error", err.Error())
	}
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
	h := Health{Backend: l.backend.name(), OK: l.lastErr == nil, LastErrAt: l.lastErrT, LastCommit: l.lastOK}
	if l.lastErr != nil {
		h.LastError = l.lastErr.Error()
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
	close(l.stop)
	<-l.done
	<-l.checkpointed
	return l.backend.close()
}

// loadKey reads the pseudonymization key, or generates one into the data
// directory on first start.
// keyFingerprint identifies a key without revealing it.
func keyFingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("geoscope ledger key fingerprint"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

func loadKey(cfg Config) ([]byte, error) {
	path := cfg.KeyFile
	generated := false
	if path == "" {
		path = filepath.Join(cfg.DataDir, "ledger.key")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			// A ledger without its key is not given a new one: the
			// entries would then carry pseudonyms nobody can match.
			if cfg.URL == "" || cfg.URL == "sqlite" {
				if _, err := os.Stat(filepath.Join(cfg.DataDir, "ledger.db")); err == nil {
					return nil, fmt.Errorf("%w: %s holds a ledger but not its key (ledger.key): restore the key from its backup, or give it with --ledger-key-file", ErrConfig, cfg.DataDir)
				}
			}
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return nil, fmt.Errorf("%w: data directory: %v", ErrUnavailable, err)
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
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --ledger-key-file: %v", ErrConfig, err)
	}
	key := []byte(strings.TrimSpace(string(raw)))
	if dec, err := hex.DecodeString(string(key)); err == nil {
		key = dec
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("%w: the ledger key in %s is %d bytes; at least 32 are needed", ErrConfig, path, len(key))
	}
	if generated {
		cfg.Logger.Info("generated a ledger pseudonymization key; back it up: without it the ledger's pseudonyms cannot be matched to accounts", "path", path)
	}
	return key, nil
}
