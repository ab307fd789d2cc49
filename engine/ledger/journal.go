package ledger

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The journal is where the SQLite ledger commits an entry: segment files
// in the data directory, written in batches and made durable with one
// fdatasync per batch. A decision is answered once its entry is in the
// journal; the ledger's writer then copies entries into SQLite's tables in
// batches of its own, off the request path. At start, whatever a stopped
// process left in its journal is copied into SQLite before anything is
// recorded.
//
// Why not commit to SQLite directly, as the PostgreSQL backend does: a
// SQLite commit writes every page its five B-trees touched into its log,
// checksums them and copies them again at the checkpoint. A batch of six
// entries cost 83 µs of CPU per entry, all of it on the one goroutine
// every durable decision waited for. The same batch written here costs
// about 25 µs per entry, and SQLite, given hundreds of entries per
// transaction, about 27 µs (docs/benchmarks.md). Entries are inserted
// idempotently (keyed by decision id), so copying one twice is harmless.
//
// Segments are written in place, not appended to: a segment is created at
// its full size, zero-filled and synced, and reused once every entry in it
// is in SQLite. fdatasync then has only data to write, no file size or
// block allocation to commit, which halved its latency on this project's
// test machine (280 against 570 µs), and that latency is what bounds a
// durable decision's answer.
//
// Layout: a 16-byte header (magic, then a random salt drawn whenever the
// segment is started or reused), then frames: the payload's length and a
// CRC-32C of the salt and the payload, four bytes each, little endian,
// then the payload (the entry as stored in SQLite). Reading stops at the
// first frame that is not valid under the segment's salt: zeros, a frame
// torn by a crash during its write (it held entries nobody was answered
// for), or what a previous use of the segment left.

