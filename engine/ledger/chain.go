package ledger

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/geoscope/geoscope/engine/input"
)

// The chain makes the ledger tamper-evident. Every entry, as it is
// inserted into the tables, gets the next sequence number of the ledger
// (chain_seq, from 1) and a link (chain_link):
//
//	link(n) = SHA-256("geoscope ledger chain v1" 0x00 ‖ link(n-1) ‖ n as 8 bytes, big endian ‖ SHA-256(entry))
//
// where link(0) is 32 zero bytes and the entry is its text exactly as
// stored. The head is the last chained entry (found through the unique
// index on chain_seq). A commit reads it and chains its entries after it
// in the same transaction, under the database's write lock (SQLite's
// IMMEDIATE transaction; on PostgreSQL an advisory lock the transaction
// holds): the ledger has one chain, whatever the number of replicas
// writing into it, in the order of the commits. No row is updated on each
// commit, so nothing grows dead versions while a long read holds a
// snapshot.
//
// Entries without a link (those recorded before the chain existed, and
// those a replica of the previous release records during the rollout that
// adds it) are linked by the writer after the fact, oldest first, about a
// thousand a second (adoptUnlinked): after an upgrade the whole ledger is
// chained, and Verify reports an entry still without a link once it is
// older than unlinkedGrace.
//
// What it proves. Removing, altering or reordering an entry breaks the
// links from there on (Verify finds it), unless whoever did it also
// recomputed every later link, which needs nothing secret: a chain only
// proves what was there when its head was seen by someone who kept it.
// The reports compliance staff build print the head's link (unless an
// entry they read had no link yet), so each published report pins every
// entry it counted: Verify with that link fails if any of them was
// changed since, and, given the report's period, if an entry was added to
// it. A keyed chain (an HMAC) would
// also resist a rewrite before anyone saw the head, but then only holders
// of the key could verify it, which is the opposite of what a published
// report is for.
//
// What it does not cover: the aggregate counts (plain admissions,
// decisions with nothing to do), which are sums updated in place; and
// the index of the orders an entry cites (ledger_decision_orders). Verify
// checks that the columns stored beside each entry (its time, id, kind,
// meeting and replica, of their own type) agree with its text, and so do
// the entry's rows of that index: a report selects entries by their
// time, and the orders first enforced after its period through the
// index, and must miss neither an entry moved out of its period nor an
// order whose row was removed or moved.
//
// Cost: one more statement per commit (two on PostgreSQL, with the lock),
// and a SHA-256 of each entry (about 2 µs per kilobyte). With PostgreSQL,
// commits of different replicas wait for each other's lock; a replica's
// group commit then takes more entries at a time (docs/benchmarks.md, *The
// ledger's hash chain*).

const chainDomain = "geoscope ledger chain v1\x00"

// chainSchema is the migration that added the chain.
const chainSchema = 4

// link computes the link of entry number seq, whose stored text is raw,
// after prev.
func link(prev [32]byte, seq int64, raw []byte) [32]byte {
	return linkSum(prev, seq, sha256.Sum256(raw))
}

// linkSum is link given the entry's SHA-256, for Verify, which links each
// entry after two links at times and hashes the entry once.
func linkSum(prev [32]byte, seq int64, entry [32]byte) [32]byte {
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

// readHead reads the head: the last chained entry, or none (seq 0).
func readHead(ctx context.Context, q rowQuerier) (chainHead, error) {
	var h chainHead
	var seq, text any
	err := q.QueryRowContext(ctx, `SELECT chain_seq, chain_link FROM ledger_decisions WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1`).Scan(&seq, &text)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return chainHead{}, nil
	case err != nil:
		return h, err
	}
	// Read as whatever they hold (SQLite keeps any type in any column),
	// so that a value geoscope did not write says so.
	n, ok := seq.(int64)
	l, _ := text.(string)
	b, err := hex.DecodeString(l)
	if !ok || n <= 0 || n == math.MaxInt64 || err != nil || len(b) != 32 {
		return h, fmt.Errorf("%w (entry %v, link %v): the row was altered; run geoscope ledger verify", errBadHead, seq, text)
	}
	h.seq = n
	copy(h.link[:], b)
	return h, nil
}

// rowQuerier is a database, or a transaction in one.
type rowQuerier interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// errBadHead: the last chained entry's number or link is not one the
// ledger wrote. Nothing can be chained after it, so nothing is recorded
// until it is repaired (Verify says where).
var errBadHead = errors.New("the ledger's last chained entry has an unreadable number or link")

