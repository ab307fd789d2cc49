package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/ledger"
)

// chainRow is one chained entry as stored.
type chainRow struct {
	seq             int64
	id, link, entry string
}

func chainRows(t *testing.T, b *backend) []chainRow {
	t.Helper()
	rows, err := b.raw(t).Query(`SELECT chain_seq, decision_id, chain_link, entry FROM ledger_decisions WHERE chain_seq IS NOT NULL ORDER BY chain_seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []chainRow
	for rows.Next() {
		var r chainRow
		if err := rows.Scan(&r.seq, &r.id, &r.link, &r.entry); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// exec runs statements on the backend's database beside the ledger, as
// someone with write access to it would.
func exec(t *testing.T, b *backend, q string, args ...any) {
	t.Helper()
	if b.url != "" {
		q = ledger.Rebind("postgres", q)
	}
	if _, err := b.raw(t).Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// rechain renumbers the chained entries from 1 in their order and
// recomputes every link: what someone who removed or altered an entry,
// and knows the chain, does next.
func rechain(t *testing.T, b *backend) {
	t.Helper()
	rows := chainRows(t, b)
	exec(t, b, `UPDATE ledger_decisions SET chain_seq = -chain_seq WHERE chain_seq IS NOT NULL`)
	prev := ""
	for i, r := range rows {
		seq := int64(i + 1)
		prev = ledger.ChainLink(prev, seq, r.entry)
		exec(t, b, `UPDATE ledger_decisions SET chain_seq = ?, chain_link = ? WHERE decision_id = ?`, seq, prev, r.id)
	}
}

// TestChainFindsWhatWasChanged: a ledger of five entries, changed behind
// geoscope's back in each of the ways below. Verify finds each change,
// except a removal at the end or a rewrite of the chain itself, which
// only a link kept from before (a published report's) shows.
func TestChainFindsWhatWasChanged(t *testing.T) {
	for _, tc := range []struct {
		name string
		// change alters the ledger; rows are its entries before.
		change func(t *testing.T, b *backend, rows []chainRow)
		// opts are given to Verify; pinHead adds the head as it was before
		// the change.
		opts    ledger.VerifyOptions
		pinHead bool
		// pinUpper adds the head as it was before the change, in upper
		// case (hex is read either way).
		pinUpper bool
		// want is a problem Verify must report; "" means it verifies.
		want string
		// only, when set, is how many problems Verify must report.
		only int
		// unlinked is how many entries without a link Verify counts.
		unlinked int64
	}{
		{name: "nothing changed", change: func(*testing.T, *backend, []chainRow) {}},
		{name: "nothing changed, the head pinned", change: func(*testing.T, *backend, []chainRow) {}, pinHead: true},
		{name: "nothing changed, the head pinned in upper case", change: func(*testing.T, *backend, []chainRow) {}, pinUpper: true},
		{name: "an entry removed", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `DELETE FROM ledger_decisions WHERE decision_id = ?`, rows[2].id)
		}, want: "entry 3 is missing (the chain goes from entry 2 to entry 4)"},
		{name: "two entries removed", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `DELETE FROM ledger_decisions WHERE decision_id IN (?, ?)`, rows[1].id, rows[2].id)
		}, want: "entries 2 to 3 are missing (the chain goes from entry 1 to entry 4)"},
		{name: "an entry renumbered", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `UPDATE ledger_decisions SET chain_seq = -7 WHERE decision_id = ?`, rows[2].id)
		}, want: "entry -7 (decision " + "%ID2%" + ") is numbered out of order",
			// Out of order, its link and the next entry's, entry 3 missing,
			// entry 4's link: no entry that is there is reported missing.
			only: 5},
		{name: "an entry's link cleared", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `UPDATE ledger_decisions SET chain_link = NULL WHERE decision_id = ?`, rows[2].id)
		}, want: "entry 3 (decision " + "%ID2%" + ") has a number and no link"},
		{name: "an entry's text altered", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `UPDATE ledger_decisions SET entry = ? WHERE decision_id = ?`, strings.Replace(rows[1].entry, `"test-1.2.3"`, `"test-9.9.9"`, 1), rows[1].id)
		}, want: "entry 2 (decision ", only: 1},
		{name: "an entry's text altered, the head pinned", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `UPDATE ledger_decisions SET entry = ? WHERE decision_id = ?`, strings.Replace(rows[1].entry, `"test-1.2.3"`, `"test-9.9.9"`, 1), rows[1].id)
		}, pinHead: true, want: "the link %HEAD% is no entry's in an unbroken chain"},
		{name: "an entry's time moved out of every period", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `UPDATE ledger_decisions SET decided_at = decided_at + 31536000000000000 WHERE decision_id = ?`, rows[3].id)
		}, want: "the column(s) decided_at differ from the entry's text"},
		{name: "an entry's meeting renamed", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `UPDATE ledger_decisions SET meeting_id = 'elsewhere' WHERE decision_id = ?`, rows[3].id)
		}, want: "the column(s) meeting_id differ"},
		{name: "an entry's kind changed", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `UPDATE ledger_decisions SET kind = 'admission' WHERE decision_id = ?`, rows[3].id)
		}, want: "the column(s) kind differ"},
		{name: "an entry's replica changed", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `UPDATE ledger_decisions SET replica = 'elsewhere' WHERE decision_id = ?`, rows[3].id)
		}, want: "the column(s) replica differ"},
		{name: "an entry's time stored as a BLOB of its digits (SQLite)", change: func(t *testing.T, b *backend, rows []chainRow) {
			if b.url != "" {
				t.Skip("a PostgreSQL column holds its own type only")
			}
			exec(t, b, `UPDATE ledger_decisions SET decided_at = CAST(CAST(decided_at AS TEXT) AS BLOB) WHERE decision_id = ?`, rows[1].id)
		}, want: "decided_at holds a []uint8: the row was altered"},
		{name: "an entry's id stored as a BLOB (SQLite)", change: func(t *testing.T, b *backend, rows []chainRow) {
			if b.url != "" {
				t.Skip("a PostgreSQL column holds its own type only")
			}
			exec(t, b, `UPDATE ledger_decisions SET decision_id = CAST(decision_id AS BLOB) WHERE decision_id = ?`, rows[1].id)
		}, want: "decision_id holds a []uint8: the row was altered"},
		{name: "an order's citation removed from the index", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `DELETE FROM ledger_decision_orders WHERE decision_id = ?`, rows[2].id)
		}, want: "entry 3 (decision " + "%ID2%" + "): the index of cited orders (ledger_decision_orders) lacks CN-1: the index was altered", only: 1},
		{name: "an order's citation moved in time", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `UPDATE ledger_decision_orders SET decided_at = decided_at - 86400000000000 WHERE decision_id = ?`, rows[1].id)
		}, want: "the index of cited orders (ledger_decision_orders) lists CN-1 with another authority or time", only: 1},
		{name: "an order's citation given to another authority", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `UPDATE ledger_decision_orders SET authority = 'hk.police' WHERE decision_id = ?`, rows[1].id)
		}, want: "lists CN-1 with another authority or time", only: 1},
		{name: "a citation of an order the entry does not cite added to the index", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `INSERT INTO ledger_decision_orders (decision_id, order_id, authority, decided_at) SELECT decision_id, 'XX-9', 'xx', decided_at FROM ledger_decisions WHERE decision_id = ?`, rows[3].id)
		}, want: "the index of cited orders (ledger_decision_orders) lists XX-9, which it does not cite", only: 1},
		{name: "an order's citation stored as a BLOB (SQLite)", change: func(t *testing.T, b *backend, rows []chainRow) {
			if b.url != "" {
				t.Skip("a PostgreSQL column holds its own type only")
			}
			exec(t, b, `UPDATE ledger_decision_orders SET decided_at = CAST(CAST(decided_at AS TEXT) AS BLOB) WHERE decision_id = ?`, rows[1].id)
		}, want: "the index of cited orders (ledger_decision_orders) lists CN-1 with another authority or time", only: 1},
		{name: "an entry without a link inserted, dated an hour ago", change: func(t *testing.T, b *backend, rows []chainRow) {
			insertUnchained(t, b, newID(), time.Now().Add(-time.Hour))
		}, want: "has no link: a geoscope serve of this version links such an entry within seconds"},
		{name: "an entry without a link inserted just now (a writer links it)", change: func(t *testing.T, b *backend, rows []chainRow) {
			insertUnchained(t, b, newID(), time.Now())
		}, unlinked: 1},
		// A time that is not a number is in no period: however recent it
		// reads, nothing covers the entry.
		{name: "an entry without a link inserted just now, its time a BLOB (SQLite)", change: func(t *testing.T, b *backend, rows []chainRow) {
			if b.url != "" {
				t.Skip("a PostgreSQL column holds its own type only")
			}
			id := newID()
			insertUnchained(t, b, id, time.Now())
			exec(t, b, `UPDATE ledger_decisions SET decided_at = CAST(CAST(decided_at AS TEXT) AS BLOB) WHERE decision_id = ?`, id)
		}, want: "(decided at a []uint8) has no link"},
		{name: "an entry hidden from the time index (SQLite)", change: func(t *testing.T, b *backend, rows []chainRow) {
			if b.url != "" {
				t.Skip("PostgreSQL has no writable schema")
			}
			hideFromTimeIndex(t, b, rows[2].id)
		}, want: "row 3 missing from index ledger_decisions_time"},
		{name: "a trigger on the entries", change: func(t *testing.T, b *backend, rows []chainRow) {
			if b.url == "" {
				exec(t, b, `CREATE TRIGGER quiet AFTER INSERT ON ledger_decisions BEGIN SELECT 1; END`)
				return
			}
			exec(t, b, `CREATE FUNCTION quiet() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'`)
			exec(t, b, `CREATE TRIGGER quiet BEFORE INSERT ON ledger_decisions FOR EACH ROW EXECUTE FUNCTION quiet()`)
		}, want: "ledger_decisions has a trigger quiet, which geoscope does not create"},
		{name: "row-level security on the entries (PostgreSQL)", change: func(t *testing.T, b *backend, rows []chainRow) {
			if b.url == "" {
				t.Skip("SQLite has no row-level security")
			}
			exec(t, b, `ALTER TABLE ledger_decisions ENABLE ROW LEVEL SECURITY`)
			exec(t, b, `CREATE POLICY partial_view ON ledger_decisions FOR SELECT USING (chain_seq IS DISTINCT FROM 3)`)
		}, want: "ledger_decisions has a row-level security"},
		{name: "an entry appended into the pinned report's period", change: func(t *testing.T, b *backend, rows []chainRow) {
			appendForged(t, b, rows, baseTime.Add(2*time.Second))
		}, pinHead: true, opts: ledger.VerifyOptions{Since: baseTime.Add(-time.Hour), Until: baseTime.Add(time.Hour)},
			want: "entry 6 (decision forged-1) was decided in the pinned report's period (2026-06-04T12:00:02Z) and chained after its head"},
		{name: "an entry appended after the pinned report's period", change: func(t *testing.T, b *backend, rows []chainRow) {
			appendForged(t, b, rows, baseTime.Add(2*time.Hour))
		}, pinHead: true, opts: ledger.VerifyOptions{Since: baseTime.Add(-time.Hour), Until: baseTime.Add(time.Hour)}},
		// The period is [since, until): its first instant is in it, and
		// until is not. Dated at since, within backdateGrace of the pinned
		// entries, only the period shows the entry.
		{name: "an entry appended at the first instant of the pinned report's period", change: func(t *testing.T, b *backend, rows []chainRow) {
			appendForged(t, b, rows, baseTime.Add(2*time.Second))
		}, pinHead: true, opts: ledger.VerifyOptions{Since: baseTime.Add(2 * time.Second), Until: baseTime.Add(time.Hour)},
			want: "entry 6 (decision forged-1) was decided in the pinned report's period"},
		{name: "an entry appended at the until of the pinned report's period", change: func(t *testing.T, b *backend, rows []chainRow) {
			appendForged(t, b, rows, baseTime.Add(time.Hour))
		}, pinHead: true, opts: ledger.VerifyOptions{Since: baseTime.Add(-time.Hour), Until: baseTime.Add(time.Hour)}},
		// An entry dated before the pinned head's entries shows whatever
		// period the head is checked with, or none.
		{name: "an entry appended before the pinned report's period", change: func(t *testing.T, b *backend, rows []chainRow) {
			appendForged(t, b, rows, baseTime.Add(-30*24*time.Hour))
		}, pinHead: true, opts: ledger.VerifyOptions{Since: baseTime.Add(-time.Hour), Until: baseTime.Add(time.Hour)},
			want: "entry 6 (decision forged-1) was decided at 2026-05-05T12:00:00Z, before the pinned head's entry (decided at 2026-06-04T12:00:04Z), and chained after the head"},
		{name: "an entry appended before the pinned head's entries, no period given", change: func(t *testing.T, b *backend, rows []chainRow) {
			appendForged(t, b, rows, baseTime.Add(-time.Hour))
		}, pinHead: true, want: "entry 6 (decision forged-1) was decided at 2026-06-04T11:00:00Z, before the pinned head's entry"},
		{name: "an entry appended before the entries, no head pinned", change: func(t *testing.T, b *backend, rows []chainRow) {
			appendForged(t, b, rows, baseTime.Add(-time.Hour))
		}},
		{name: "a link from another ledger", change: func(*testing.T, *backend, []chainRow) {},
			opts: ledger.VerifyOptions{Pins: []string{strings.Repeat("ab", 32)}}, want: "the link " + strings.Repeat("ab", 32) + " is no entry's"},
		// A chain proves nothing against whoever rewrites it whole, or
		// appends to it (without the report's period)...
		{name: "an entry appended into the pinned report's period, no period given", change: func(t *testing.T, b *backend, rows []chainRow) {
			appendForged(t, b, rows, baseTime.Add(2*time.Second))
		}, pinHead: true},
		{name: "the last entry removed", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `DELETE FROM ledger_decisions WHERE decision_id = ?`, rows[4].id)
		}},
		{name: "an entry removed and the chain rewritten", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `DELETE FROM ledger_decisions WHERE decision_id = ?`, rows[1].id)
			rechain(t, b)
		}},
		// ...but a link kept from before shows it.
		{name: "the last entry removed, the head pinned", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `DELETE FROM ledger_decisions WHERE decision_id = ?`, rows[4].id)
		}, pinHead: true, want: "the link %HEAD% is no entry's in an unbroken chain"},
		{name: "an entry removed and the chain rewritten, the head pinned", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `DELETE FROM ledger_decisions WHERE decision_id = ?`, rows[1].id)
			rechain(t, b)
		}, pinHead: true, want: "the link %HEAD% is no entry's in an unbroken chain"},
		{name: "an entry's text altered and the chain rewritten, the head pinned", change: func(t *testing.T, b *backend, rows []chainRow) {
			exec(t, b, `UPDATE ledger_decisions SET entry = ? WHERE decision_id = ?`, strings.Replace(rows[1].entry, `"test-1.2.3"`, `"test-9.9.9"`, 1), rows[1].id)
			rechain(t, b)
		}, pinHead: true, want: "the link %HEAD% is no entry's in an unbroken chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b *backend) {
				ctx := context.Background()
				l := b.open(t)
				for i := range 5 {
					record(t, l, removal(newID(), baseTime.Add(time.Duration(i)*time.Second), fmt.Sprintf("p-%d", i)))
				}
				head, err := l.Head(ctx)
				if err != nil {
					t.Fatal(err)
				}
				rows := chainRows(t, b)
				if len(rows) != 5 || head.Seq != 5 || head.Link != rows[4].link {
					t.Fatalf("after 5 entries: %d chained, head %+v, want 5 and the last entry's link", len(rows), head)
				}
				// Changed once the writer has stopped (it would link an
				// entry inserted without a link), and read as an auditor
				// does, read-only.
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				tc.change(t, b, rows)
				opts := tc.opts
				if tc.pinHead {
					opts.Pins = append(opts.Pins, head.Link)
				}
				if tc.pinUpper {
					opts.Pins = append(opts.Pins, strings.ToUpper(head.Link))
				}
				v, err := b.reader(t).Verify(ctx, opts)
				want := strings.NewReplacer("%HEAD%", head.Link, "%ID2%", rows[2].id).Replace(tc.want)
				if want == "" {
					if err != nil {
						t.Fatalf("Verify = %v, problems %q; want it verified", err, problems(v))
					}
					if v.Unlinked != tc.unlinked {
						t.Errorf("%d entries without a link, want %d", v.Unlinked, tc.unlinked)
					}
					if (tc.pinHead || tc.pinUpper) && (len(v.Pinned) != 1 || v.Pinned[0].Link != head.Link) {
						t.Errorf("pinned %+v, want the head %+v", v.Pinned, head)
					}
					return
				}
				if !errors.Is(err, ledger.ErrNotVerified) {
					t.Fatalf("Verify = %v, want ErrNotVerified", err)
				}
				if tc.pinHead && strings.Contains(want, "no entry's") && len(v.Pinned) > 0 {
					t.Errorf("pinned %+v, though an entry before the pin changed", v.Pinned)
				}
				if !strings.Contains(strings.Join(v.Problems, "\n"), want) {
					t.Errorf("problems:\n%s\nwant one containing %q", strings.Join(v.Problems, "\n"), want)
				}
				if tc.only > 0 && v.ProblemCount != tc.only {
					t.Errorf("%d problems:\n%s\nwant %d", v.ProblemCount, strings.Join(v.Problems, "\n"), tc.only)
				}
			})
		})
	}
}

