package ledger

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// The chain makes the ledger tamper-evident. Every entry, as it is
// inserted into the tables, gets the next sequence number of the ledger
// (chain_seq, from 1) and a link (chain_link):
//
//	link(n) = SHA-256("geoscope ledger chain v1" 0x00 ‖ link(n-1) ‖ n as 8 bytes, big endian ‖ SHA-256(entry))
//
// where link(0) is 32 zero bytes and the entry is its text exactly as
// stored. ledger_chain holds the last number and link (the head), and is
// read and written in the same transaction as the entries, under the
// database's write lock (SQLite's IMMEDIATE transaction, PostgreSQL's
// row lock): the ledger has one chain, whatever the number of replicas
// writing into it, and its order is the order of the commits.
//
// What it proves. Removing, altering or reordering an entry breaks the
// links from there on (Verify finds it), unless whoever did it also
// recomputed every later link and the head, which needs nothing secret:
// a chain only proves what was there when its head was seen by someone
// who kept it. Every transparency report prints the head's link when it
// was built, so each published report pins every entry recorded before
// it: Verify with that link fails if any of them was changed since. A
// keyed chain (an HMAC) would also resist a rewrite before anyone saw the
// head, but then only holders of the key could verify it, which is the
// opposite of what a published report is for.
//
// What it does not cover: the aggregate counts (plain admissions,
// decisions with nothing to do), which are sums updated in place; and
// the index of the orders an entry cites (ledger_decision_orders), which
// the report does not read. Verify checks that the columns queries select
// entries by (time, id, kind, meeting, replica) agree with the entry's
// text, so an entry cannot be moved out of a report's period unseen.
//
// Cost: a read and a write of one row per commit, and a SHA-256 of each
// entry (about 2 µs per kilobyte). With PostgreSQL, commits of different
// replicas wait for each other's row lock; a replica's group commit then
// takes more entries at a time.

const chainDomain = "geoscope ledger chain v1\x00"

// chainSchema is the migration that added the chain.
const chainSchema = 4

// link computes the link of entry number seq, whose stored text is raw,
// after prev.
func link(prev [32]byte, seq int64, raw []byte) [32]byte {
	entry := sha256.Sum256(raw)
	var buf [len(chainDomain) + 32 + 8 + 32]byte
	n := copy(buf[:], chainDomain)
	n += copy(buf[n:], prev[:])
	binary.BigEndian.PutUint64(buf[n:], uint64(seq))
	n += 8
	copy(buf[n:], entry[:])
	return sha256.Sum256(buf[:])
}

// Head is the last link of the chain: the number of entries chained, and
// the link of the last one, in hex.
type Head struct {
	Seq  int64  `json:"seq"`
	Link string `json:"link"`
}

// chainHead is the head as the writer keeps it.
type chainHead struct {
	seq  int64
	link [32]byte
}

func (h chainHead) out() Head {
	if h.seq == 0 {
		return Head{}
	}
	return Head{Seq: h.seq, Link: hex.EncodeToString(h.link[:])}
}

// readHead reads the head in tx; forUpdate locks its row until tx ends
// (PostgreSQL; SQLite's IMMEDIATE transaction holds the database's write
// lock already).
func readHead(ctx context.Context, q rowQuerier, forUpdate bool) (chainHead, error) {
	stmt := `SELECT seq, link FROM ledger_chain WHERE id = 1`
	if forUpdate {
		stmt += ` FOR UPDATE`
	}
	var h chainHead
	var text string
	err := q.QueryRowContext(ctx, stmt).Scan(&h.seq, &text)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return h, errNoHead
	case err != nil:
		return h, err
	case h.seq == 0 && text == "":
		return h, nil
	}
	b, err := hex.DecodeString(text)
	if err != nil || len(b) != 32 || h.seq <= 0 {
		return h, fmt.Errorf("%w (entry %d, link %q)", errBadHead, h.seq, text)
	}
	copy(h.link[:], b)
	return h, nil
}

// rowQuerier is a database, or a transaction in one.
type rowQuerier interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// The head's row missing or unreadable: the table was changed by hand.
// Nothing is recorded then (a commit cannot be chained), and Verify
// reports it.
var (
	errNoHead   = errors.New("ledger_chain holds no head row")
	errBadHead  = errors.New("ledger_chain holds an unreadable head")
	alteredHint = "the table was altered; run geoscope ledger verify"
)