// chainLock is the PostgreSQL advisory lock a commit holds while it
// chains (the migrations hold 736365).
const chainLock = 736366

// adoptBatch bounds the entries without a link that one transaction
// links (adoptUnlinked): the lock it holds keeps commits waiting.
const adoptBatch = 256

// unlinkedGrace is how long an entry may stay without a link before
// Verify reports it: the writer links those of an older replica within
// seconds, and an upgraded ledger's history at about a thousand a second.
const unlinkedGrace = 10 * time.Minute

// Head returns the chain's head: every entry chained before the call is
// under it. A ledger without a chain (written only by a version before
// it), or without an entry, has none: Head{} and no error.
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
	h, err := readHead(ctx, db)
	if err != nil {
		return Head{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return h.out(), nil
}

// Unlinked counts the entries decided at or after since (every one, for
// the zero time) that have no link yet (see adoptUnlinked): they will be
// chained after the head, so a report built meanwhile prints none. In a
// ledger whose schema predates the chain (a reader of this version on a
// ledger no server of it has opened yet) that is every entry: the first
// server to open it chains them all, and a report built before then must
// say it is not pinned, not merely leave its head out.
func (l *Ledger) Unlinked(ctx context.Context, since time.Time) (int64, error) {
	chained, err := l.backend.chained(ctx)
	if err != nil {
		return 0, err
	}
	q := `SELECT count(*) FROM ledger_decisions WHERE chain_seq IS NULL AND decided_at >= ?`
	if !chained {
		q = `SELECT count(*) FROM ledger_decisions WHERE decided_at >= ?`
	}
	rows, err := l.backend.query(ctx, q, clampNanos(since))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return n, nil
}

// clampNanos is t in Unix nanoseconds, taken as Earliest or Latest when
// outside them (UnixNano would wrap around).
func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(Earliest):
		return math.MinInt64
	case t.After(Latest):
		return math.MaxInt64
	}
	return t.UnixNano()
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
	// Unlinked counts the entries without a link yet: recorded by a
	// version without the chain, and not yet linked by a writer (see
	// unlinkedGrace for when one is a problem).
	Unlinked int64 `json:"unlinked"`
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
	// Since and Until, when set, are the period [Since, Until) of the
	// report that printed the pins: an entry decided in it and chained
	// after the first pin was added to the period since the report
	// counted it (appended with a past time, or linked after the fact).
	Since, Until time.Time
	// Now is when Verify runs (for unlinkedGrace); zero is time.Now().
	Now time.Time
}