func problems(v *ledger.Verification) []string {
	if v == nil {
		return nil
	}
	return v.Problems
}

// reader opens the backend's ledger read-only (it links nothing), closed
// when the test ends.
func (b *backend) reader(tb testing.TB) *ledger.Ledger {
	tb.Helper()
	cfg := b.config()
	cfg.ReadOnly = true
	l, err := ledger.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// insertUnchained inserts an entry the way code of schema 3 does: without
// a link.
func insertUnchained(t *testing.T, b *backend, id string, at time.Time) {
	t.Helper()
	entry := fmt.Sprintf(`{"decision_id":%q,"time":%q,"kind":"decision","meeting_id":"m-1","account":"ps:00","orders":[],"actions":[],"refused":[],"guard_blocked":[],"bundles":{},"geo":{"database":"x","build":"2026-06-01T00:00:00Z"},"engine_version":"0.2","replica":"old-1"}`, id, at.UTC().Format(time.RFC3339Nano))
	exec(t, b, `INSERT INTO ledger_decisions (decision_id, decided_at, kind, meeting_id, allow_join, entry, replica) VALUES (?, ?, 'decision', 'm-1', NULL, ?, 'old-1')`, id, at.UnixNano(), entry)
}

// Writers sharing a ledger (replicas on PostgreSQL; a server and
// `geoscope decide` on one SQLite data directory) extend one chain: every
// entry is in it once, numbered without a gap, including the same
// decision recorded by both.
func TestChainOfManyWriters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		writers := []*ledger.Ledger{
			b.open(t, func(c *ledger.Config) { c.Replica = "a" }),
			b.open(t, func(c *ledger.Config) { c.Replica = "b" }),
		}
		twice := removal(newID(), baseTime, "p-twice")
		var wg sync.WaitGroup
		for w, l := range writers {
			for g := range 4 {
				wg.Go(func() {
					for i := range 10 {
						if err := l.Record(ctx, removal(newID(), baseTime.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("p-%d-%d-%d", w, g, i))); err != nil {
							t.Error(err)
						}
					}
					if err := l.Record(ctx, twice); err != nil {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		for _, l := range writers {
			if _, err := l.Head(ctx); err != nil { // settles what it recorded
				t.Fatal(err)
			}
		}
		v, err := writers[0].Verify(ctx, ledger.VerifyOptions{})
		if err != nil {
			t.Fatalf("Verify = %v, problems %q", err, problems(v))
		}
		if v.Entries != 81 || v.Head.Seq != 81 || v.Unlinked != 0 {
			t.Errorf("verified %d entries, head %d, %d without a link; want 81, 81 and 0", v.Entries, v.Head.Seq, v.Unlinked)
		}
	})
}

// A head whose link the ledger did not write (the last chained row
// altered) is refused, not chained after: nothing recorded after it would
// verify.
func TestHeadWithAnAlteredLinkIsRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		l := b.open(t)
		for i := range 2 {
			record(t, l, removal(newID(), baseTime.Add(time.Duration(i)*time.Second), fmt.Sprintf("p-%d", i)))
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"not a link", strings.Repeat("ab", 31), strings.Repeat("ab", 33)} {
			exec(t, b, `UPDATE ledger_decisions SET chain_link = ? WHERE chain_seq = 2`, bad)
			if h, err := b.reader(t).Head(ctx); !errors.Is(err, ledger.ErrUnavailable) || !strings.Contains(err.Error(), "unreadable number or link") {
				t.Errorf("Head with the last link %q = %+v, %v; want it refused as unreadable", bad, h, err)
			}
		}
	})
}