const (
	journalPrefix = "ledger.journal."
	journalMagic  = "GSJ1"
	segmentHeader = 16
	frameHeader   = 8
	// journalSegmentSize is the size a segment is created at; a batch that
	// would not fit starts the next segment (or, larger than a segment on
	// its own, extends an empty one).
	journalSegmentSize = 4 << 20
	// spareSegments bounds the segments kept for reuse.
	spareSegments = 2
	// maxFrame bounds one entry (a roster decision for the largest
	// roster is a few tens of MB), below SQLite's longest string (a
	// billion bytes): an entry answered here must fit in the tables.
	maxFrame = 512 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type journal struct {
	dir, id string
	lock    *os.File

	// Owned by the journaling goroutine.
	f    *os.File
	salt [8]byte
	off  int64 // where the next frame goes
	// dirtyEnd: a write failed; [off, dirtyEnd) may hold frames of a batch
	// nobody was answered for, and is zeroed before the next write.
	dirtyEnd int64
	next     int // the next segment's number
	buf      []byte
	syncer   *dataSyncer

	mu      sync.Mutex
	current int
	// unindexed counts, per segment, the entries not yet in SQLite.
	unindexed map[int]int
	// spares are segments whose entries are all in SQLite, kept to be
	// reused.
	spares []int
}

// Every process recording into a data directory has a journal of its own,
// named by a random id: ledger.journal.<id>.<n> are its segments, and
// ledger.journal.<id>.lock is locked (flock) as long as the process lives.
// A process starting on the directory copies the segments of journals
// whose lock is free (their process has stopped) and leaves the others to
// their process: `geoscope decide` may record into the ledger of a
// running server.

// journalFiles lists, per journal id in dir, its segments' numbers,
// oldest first.
func journalFiles(dir string) (map[string][]int, error) {
	names, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	journals := map[string][]int{}
	for _, e := range names {
		rest, ok := strings.CutPrefix(e.Name(), journalPrefix)
		if !ok {
			continue
		}
		id, n, ok := strings.Cut(rest, ".")
		if !ok || id == "" {
			continue
		}
		if n == "lock" {
			if _, seen := journals[id]; !seen {
				journals[id] = nil
			}
			continue
		}
		if seg, err := strconv.Atoi(n); err == nil && seg > 0 {
			journals[id] = append(journals[id], seg)
		}
	}
	for _, segs := range journals {
		slices.Sort(segs)
	}
	return journals, nil
}

func segmentPath(dir, id string, seg int) string {
	return filepath.Join(dir, journalPrefix+id+"."+strconv.Itoa(seg))
}

func lockPath(dir, id string) string {
	return filepath.Join(dir, journalPrefix+id+".lock")
}

// lockJournal takes journal id's lock without waiting. ok is false when
// its process still holds it.
func lockJournal(dir, id string) (f *os.File, ok bool, err error) {
	if f, err = os.Open(lockPath(dir, id)); err != nil {
		return nil, false, err
	}
	if ok, err = tryLock(f); !ok {
		f.Close()
		return nil, false, err
	}
	return f, true, nil
}

// createLock creates journal id's lock file, locked before it appears
// under its name: a process listing the directory meanwhile must never
// find it unlocked (it would take the journal for a stopped process's).
func createLock(dir, id string) (*os.File, error) {
	creating := lockPath(dir, id) + "ing"
	f, err := os.OpenFile(creating, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	locked, err := tryLock(f)
	if err == nil && !locked {
		err = fmt.Errorf("%s is locked by another process", creating)
	}
	if err == nil {
		err = os.Rename(creating, lockPath(dir, id))
	}
	if err != nil {
		f.Close()
		os.Remove(creating)
		return nil, err
	}
	return f, nil
}

// removeStaleLocks removes the lock files a process left half-created
// (it stopped between creating and naming one); they guard nothing. One
// younger than a minute may be another process's, between its creation
// and its lock.
func removeStaleLocks(dir string) {
	stale, _ := filepath.Glob(filepath.Join(dir, journalPrefix+"*.locking"))
	for _, path := range stale {
		if fi, err := os.Stat(path); err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		if ok, _ := tryLock(f); ok {
			os.Remove(path)
		}
		f.Close()
	}
}

// readSegment returns the payloads of a segment's valid frames.
func readSegment(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < segmentHeader || string(data[:4]) != journalMagic {
		// Torn while it was being created: it holds nothing.
		return nil, nil
	}
	salt := data[8:segmentHeader]
	var payloads [][]byte
	for off := segmentHeader; len(data)-off >= frameHeader; {
		n := binary.LittleEndian.Uint32(data[off:])
		if n == 0 || n > maxFrame || int64(len(data)-off-frameHeader) < int64(n) {
			break
		}
		payload := data[off+frameHeader : off+frameHeader+int(n)]
		if frameSum(salt, payload) != binary.LittleEndian.Uint32(data[off+4:]) {
			break
		}
		payloads = append(payloads, payload)
		off += frameHeader + int(n)
	}
	return payloads, nil
}

func appendFrame(buf, salt, payload []byte) []byte {
	return append(appendFrameHeader(buf, salt, payload), payload...)
}

func appendFrameHeader(buf, salt, payload []byte) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(payload)))
	return binary.LittleEndian.AppendUint32(buf, frameSum(salt, payload))
}

func frameSum(salt, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(salt, castagnoli), castagnoli, payload)
}

// openJournal starts this process's journal in dir.
func openJournal(dir string) (*journal, error) {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	j := &journal{dir: dir, id: hex.EncodeToString(raw[:]), next: 1, unindexed: map[int]int{}}
	lock, err := createLock(dir, j.id)
	if err != nil {
		return nil, err
	}
	j.lock = lock
	if err := j.startSegment(); err != nil {
		j.release()
		return nil, err
	}
	j.syncer = newDataSyncer()
	return j, nil
}

// release unlocks the journal and removes its lock file (after its
// segments: a journal whose lock file is gone has nothing left).
func (j *journal) release() {
	os.Remove(lockPath(j.dir, j.id))
	j.lock.Close()
}