// Verify reads every chained entry in order and checks that each link is
// the one its entry and the link before it make, that no number is
// missing, that the columns stored beside each entry and its rows of the
// index of cited orders agree with its text, and that no entry has stayed
// without a link longer than unlinkedGrace.
// Each of o.Pins (links a report printed, in hex) must be the link of
// some entry in an unbroken chain: then nothing up to that entry changed
// since the report was built.
//
// It returns an error wrapping ErrNotVerified when anything does not hold
// (the Verification says what), and one wrapping ErrUnavailable or
// ErrConfig when the ledger could not be read.
func (l *Ledger) Verify(ctx context.Context, o VerifyOptions) (*Verification, error) {
	v := &Verification{Problems: []string{}, Pinned: []Head{}}
	want, err := pinsWanted(o.Pins)
	if err != nil {
		return nil, err
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
	// One read transaction: the entries as of one moment.
	tx, err := l.backend.beginRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	if err := tableTampered(ctx, tx, l.backend.name(), v); err != nil {
		return nil, err
	}
	// The columns are read as whatever they hold: SQLite keeps a value of
	// any type in any column, and a time stored as a BLOB of its digits
	// is read back as the same number, yet compares above every integer,
	// so no period selects it.
	//
	// With each entry, the rows of the index of cited orders that name it,
	// as a JSON array of [order id, authority, time]: reports find the
	// orders first enforced after a period through that index
	// (OrdersCitedSince), so a row removed or moved in time would hide an
	// order from a period's report as a moved entry would hide the entry.
	// A SQLite value of another type than the ledger writes is given as
	// null (JSON holds no BLOB), which matches no order, authority or
	// time: a query compares it with none of them as the column's type.
	cited := `(SELECT json_group_array(json_array(
			CASE typeof(o.order_id) WHEN 'text' THEN o.order_id END,
			CASE typeof(o.authority) WHEN 'text' THEN o.authority END,
			CASE typeof(o.decided_at) WHEN 'integer' THEN o.decided_at END))
		FROM ledger_decision_orders o WHERE o.decision_id = d.decision_id)`
	if l.backend.name() != "sqlite" {
		cited = `(SELECT json_agg(json_build_array(o.order_id, o.authority, o.decided_at))
		FROM ledger_decision_orders o WHERE o.decision_id = d.decision_id)`
	}
	rows, err := tx.QueryContext(ctx, `SELECT d.chain_seq, d.chain_link, d.decision_id, d.decided_at, d.kind, d.meeting_id, d.replica, d.entry, `+cited+`
		FROM ledger_decisions d WHERE d.chain_seq IS NOT NULL ORDER BY d.chain_seq`)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer rows.Close()
	c := newChainCheck(v, want, o)
	for rows.Next() {
		var cols [7]any
		var raw, index []byte
		if err := rows.Scan(&cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5], &cols[6], &raw, &index); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		r, bad := typedRow(cols)
		if bad != "" {
			v.problem("the entry numbered %s (decision %s): %s: the row was altered", printable(cols[0]), printable(cols[2]), bad)
			if _, ok := cols[0].(int64); !ok {
				continue // no number to check it, or the chain, by
			}
		}
		c.entry(r, sha256.Sum256(raw), bad == "", func() string { return columnsDisagree(raw, r, index) })
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	rows.Close()
	c.finish()
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if err := unlinked(ctx, tx, v, now.Add(-unlinkedGrace).UnixNano()); err != nil {
		return nil, err
	}
	if v.ProblemCount > 0 {
		return v, fmt.Errorf("%w: %d problem(s)", ErrNotVerified, v.ProblemCount)
	}
	return v, nil
}

// pinsWanted is the set of links pins names, in the lower case links are
// computed in, for a chainCheck to find; a pin that is not a link is a
// configuration error.
func pinsWanted(pins []string) (map[string]bool, error) {
	want := make(map[string]bool, len(pins))
	for _, p := range pins {
		if !IsLink(p) {
			return nil, fmt.Errorf("%w: %q is not a chain link (64 hexadecimal digits)", ErrConfig, p)
		}
		want[strings.ToLower(p)] = true
	}
	return want, nil
}

// chainCheck checks chained entries given in chain order: Verify's
// reading of the database, and VerifyExport's of an export.
//
// Two chains are computed. The true one runs from the first entry
// without a break: the pins are matched against it, so a pin is found
// only if nothing before it changed. Each entry is also checked against
// the link stored before it, so that an entry altered alone is the only
// one reported, not every one after it.
type chainCheck struct {
	v    *Verification
	want map[string]bool // the pins not found yet

	truth, prevStored [32]byte
	lastSeq           int64 // the highest number read
	// pinned: a pin was passed; entries after it decided in [since,
	// until) are problems (VerifyOptions.Since), and so are those decided
	// more than backdateGrace before pinLatest, the time of the entry
	// the first pin is the link of (latest, the latest time of an entry
	// chained up to it, when its own is not a time).
	//
	// The pinned entry's time, not the latest before it: a server whose
	// clock ran ahead and was stepped back (NTP) dates one entry after
	// those chained next to it, and every entry decided after the step
	// until its clock caught up with that entry's time was taken for one
	// added to the ledger's past. The pinned entry is the last chained
	// before the report was built, so in a ledger whose clocks agree
	// its time is the latest within a commit's seconds.
	pinned       bool
	since, until int64
	latest       int64
	pinLatest    int64
}

// backdateGrace is how far before an entry chained ahead of a pinned head
// an entry chained after it may have been decided. An entry is chained
// when it is committed (or, from a SQLite journal, copied), seconds after
// it was decided; replicas' clocks differ by less; and an entry recorded
// without a link is linked within seconds by a running server, unless it
// predates the chain, which a report then built prints no head for.
const backdateGrace = unlinkedGrace

func newChainCheck(v *Verification, want map[string]bool, o VerifyOptions) *chainCheck {
	c := &chainCheck{v: v, want: want, since: math.MinInt64, until: math.MinInt64, latest: math.MinInt64}
	if !o.Since.IsZero() || !o.Until.IsZero() {
		c.since, c.until = math.MinInt64, math.MaxInt64
		if !o.Since.IsZero() {
			c.since = clampNanos(o.Since)
		}
		if !o.Until.IsZero() {
			c.until = clampNanos(o.Until)
		}
	}
	return c
}

// entry checks the next entry in chain order: r holds its number, its
// link, its id and time; sum is the SHA-256 of its text; timed says that
// r.at is its time (not a column of another type); disagree says how the
// columns stored beside it differ from its text, for a database.
func (c *chainCheck) entry(r chainRow, sum [32]byte, timed bool, disagree func() string) {
	v := c.v
	seq, id := r.seq, cmp.Or(r.shown, shownText(r.id))
	switch want := c.lastSeq + 1; {
	case seq == want:
	case seq == want+1:
		v.problem("entry %d is missing (the chain goes from entry %d to entry %d)", want, c.lastSeq, seq)
	case seq > want:
		v.problem("entries %d to %d are missing (the chain goes from entry %d to entry %d)", want, seq-1, c.lastSeq, seq)
	default:
		v.problem("entry %d (decision %s) is numbered out of order (after entry %d): the numbers were altered", seq, id, c.lastSeq)
	}
	c.lastSeq = max(c.lastSeq, seq)
	// On an unbroken chain the link stored before is the true one: this
	// entry's link after it is the true one too.
	prevTrue := c.prevStored == c.truth
	c.truth = linkSum(c.truth, seq, sum)
	got := c.truth
	if !prevTrue {
		got = linkSum(c.prevStored, seq, sum)
	}
	text := hex.EncodeToString(c.truth[:])
	if !r.linked {
		v.problem("entry %d (decision %s) has a number and no link: its row was altered", seq, id)
	} else if hex.EncodeToString(got[:]) != r.link {
		v.problem("entry %d (decision %s): its link is not the one its text and the link before it make: this entry, or the one before it, was altered", seq, id)
	}
	if timed {
		if msg := disagree(); msg != "" {
			v.problem("entry %d (decision %s): %s", seq, id, msg)
		}
	}
	if c.pinned && timed && r.at >= c.since && r.at < c.until {
		v.problem("entry %d (decision %s) was decided in the pinned report's period (%s) and chained after its head: added to the period since the report was built", seq, id, time.Unix(0, r.at).UTC().Format(time.RFC3339))
	} else if c.pinned && timed && c.pinLatest > math.MinInt64+int64(backdateGrace) && r.at < c.pinLatest-int64(backdateGrace) {
		// Whatever the period the head is checked with: an entry dated
		// in an earlier one, whose report may never be checked again,
		// would otherwise pass unseen.
		v.problem("entry %d (decision %s) was decided at %s, before the pinned head's entry (decided at %s), and chained after the head: added to the ledger's past since the report was built", seq, id,
			time.Unix(0, r.at).UTC().Format(time.RFC3339), time.Unix(0, c.pinLatest).UTC().Format(time.RFC3339))
	}
	if timed && !c.pinned {
		c.latest = max(c.latest, r.at)
	}
	if c.want[text] {
		c.v.Pinned = append(c.v.Pinned, Head{Seq: seq, Link: text})
		delete(c.want, text)
		if !c.pinned {
			c.pinned, c.pinLatest = true, c.latest
			if timed {
				c.pinLatest = r.at
			}
		}
	}
	c.prevStored = c.truth
	if b, err := hex.DecodeString(r.link); err == nil && len(b) == 32 {
		copy(c.prevStored[:], b)
	}
	v.Head = Head{Seq: seq, Link: text}
	v.Entries++
}

// finish reports the pins no entry's link was.
func (c *chainCheck) finish() {
	for _, p := range slices.Sorted(maps.Keys(c.want)) {
		c.v.problem("the link %s is no entry's in an unbroken chain: an entry recorded before it was printed was altered or removed since (or it is another ledger's)", p)
	}
}

// tableTampered reports what would make a query see other rows than
// Verify does: on SQLite a damaged file or an index that does not match
// its table (one rebuilt without a row, and swapped in through
// writable_schema, hid that row from every period), or a trigger on the
// entries; on PostgreSQL row-level security, a policy, a rule or a
// trigger on them (a policy can show a role building reports fewer rows
// than an auditor's). geoscope creates none of these.
func tableTampered(ctx context.Context, tx *sql.Tx, dialect string, v *Verification) error {
	var q string
	if dialect == "sqlite" {
		rows, err := tx.QueryContext(ctx, `PRAGMA integrity_check`)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		var found []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				rows.Close()
				return fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
			if line != "ok" {
				found = append(found, line)
			}
		}
		rows.Close()
		if len(found) > 0 {
			v.problem("the database file does not pass SQLite's integrity check (%s): a table and its indexes differ, so a query may miss entries Verify reads", strings.Join(found[:min(len(found), 3)], "; "))
		}
		q = `SELECT 'trigger ' || name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'ledger_decisions'`
	} else {
		q = `SELECT 'row-level security' FROM pg_class WHERE oid = 'ledger_decisions'::regclass AND (relrowsecurity OR relforcerowsecurity)
			UNION ALL SELECT 'policy ' || polname FROM pg_policy WHERE polrelid = 'ledger_decisions'::regclass
			UNION ALL SELECT 'rule ' || rulename FROM pg_rewrite WHERE ev_class = 'ledger_decisions'::regclass
			UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid = 'ledger_decisions'::regclass AND NOT tgisinternal`
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var what string
		if err := rows.Scan(&what); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		v.problem("ledger_decisions has a %s, which geoscope does not create: it can hide entries from a query, or change them as they are written", what)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// chainRow is a chained row's columns, each of the type the ledger wrote.
type chainRow struct {
	seq, at                 int64
	link                    string
	linked                  bool
	id, kind, meeting, repl string
	// shown is the id as a problem names it, when it is not id itself
	// (a column of another type: typedRow).
	shown string
}

// typedRow reads a chained row's columns (chain_seq, chain_link,
// decision_id, decided_at, kind, meeting_id, replica), and says which are
// not of the type the ledger writes, if any.
func typedRow(cols [7]any) (r chainRow, bad string) {
	var wrong []string
	var ok bool
	if r.seq, ok = cols[0].(int64); !ok {
		wrong = append(wrong, fmt.Sprintf("chain_seq holds a %T", cols[0]))
	}
	switch l := cols[1].(type) {
	case nil:
	case string:
		r.link, r.linked = l, true
	default:
		wrong = append(wrong, fmt.Sprintf("chain_link holds a %T", cols[1]))
	}
	if r.at, ok = cols[3].(int64); !ok {
		wrong = append(wrong, fmt.Sprintf("decided_at holds a %T", cols[3]))
	}
	for _, c := range []struct {
		col  int
		name string
		dst  *string
	}{{2, "decision_id", &r.id}, {4, "kind", &r.kind}, {5, "meeting_id", &r.meeting}, {6, "replica", &r.repl}} {
		if *c.dst, ok = cols[c.col].(string); !ok {
			wrong = append(wrong, fmt.Sprintf("%s holds a %T", c.name, cols[c.col]))
		}
	}
	if r.id == "" {
		r.id = printable(cols[2])
		r.shown = r.id
	}
	return r, strings.Join(wrong, ", ")
}

// printable is a column's value for a problem: text as it is when it is
// as plain and short as an id geoscope writes, quoted otherwise (a BLOB's
// bytes as text), and then only its start (shownText).
func printable(v any) string {
	switch v := v.(type) {
	case string:
		return shownText(v)
	case []byte:
		return input.Quote(string(v))
	}
	return shownText(fmt.Sprint(v))
}

// shownText is text read from the ledger or an export for a problem: as
// it is when it is printable ASCII of at most input.MaxQuoted bytes, as
// every decision id geoscope writes is; otherwise quoted, and cut to its
// start. A row or a line altered behind geoscope's back may hold
// anything, megabytes or a terminal's escape sequences included, and a
// problem is printed to whoever checks the ledger.
func shownText(s string) string {
	if len(s) > input.MaxQuoted {
		return input.Quote(s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return input.Quote(s)
		}
	}
	return s
}

// unlinked counts the entries without a link, and reports those decided
// before before (unlinkedGrace ago): a writer links an older replica's
// within seconds, and an upgraded ledger's history at about a thousand a
// second, so one still without a link was inserted behind geoscope's
// back, or no writer of this version has run since, or one is still
// linking (the problem says so).
func unlinked(ctx context.Context, tx *sql.Tx, v *Verification, before int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT decision_id, decided_at FROM ledger_decisions WHERE chain_seq IS NULL ORDER BY decided_at, decision_id`)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, at any
		if err := rows.Scan(&id, &at); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		v.Unlinked++
		if t, ok := at.(int64); !ok || t < before {
			v.problem("decision %s (decided at %v) has no link: a geoscope serve of this version links such an entry within seconds, so it was inserted behind geoscope's back, unless no server of this version has run since, or one is still linking the entries from before the chain (it logs how many)", printable(id), when(at))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// when formats a decided_at column for a problem.
func when(at any) string {
	if t, ok := at.(int64); ok {
		return time.Unix(0, t).UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("a %T", at)
}

// columnsDisagree says how the columns stored beside an entry differ
// from its text, or "" when they agree.
func columnsDisagree(raw []byte, r chainRow, index []byte) string {
	var e struct {
		DecisionID       string        `json:"decision_id"`
		Time             time.Time     `json:"time"`
		Kind             string        `json:"kind"`
		MeetingID        string        `json:"meeting_id"`
		Replica          string        `json:"replica"`
		Orders           []citedByText `json:"orders"`
		OrdersNotInForce []citedByText `json:"orders_not_in_force"`
	}
	if err := jsonv2.Unmarshal(raw, &e); err != nil {
		return "its text is not an entry: " + err.Error()
	}
	var differ []string
	if e.DecisionID != r.id {
		differ = append(differ, "decision_id")
	}
	if e.Time.UnixNano() != r.at {
		differ = append(differ, "decided_at")
	}
	if e.Kind != r.kind {
		differ = append(differ, "kind")
	}
	if e.MeetingID != r.meeting {
		differ = append(differ, "meeting_id")
	}
	if e.Replica != r.repl {
		differ = append(differ, "replica")
	}
	var problems []string
	if len(differ) > 0 {
		problems = append(problems, "the column(s) "+strings.Join(differ, ", ")+" differ from the entry's text: the row was altered, and queries by them would miss it")
	}
	if msg := indexDisagrees(e.Orders, e.OrdersNotInForce, r.at, index); msg != "" {
		problems = append(problems, msg)
	}
	return strings.Join(problems, "; ")
}

// citedByText is an order as an entry's text states it, for the index of
// cited orders.
type citedByText struct {
	OrderID   string `json:"order_id"`
	Authority string `json:"authority"`
}

// indexDisagrees says how the rows of the index of cited orders naming an
// entry (index: Verify's JSON array of [order id, authority, time]) differ
// from what the ledger writes for it: a row per order it states, in force
// (orders) or not (orders_not_in_force), with the order's authority and
// the entry's time (at). An order stated in force must have its row, as
// a report finds an order first enforced after its period by it; one
// stated not in force may lack it, as entries recorded before such
// orders were indexed do. A row for an order the entry does not state,
// or with another authority or time, was altered.
func indexDisagrees(inForce, notInForce []citedByText, at int64, index []byte) string {
	var rows [][3]jsontext.Value
	if len(index) > 0 {
		if err := jsonv2.Unmarshal(index, &rows); err != nil {
			return "its rows in the index of cited orders (ledger_decision_orders) cannot be read: " + err.Error()
		}
	}
	type row struct {
		authority string
		at        int64
	}
	indexed := make(map[string]row, len(rows))
	for _, x := range rows {
		// A value of another type is null (Verify's query), read as ""
		// or 0: it matches nothing the text states.
		var id string
		var r row
		if jsonv2.Unmarshal(x[0], &id) != nil || jsonv2.Unmarshal(x[1], &r.authority) != nil || jsonv2.Unmarshal(x[2], &r.at) != nil {
			return "its rows in the index of cited orders (ledger_decision_orders) cannot be read: the index was altered"
		}
		indexed[id] = r
	}
	var lacks, other []string
	stated := make(map[string]bool, len(inForce)+len(notInForce))
	for i, o := range slices.Concat(inForce, notInForce) {
		if stated[o.OrderID] {
			continue // indexed once, with its first statement's authority
		}
		stated[o.OrderID] = true
		switch r, ok := indexed[o.OrderID]; {
		case !ok && i < len(inForce):
			lacks = append(lacks, shownText(o.OrderID))
		case ok && (r.authority != o.Authority || r.at != at):
			other = append(other, shownText(o.OrderID))
		}
	}
	var extra []string
	for id := range indexed {
		if !stated[id] {
			extra = append(extra, shownText(id))
		}
	}
	slices.Sort(extra)
	var differ []string
	if len(lacks) > 0 {
		differ = append(differ, "lacks "+strings.Join(lacks, ", "))
	}
	if len(extra) > 0 {
		differ = append(differ, "lists "+strings.Join(extra, ", ")+", which it does not cite")
	}
	if len(other) > 0 {
		differ = append(differ, "lists "+strings.Join(other, ", ")+" with another authority or time")
	}
	if len(differ) == 0 {
		return ""
	}
	return "the index of cited orders (ledger_decision_orders) " + strings.Join(differ, "; ") + ": the index was altered, and a report finds orders first enforced after its period by it"
}