// A bad link to pin is refused as such, before anything is read.
func TestVerifyRefusesABadPin(t *testing.T) {
	l := newBackend(t, "sqlite").open(t)
	for _, pin := range []string{"xyz", strings.Repeat("a", 63), strings.Repeat("g", 64)} {
		if _, err := l.Verify(context.Background(), ledger.VerifyOptions{Pins: []string{pin}}); !errors.Is(err, ledger.ErrConfig) || !strings.Contains(err.Error(), "not a chain link") {
			t.Errorf("Verify with pin %q = %v, want ErrConfig naming it", pin, err)
		}
	}
}

// A writer links the entries without a link (those from before the chain,
// an older replica's), oldest first, after the head: the whole ledger is
// then chained and verifies. A row whose id is not text (SQLite) is left
// without a link, and does not stop the others.
func TestChainLinksEntriesWithoutALink(t *testing.T) {
	defer ledger.SetAdoptEvery(20 * time.Millisecond)()
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		l := b.open(t)
		record(t, l, removal(newID(), baseTime, "p-1"))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// Recorded by an older replica while no writer of this version
		// ran.
		ids := []string{newID(), newID(), newID()}
		for i, id := range ids {
			insertUnchained(t, b, id, baseTime.Add(-time.Duration(i)*time.Hour))
		}
		if b.url == "" {
			exec(t, b, `INSERT INTO ledger_decisions (decision_id, decided_at, kind, meeting_id, entry, replica) VALUES (CAST('blob-id' AS BLOB), 0, 'decision', 'm-1', '{}', '')`)
		}
		l = b.open(t)
		waitLinked := func(want int64) *ledger.Verification {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for {
				v, err := l.Verify(ctx, ledger.VerifyOptions{Now: baseTime})
				if v != nil && v.Entries == want {
					return v
				}
				if time.Now().After(deadline) {
					t.Fatalf("10 s on, Verify = %v, %+v; want %d entries linked", err, v, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		waitLinked(4)
		record(t, l, removal(newID(), baseTime, "p-2"))
		waitLinked(5)
		// Oldest first, after the head.
		seqs := map[string]int64{}
		for _, r := range chainRows(t, b) {
			seqs[r.id] = r.seq
		}
		if seqs[ids[2]] != 2 || seqs[ids[1]] != 3 || seqs[ids[0]] != 4 {
			t.Errorf("linked as %d, %d, %d (decided 2 h, 1 h and 0 h before the head), want 2, 3, 4", seqs[ids[2]], seqs[ids[1]], seqs[ids[0]])
		}
		v, err := b.reader(t).Verify(ctx, ledger.VerifyOptions{})
		switch {
		case b.url != "" && err != nil:
			t.Errorf("Verify = %v, %+v", err, v)
		case b.url == "" && (!errors.Is(err, ledger.ErrNotVerified) || v.Unlinked != 1 || !strings.Contains(strings.Join(v.Problems, "\n"), `decision "blob-id"`)):
			t.Errorf("with a BLOB id left unlinked: %v, %+v; want it reported", err, v)
		}
	})
}

// appendForged appends a copy of the third entry, decided at, as the
// chain's next entry with its link: what someone adding an entry to a
// period, and knowing the chain, does.
func appendForged(t *testing.T, b *backend, rows []chainRow, at time.Time) {
	t.Helper()
	text := strings.Replace(rows[2].entry, rows[2].id, "forged-1", 1)
	var e map[string]any
	if err := json.Unmarshal([]byte(text), &e); err != nil {
		t.Fatal(err)
	}
	e["time"] = at.UTC().Format(time.RFC3339Nano)
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	seq := int64(len(rows) + 1)
	exec(t, b, `INSERT INTO ledger_decisions (decision_id, decided_at, kind, meeting_id, allow_join, entry, replica, chain_seq, chain_link) VALUES ('forged-1', ?, ?, ?, NULL, ?, ?, ?, ?)`,
		at.UnixNano(), e["kind"], e["meeting_id"], string(raw), e["replica"], seq, ledger.ChainLink(rows[len(rows)-1].link, seq, string(raw)))
	// Its orders indexed as the ledger indexes them: a forger who knows
	// the schema leaves nothing but the time for Verify to find.
	orders, _ := e["orders"].([]any)
	for _, o := range orders {
		o := o.(map[string]any)
		exec(t, b, `INSERT INTO ledger_decision_orders (decision_id, order_id, authority, decided_at) VALUES ('forged-1', ?, ?, ?)`, o["order_id"], o["authority"], at.UnixNano())
	}
}

// hideFromTimeIndex rebuilds SQLite's time index without the entry id and
// swaps it in through writable_schema: queries by time then miss the
// entry, though the table holds it.
func hideFromTimeIndex(t *testing.T, b *backend, id string) {
	t.Helper()
	ctx := context.Background()
	conn, err := b.raw(t).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE shadow (decided_at, decision_id)`,
		`INSERT INTO shadow (rowid, decided_at, decision_id) SELECT rowid, decided_at, decision_id FROM ledger_decisions WHERE decision_id != '` + id + `'`,
		`CREATE INDEX shadow_idx ON shadow (decided_at, decision_id)`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var real, shadow int64
	if err := conn.QueryRowContext(ctx, `SELECT rootpage FROM sqlite_master WHERE name = 'ledger_decisions_time'`).Scan(&real); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT rootpage FROM sqlite_master WHERE name = 'shadow_idx'`).Scan(&shadow); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`PRAGMA writable_schema = ON`,
		fmt.Sprintf(`UPDATE sqlite_master SET rootpage = %d WHERE name = 'ledger_decisions_time'`, shadow),
		fmt.Sprintf(`UPDATE sqlite_master SET rootpage = %d WHERE name = 'shadow_idx'`, real),
		`PRAGMA writable_schema = OFF`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close()
	exec(t, b, `DROP TABLE shadow`)
	var n int
	if err := b.raw(t).QueryRow(`SELECT count(*) FROM ledger_decisions WHERE decided_at >= 0`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("after the swap, a query by time finds %d entries (%v), want 4", n, err)
	}
}

// A server whose clock ran ahead and was stepped back (NTP) dates one
// entry after those chained next to it. The entries decided after the
// step, chained after a head pinned meanwhile, were taken for entries
// added to the ledger's past (everything decided until the clock caught
// up with that entry's time, less ten minutes): a report's head then
// failed verify without anything having been added. An entry dated well
// before the pinned head itself still is one.
func TestVerifyAfterAClockSteppedBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		l := b.open(t)
		ctx := context.Background()
		t0 := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
		record(t, l, removal(newID(), t0, "p-1"))
		record(t, l, removal(newID(), t0.Add(30*time.Minute), "p-2")) // the clock 30 minutes ahead
		record(t, l, removal(newID(), t0.Add(time.Minute), "p-3"))    // stepped back
		h, err := l.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		record(t, l, removal(newID(), t0.Add(2*time.Minute), "p-4"))
		record(t, l, removal(newID(), t0.Add(3*time.Minute), "p-5"))
		if v, err := l.Verify(ctx, ledger.VerifyOptions{Pins: []string{h.Link}}); err != nil {
			t.Fatalf("verify --head after a clock stepped back: %v %q", err, v.Problems)
		}
		record(t, l, removal(newID(), t0.Add(-time.Hour), "p-6"))
		v, err := l.Verify(ctx, ledger.VerifyOptions{Pins: []string{h.Link}})
		if !errors.Is(err, ledger.ErrNotVerified) || v.ProblemCount != 1 || !strings.Contains(v.Problems[0], "added to the ledger's past") {
			t.Fatalf("an entry dated an hour before the pinned head: %v %q, want it reported as added to the ledger's past", err, v.Problems)
		}
	})
}

// BenchmarkVerify verifies a SQLite ledger of 20,000 entries, each citing
// one or two orders, recorded by 16 callers at once, and reports the time
// per entry: what a nightly `ledger verify` of a ledger costs per entry
// it holds.
//
//	go test -run '^$' -bench Verify -benchtime 5x ./engine/ledger/
func BenchmarkVerify(b *testing.B) {
	const entries = 20_000
	l := newBackend(b, "sqlite").open(b)
	recordSpread(b, l, entries, func(i int) []string {
		if i%3 == 0 {
			return []string{"CN-1", "HK-1"}
		}
		return []string{"CN-1"}
	})
	b.ResetTimer()
	for b.Loop() {
		v, err := l.Verify(context.Background(), ledger.VerifyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if v.Entries != entries {
			b.Fatalf("%d entries verified, want %d", v.Entries, entries)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*entries), "ns/entry")
}