// startSegment makes the next segment current: a spare one renamed, or a
// new one created at full size, either with a new salt and synced, name
// and all, before any entry is committed into it.
func (j *journal) startSegment() error {
	seg := j.next
	path := segmentPath(j.dir, j.id, seg)
	j.mu.Lock()
	spare := -1
	if len(j.spares) > 0 {
		spare, j.spares = j.spares[0], j.spares[1:]
	}
	j.mu.Unlock()
	var f *os.File
	var err error
	if spare > 0 {
		if err = os.Rename(segmentPath(j.dir, j.id, spare), path); err == nil {
			f, err = os.OpenFile(path, os.O_RDWR, 0o600)
		}
	} else {
		f, err = createSegment(path)
	}
	var salt [8]byte
	if err == nil {
		_, err = rand.Read(salt[:])
	}
	if err == nil {
		header := make([]byte, segmentHeader)
		copy(header, journalMagic)
		copy(header[8:], salt[:])
		if _, err = f.WriteAt(header, 0); err == nil {
			err = fdatasync(f)
		}
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.Remove(path)
		return err
	}
	old := j.f
	j.f, j.salt, j.off, j.dirtyEnd = f, salt, segmentHeader, 0
	j.next++
	j.mu.Lock()
	prev := j.current
	j.current = seg
	done := prev > 0 && j.unindexed[prev] <= 0
	if done {
		delete(j.unindexed, prev)
	}
	j.mu.Unlock()
	if old != nil {
		old.Close()
		if done {
			j.retire(prev)
		}
	}
	return nil
}