// Head returns the chain's head: every entry recorded before the call is
// under it. A ledger without a chain (written only by a version before
// it) has none: Head{} and no error.
func (l *Ledger) Head(ctx context.Context) (Head, error) {
	if err := l.settle(ctx); err != nil {
		return Head{}, err
	}
	chained, err := l.backend.chained(ctx)
	if err != nil || !chained {
		return Head{}, err
	}
	db, err := l.backend.database(ctx)
	if err != nil {
		return Head{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	h, err := readHead(ctx, db, false)
	if err != nil {
		return Head{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return h.out(), nil
}

// IsLink reports whether s is a chain link as Head prints it: 64
// hexadecimal digits.
func IsLink(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}

// ErrNotVerified: the ledger was read, and its chain does not hold.
var ErrNotVerified = errors.New("the ledger does not verify")

// Verification is what Verify found.
type Verification struct {
	// Head is the head recomputed from the entries: the last one's
	// number and link.
	Head Head `json:"head"`
	// Entries is how many chained entries were checked.
	Entries int64 `json:"entries"`
	// Unchained counts the entries without a link: recorded before the
	// chain began (by a version without it).
	Unchained int64 `json:"unchained"`
	// Problems lists, in chain order, what does not hold (the first
	// maxProblems of them); ProblemCount counts them all.
	Problems     []string `json:"problems"`
	ProblemCount int      `json:"problem_count"`
	// Pinned lists the links given to Verify that were found, each with
	// its entry's number.
	Pinned []Head `json:"pinned"`
}

// maxProblems bounds Verification.Problems: past a first few, a broken
// chain says nothing more.
const maxProblems = 20

func (v *Verification) problem(format string, args ...any) {
	v.ProblemCount++
	if len(v.Problems) < maxProblems {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Pins are links a report printed (hex): each must be some entry's.
	Pins []string
	// UnchainedUntil accepts entries without a link decided before it,
	// even after the chain began: those replicas of the previous release
	// recorded during the rollout that added the chain. Zero accepts none.
	UnchainedUntil time.Time
}

// Verify reads every chained entry in order and checks that each link is
// the one its entry and the link before it make, that no number is
// missing, that the head agrees with the last entry, that the columns
// queries select by agree with each entry's text, and that no entry
// without a link was recorded after the chain began. Each of pins (links
// a report printed, in hex) must be the link of some entry: then nothing
// up to that entry changed since the report was built.
//
// It returns an error wrapping ErrNotVerified when anything does not hold
// (the Verification says what), and one wrapping ErrUnavailable or
// ErrConfig when the ledger could not be read.
func (l *Ledger) Verify(ctx context.Context, o VerifyOptions) (*Verification, error) {
	v := &Verification{Problems: []string{}, Pinned: []Head{}}
	want := map[string]bool{}
	for _, p := range o.Pins {
		if !IsLink(p) {
			return nil, fmt.Errorf("%w: %q is not a chain link (64 hexadecimal digits)", ErrConfig, p)
		}
		want[strings.ToLower(p)] = true
	}
	if err := l.settle(ctx); err != nil {
		return nil, err
	}
	chained, err := l.backend.chained(ctx)
	if err != nil {
		return nil, err
	}
	if !chained {
		return nil, fmt.Errorf("%w: this ledger has no chain yet (its schema predates it); the first geoscope serve of this version to open it adds one", ErrConfig)
	}
	// One read transaction: the head and the entries as of one moment,
	// so that an entry past the head is one that should not be there, not
	// one committed meanwhile.
	tx, err := l.backend.beginRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	stored, headErr := readHead(ctx, tx, false)
	switch {
	case errors.Is(headErr, errNoHead), errors.Is(headErr, errBadHead):
		v.problem("%v: it was deleted or altered", headErr)
	case headErr != nil:
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, headErr)
	}
	rows, err := tx.QueryContext(ctx, `SELECT chain_seq, chain_link, decision_id, decided_at, kind, meeting_id, replica, entry
		FROM ledger_decisions WHERE chain_seq IS NOT NULL ORDER BY chain_seq`)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer rows.Close()
	// Two chains are computed. The true one runs from the first entry
	// without a break: the head and the pins are matched against it, so a
	// pin is found only if nothing before it changed. Each entry is also
	// checked against the link stored before it, so that an entry
	// altered alone is the only one reported, not every one after it.
	var (
		truth, prevStored [32]byte
		last              Head  // the last entry as stored
		lastSeq           int64 // the highest number read
		began             int64 // the first chained entry's decided_at
	)
	for rows.Next() {
		var (
			seq, at              int64
			linked               sql.NullString
			id, kind, meet, repl string
			raw                  []byte
		)
		if err := rows.Scan(&seq, &linked, &id, &at, &kind, &meet, &repl, &raw); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if v.Entries == 0 {
			began = at
		}
		switch want := lastSeq + 1; {
		case seq == want:
		case seq == want+1:
			v.problem("entry %d is missing (the chain goes from entry %d to entry %d)", want, lastSeq, seq)
		case seq > want:
			v.problem("entries %d to %d are missing (the chain goes from entry %d to entry %d)", want, seq-1, lastSeq, seq)
		default:
			v.problem("entry %d (decision %s) is numbered out of order (after entry %d): the numbers were altered", seq, id, lastSeq)
		}
		lastSeq = max(lastSeq, seq)
		truth = link(truth, seq, raw)
		text := hex.EncodeToString(truth[:])
		if !linked.Valid {
			v.problem("entry %d (decision %s) has a number and no link: its row was altered", seq, id)
		} else if got := link(prevStored, seq, raw); hex.EncodeToString(got[:]) != linked.String {
			v.problem("entry %d (decision %s): its link is not the one its text and the link before it make: this entry, or the one before it, was altered", seq, id)
		}
		if msg := columnsDisagree(raw, id, at, kind, meet, repl); msg != "" {
			v.problem("entry %d (decision %s): %s", seq, id, msg)
		}
		if want[text] {
			v.Pinned = append(v.Pinned, Head{Seq: seq, Link: text})
			delete(want, text)
		}
		prevStored = truth
		if b, err := hex.DecodeString(linked.String); err == nil && len(b) == 32 {
			copy(prevStored[:], b)
		}
		v.Head, last = Head{Seq: seq, Link: text}, Head{Seq: seq, Link: linked.String}
		v.Entries++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	rows.Close()
	if headErr == nil && stored.out() != last {
		v.problem("ledger_chain's head (entry %d, link %s) is not the last entry's (entry %d, link %s): entries at the end were removed or altered, or the head was", stored.seq, orNone(stored.out().Link), last.Seq, orNone(last.Link))
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		v.problem("the link %s is no entry's in an unbroken chain: an entry recorded before it was printed was altered or removed since (or it is another ledger's)", p)
	}
	// Entries without a link decided after the first chained one were
	// not recorded before the chain began. The first chained entry's
	// time is the chain's own (a stored start time would not be).
	since := began
	if v.Entries == 0 {
		since = 0
	}
	if !o.UnchainedUntil.IsZero() && since > 0 {
		since = max(since, o.UnchainedUntil.UnixNano())
	}
	if err := unchained(ctx, tx, v, since); err != nil {
		return nil, err
	}
	if v.ProblemCount > 0 {
		return v, fmt.Errorf("%w: %d problem(s)", ErrNotVerified, v.ProblemCount)
	}
	return v, nil
}

// unchained counts the entries without a link, and reports those decided
// at or after since (when the chain began, or the end of the rollout that
// began it; 0: no entry is chained, so none is reported): they were
// written by a replica of an older version during an upgrade, or behind
// geoscope's back, and nothing vouches for them. One dated before cannot
// be told from an entry recorded before the chain began.
func unchained(ctx context.Context, tx *sql.Tx, v *Verification, since int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT decision_id, decided_at FROM ledger_decisions WHERE chain_seq IS NULL ORDER BY decided_at, decision_id`)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		v.Unchained++
		if since > 0 && at >= since {
			v.problem("decision %s (%s) has no link, yet was recorded after the chain began: written by an older version during an upgrade, or inserted behind geoscope's back", id, time.Unix(0, at).UTC().Format(time.RFC3339))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// columnsDisagree says how the columns an entry is selected by differ
// from its text, or "" when they agree.
func columnsDisagree(raw []byte, id string, at int64, kind, meeting, replica string) string {
	var e struct {
		DecisionID string    `json:"decision_id"`
		Time       time.Time `json:"time"`
		Kind       string    `json:"kind"`
		MeetingID  string    `json:"meeting_id"`
		Replica    string    `json:"replica"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return "its text is not an entry: " + err.Error()
	}
	var differ []string
	if e.DecisionID != id {
		differ = append(differ, "decision_id")
	}
	if e.Time.UnixNano() != at {
		differ = append(differ, "decided_at")
	}
	if e.Kind != kind {
		differ = append(differ, "kind")
	}
	if e.MeetingID != meeting {
		differ = append(differ, "meeting_id")
	}
	if e.Replica != replica {
		differ = append(differ, "replica")
	}
	if len(differ) == 0 {
		return ""
	}
	return "the column(s) " + strings.Join(differ, ", ") + " differ from the entry's text: the row was altered, and queries by them would miss it"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