// createSegment creates a zero-filled segment of journalSegmentSize.
func createSegment(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < journalSegmentSize && err == nil; off += int64(len(zeros)) {
		_, err = f.WriteAt(zeros, off)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

// retire keeps a segment whose entries are all in SQLite for reuse, or
// removes it when enough are kept. A kept segment's header is cleared, so
// that neither a reader nor a restart goes through entries already in
// the tables (were the clearing lost in a crash, they would only be
// copied again).
func (j *journal) retire(seg int) {
	path := segmentPath(j.dir, j.id, seg)
	j.mu.Lock()
	keep := len(j.spares) < spareSegments
	j.mu.Unlock()
	if keep {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteAt(make([]byte, segmentHeader), 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		keep = err == nil
	}
	if !keep {
		os.Remove(path)
		return
	}
	j.mu.Lock()
	j.spares = append(j.spares, seg)
	j.mu.Unlock()
}

// appendBatch commits payloads to the journal: when it returns nil they
// are durable. It returns the segment they went to.
func (j *journal) appendBatch(payloads [][]byte) (int, error) {
	size := int64(0)
	for _, p := range payloads {
		if len(p) == 0 || len(p) > maxFrame {
			return 0, fmt.Errorf("journal: an entry of %d bytes", len(p))
		}
		size += frameHeader + int64(len(p))
	}
	if j.dirtyEnd > j.off {
		// Frames of a batch nobody was answered for must not be read
		// after the ones written next.
		if err := j.zero(j.off, j.dirtyEnd); err != nil {
			return 0, fmt.Errorf("journal: %w", err)
		}
		j.dirtyEnd = 0
	}
	if j.off > segmentHeader && j.off+size > journalSegmentSize {
		if err := j.startSegment(); err != nil {
			return 0, fmt.Errorf("journal: new segment: %w", err)
		}
	}
	if err := j.writeFrames(payloads); err != nil {
		j.dirtyEnd = j.off + size
		return 0, fmt.Errorf("journal: %w", err)
	}
	if err := j.syncer.sync(j.f); err != nil {
		// After a failed sync the kernel may have dropped the pages: the
		// batch's callers are told it failed, and its frames are zeroed.
		j.dirtyEnd = j.off + size
		return 0, fmt.Errorf("journal: %w", err)
	}
	j.off += size
	j.mu.Lock()
	j.unindexed[j.current] += len(payloads)
	seg := j.current
	j.mu.Unlock()
	return seg, nil
}

// writeFrames writes payloads' frames at j.off. Small frames are
// gathered into one write; a large payload (a roster's entry runs to
// megabytes) is written from where it is rather than copied.
func (j *journal) writeFrames(payloads [][]byte) error {
	const direct = 64 << 10
	buf, off := j.buf[:0], j.off
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		n, err := j.f.WriteAt(buf, off)
		off += int64(n)
		buf = buf[:0]
		return err
	}
	for _, p := range payloads {
		if len(p) < direct {
			buf = appendFrame(buf, j.salt[:], p)
			continue
		}
		buf = appendFrameHeader(buf, j.salt[:], p)
		if err := flush(); err != nil {
			return err
		}
		n, err := j.f.WriteAt(p, off)
		off += int64(n)
		if err != nil {
			return err
		}
	}
	err := flush()
	if cap(buf) <= 1<<20 {
		j.buf = buf
	}
	return err
}

// zero clears [from, to) of the current segment.
func (j *journal) zero(from, to int64) error {
	zeros := make([]byte, min(to-from, 1<<20))
	for from < to {
		n, err := j.f.WriteAt(zeros[:min(int64(len(zeros)), to-from)], from)
		from += int64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// indexed records that n entries of segment seg are in SQLite; a segment
// no longer written to, all of whose entries are, is retired.
func (j *journal) indexed(seg, n int) {
	j.mu.Lock()
	j.unindexed[seg] -= n
	done := j.unindexed[seg] <= 0 && seg != j.current
	if done {
		delete(j.unindexed, seg)
	}
	j.mu.Unlock()
	if done {
		j.retire(seg)
	}
}

// close closes the current segment and, when every entry is in SQLite,
// removes the journal; otherwise the next start copies what is left.
func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	j.syncer.close()
	err := j.f.Close()
	j.f = nil
	j.mu.Lock()
	done := true
	for _, n := range j.unindexed {
		done = done && n <= 0
	}
	segs := append([]int{j.current}, j.spares...)
	j.mu.Unlock()
	if !done {
		j.lock.Close()
		return err
	}
	for _, seg := range segs {
		if rerr := os.Remove(segmentPath(j.dir, j.id, seg)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	j.release()
	return err
}

// syncDir makes the directory's entries (a new segment's name) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// journaler is the goroutine that commits SQLite entries: it takes
// whatever records are waiting (up to MaxBatch), appends them to the
// journal with one fdatasync, tells each caller the outcome, and hands
// the committed entries to the writer to copy into the tables.
func (l *Ledger) journaler() {
	defer close(l.journalDone)
	for {
		select {
		case p := <-l.journalWrites:
			l.journalBatch(l.fill(l.journalWrites, []*pending{p}))
		case <-l.journalStop:
			// Close has stopped new records; commit what callers are still
			// waiting for.
			for len(l.journalWrites) > 0 {
				l.journalBatch(l.fill(l.journalWrites, make([]*pending, 0, len(l.journalWrites))))
			}
			return
		}
	}
}

func (l *Ledger) journalBatch(batch []*pending) {
	var err error
	start := time.Now()
	if n := l.backlog.Load(); n > 0 {
		// The tables are not being written: the journal would only grow,
		// and nobody could read what it holds. Refused as if it had
		// failed, until the writer catches up.
		err = fmt.Errorf("%w: %d recorded entries are waiting to be copied into the database, which fails", ErrUnavailable, n)
	} else {
		raws := make([][]byte, len(batch))
		for i, p := range batch {
			raws[i] = p.raw
		}
		var seg int
		if seg, err = l.journal.appendBatch(raws); err != nil {
			err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		for _, p := range batch {
			p.segment = seg
		}
	}
	// A batch refused for the backlog counts as a failed commit: its
	// answers were refused all the same.
	l.observed(WriteEntries, len(batch), time.Since(start), err)
	l.outcome(&l.journalErr, err, len(batch))
	if err == nil {
		l.journaled.Add(int64(len(batch)))
	}
	for _, p := range batch {
		p.done <- err
	}
	if err != nil {
		return
	}
	for _, p := range batch {
		p.done = nil // the writer only copies it now
		l.writes <- p
	}
}

// replayJournal copies into the tables what stopped processes left in
// their journals (entries committed and answered, not yet copied when
// they stopped), then removes those journals.
func (l *Ledger) replayJournal(ctx context.Context) error {
	journals, err := journalFiles(l.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("%w: journal: %v", ErrUnavailable, err)
	}
	removeStaleLocks(l.cfg.DataDir)
	late := &lateCopy{journaled: map[string]time.Time{}}
	for _, id := range slices.Sorted(maps.Keys(journals)) {
		lock, ok, err := lockJournal(l.cfg.DataDir, id)
		switch {
		case errors.Is(err, os.ErrNotExist):
			// Its segments outlived their lock file (a lock file is removed
			// only after them), or another process is copying them.
		case err != nil:
			return fmt.Errorf("%w: journal: %v", ErrUnavailable, err)
		case !ok:
			continue // its process is alive and copies them itself
		}
		// Listed again now that it is locked: its process may have
		// started segments after the first listing, before it stopped.
		now, err := journalFiles(l.cfg.DataDir)
		if err == nil {
			err = l.replaySegments(ctx, id, now[id], late)
		}
		if err == nil {
			err = os.Remove(lockPath(l.cfg.DataDir, id))
			if errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		}
		if lock != nil {
			lock.Close()
		}
		if err != nil {
			return err
		}
	}
	if late.missing > 0 {
		l.warnCopiedLate(ctx, late)
	}
	return nil
}

// lateCopy gathers, over the journals a start copies, what warnCopiedLate
// needs: the entries that were missing from the database, the latest
// decision among them, and every journaled entry's time.
type lateCopy struct {
	missing   int
	newest    time.Time
	journaled map[string]time.Time // decision id → time
}

func (l *Ledger) replaySegments(ctx context.Context, id string, segs []int, late *lateCopy) error {
	copied := 0
	for _, seg := range segs {
		path := segmentPath(l.cfg.DataDir, id, seg)
		payloads, err := readSegment(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // another process copied it meanwhile
		}
		if err != nil {
			return fmt.Errorf("%w: journal: %v", ErrUnavailable, err)
		}
		for start := 0; start < len(payloads); start += replayBatch {
			chunk := payloads[start:min(len(payloads), start+replayBatch)]
			entries := make([]*Entry, len(chunk))
			ids := make([]string, len(chunk))
			for k, raw := range chunk {
				entries[k] = new(Entry)
				if err := json.Unmarshal(raw, entries[k]); err != nil {
					return fmt.Errorf("%w: %s: entry %d: %v", ErrConfig, path, start+k, err)
				}
				ids[k] = entries[k].DecisionID
				late.journaled[ids[k]] = entries[k].Time
			}
			found, err := storedIDs(ctx, l.backend, ids)
			if err != nil {
				return fmt.Errorf("%w: reading the ledger before copying the journal's entries: %v", ErrUnavailable, err)
			}
			for k, id := range ids {
				if !found[id] {
					late.missing++
					if t := entries[k].Time; t.After(late.newest) {
						late.newest = t
					}
				}
			}
			if err := l.backend.insert(ctx, entries, chunk); err != nil {
				return fmt.Errorf("%w: copying the journal's entries into the ledger: %v", ErrUnavailable, err)
			}
			copied += len(chunk)
		}
	}
	// Only once every segment is in: a failure above leaves them all to
	// the next start.
	for _, seg := range segs {
		if err := os.Remove(segmentPath(l.cfg.DataDir, id, seg)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: journal: %v", ErrUnavailable, err)
		}
	}
	if copied > 0 {
		l.log.Info("ledger: the entries a stopped process left in its journal are in the database (inserted where missing)", "entries", copied)
	}
	return nil
}

// warnCopiedLate says so when entries just copied from stopped processes'
// journals were missing from the database while decisions taken after them
// were recorded there by a process other than those: whatever read the
// ledger in the meantime left these entries out. After a rollback to a
// release from before the journal that is what happened, and nothing else
// says so: such a release neither copies a journal nor knows it is there,
// and its reports, exports and statements counted without them
// (geoscope's own readers said INCOMPLETE).
func (l *Ledger) warnCopiedLate(ctx context.Context, late *lateCopy) {
	rows, err := l.backend.query(ctx, `SELECT count(*) FROM ledger_decisions WHERE decided_at > ?`, clampNanos(late.newest))
	if err != nil {
		return // only a warning: the copy itself has succeeded
	}
	defer rows.Close()
	var later int64
	if !rows.Next() || rows.Scan(&later) != nil {
		return
	}
	// Those are in the database now, but were journaled: the stopped
	// processes' own, not decisions recorded meanwhile.
	for _, t := range late.journaled {
		if t.After(late.newest) {
			later--
		}
	}
	if later <= 0 {
		return
	}
	l.log.Warn("ledger: entries a stopped process left in its journal were copied into the database only now, after decisions taken later were recorded there by another process: anything that read the ledger in between (a report, an export, statements) left them out. A geoscope release from before the journal ignores it: after a rollback to one, build again the reports it built",
		"entries", late.missing, "recorded_after_them", later, "latest_in_journal", late.newest.UTC().Format(time.RFC3339))
}

// replayBatch bounds the entries of one transaction at replay.
const replayBatch = 512

// settle waits until the entries journaled before it was called are in the
// tables, so that a read through this Ledger sees every decision it
// answered. When they cannot be (the tables are not being written, or
// copying them takes longer than settleWait, or ctx ends first) it fails
// with ErrUnavailable, and so does the read: an answer without them would
// be a ledger listing without decisions that were answered, or a report
// stating a count, even "0 affected outside, proved", that is not the
// ledger's.
func (l *Ledger) settle(ctx context.Context) error {
	if l.journal == nil {
		return nil
	}
	target := l.journaled.Load()
	deadline := time.NewTimer(settleWait)
	defer deadline.Stop()
	missing := func(why string) error {
		return fmt.Errorf("%w: %d recorded entries are not in the database yet (%s); a read now would leave them out", ErrUnavailable, max(target-l.indexed.Load(), 1), why)
	}
	for {
		l.progressMu.Lock()
		progress := l.progress
		l.progressMu.Unlock()
		if l.indexed.Load() >= target {
			return nil
		}
		// A failed copy is retried within a quarter of a second (SQLite
		// busy beside `geoscope decide`): the read waits for it, up to
		// settleWait, rather than failing at the first.
		// Asked again after every copy: some of the entries may have
		// reached the writer only after it took the last request.
		select {
		case l.hurry <- struct{}{}:
		default: // already asked
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return missing(ctx.Err().Error())
		case <-deadline.C:
			if l.backlog.Load() > 0 {
				return missing("copying them into the database fails; they are safe in the journal")
			}
			return missing("they are still being copied after " + settleWait.String())
		}
	}
}

// settleWait bounds how long a read waits for entries to be copied.
const settleWait = 5 * time.Second

// warnUnindexed is for readers: entries another process has journaled
// but not yet copied into the tables are not seen. A running server
// copies them within milliseconds, so the reader waits briefly for them;
// after a crash they stay in the journal until `geoscope serve` next
// starts on the directory, and the reader says how many it cannot see.
func (l *Ledger) warnUnindexed(ctx context.Context) {
	ids, err := journaledIDs(l.cfg.DataDir)
	if err != nil {
		l.log.Warn("ledger: the journal could not be read; entries it holds are not shown", "error", err.Error())
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(ids) > 0 {
		if ids, err = l.unindexed(ctx, ids); err != nil {
			return // the read itself will say what is wrong
		}
		if len(ids) == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	if len(ids) > 0 {
		l.unseen = len(ids)
		l.log.Warn("ledger: entries in the journal are not in the database yet and are not shown; `geoscope serve` copies them when it next starts on this data directory",
			"entries", len(ids), "data_dir", l.cfg.DataDir)
	}
}

// unindexed returns those of ids that the decisions table lacks.
func (l *Ledger) unindexed(ctx context.Context, ids []string) ([]string, error) {
	found, err := storedIDs(ctx, l.backend, ids)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// journaledIDs lists the decision ids of the entries in dir's journals.
func journaledIDs(dir string) ([]string, error) {
	journals, err := journalFiles(dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for id, segs := range journals {
		for _, seg := range segs {
			path := segmentPath(dir, id, seg)
			payloads, err := readSegment(path)
			if errors.Is(err, os.ErrNotExist) {
				continue // removed meanwhile: its entries are in the tables
			}
			if err != nil {
				return nil, err
			}
			for _, raw := range payloads {
				var e struct {
					DecisionID string `json:"decision_id"`
				}
				if err := json.Unmarshal(raw, &e); err != nil {
					return nil, fmt.Errorf("%s: %v", path, err)
				}
				ids = append(ids, e.DecisionID)
			}
		}
	}
	return ids, nil
}
