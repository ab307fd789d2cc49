package ledger

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func openTestJournal(t *testing.T) *journal {
	t.Helper()
	j, err := openJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.close() })
	return j
}

func payloads(prefix string, n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		p := fmt.Appendf(nil, "%s-%d:", prefix, i)
		out[i] = append(p, bytes.Repeat([]byte{'x'}, max(0, size-len(p)))...)
	}
	return out
}

func readAll(t *testing.T, j *journal) map[int][][]byte {
	t.Helper()
	journals, err := journalFiles(j.dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int][][]byte{}
	for _, seg := range journals[j.id] {
		p, err := readSegment(segmentPath(j.dir, j.id, seg))
		if err != nil {
			t.Fatal(err)
		}
		got[seg] = p
	}
	return got
}

// TestJournalReadsBackWhatWasCommitted: batches come back in order, and a
// segment holds only its own frames even when it is reused.
func TestJournalReadsBackWhatWasCommitted(t *testing.T) {
	j := openTestJournal(t)
	var want [][]byte
	segOf := map[int]int{}
	// About three segments' worth, so that segments are started, retired
	// and reused.
	for b := range 3 * journalSegmentSize / (8 * 4096) {
		batch := payloads(fmt.Sprintf("b%d", b), 8, 4000+b%97)
		seg, err := j.appendBatch(batch)
		if err != nil {
			t.Fatal(err)
		}
		segOf[seg] += len(batch)
		want = append(want, batch...)
		if seg != j.current {
			t.Fatalf("appendBatch returned segment %d, current is %d", seg, j.current)
		}
	}
	if len(segOf) < 3 {
		t.Fatalf("%d segments used; the test meant to fill at least 3", len(segOf))
	}
	var got [][]byte
	segs := readAll(t, j)
	for _, seg := range slices.Sorted(maps.Keys(segs)) {
		got = append(got, segs[seg]...)
	}
	if len(got) != len(want) {
		t.Fatalf("read back %d payloads, committed %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("payload %d differs: %.20q against %.20q", i, got[i], want[i])
		}
	}

	// Every segment but the current one is copied: they are retired, two
	// are kept as spares, the rest removed.
	for seg, n := range segOf {
		if seg != j.current {
			j.indexed(seg, n)
		}
	}
	if len(j.spares) != spareSegments {
		t.Fatalf("spares = %v, want %d", j.spares, spareSegments)
	}
	left := readAll(t, j)
	if len(left) != 1+spareSegments {
		t.Errorf("segments on disk: %d, want the current one and %d spares", len(left), spareSegments)
	}
	for _, seg := range j.spares {
		if n := len(left[seg]); n != 0 {
			t.Errorf("spare segment %d still reads as %d entries, all of them copied already", seg, n)
		}
	}

	// The next segments reuse the spares; what a spare held before is not
	// read as part of its new life.
	spare := j.spares[0]
	for j.current <= spare || slices.Contains(j.spares, spare) {
		if _, err := j.appendBatch(payloads("fill", 8, 4000)); err != nil {
			t.Fatal(err)
		}
	}
	fresh := payloads("after-reuse", 3, 100)
	seg, err := j.appendBatch(fresh)
	if err != nil {
		t.Fatal(err)
	}
	got = readAll(t, j)[seg]
	if !bytes.Equal(bytes.Join(got[len(got)-3:], nil), bytes.Join(fresh, nil)) {
		t.Errorf("the reused segment does not end with the batch just written")
	}
	for _, p := range got {
		if !bytes.HasPrefix(p, []byte("fill-")) && !bytes.HasPrefix(p, []byte("after-reuse-")) {
			t.Fatalf("a reused segment returns a frame of its previous use: %.20q", p)
		}
	}
}

// TestJournalTornAndDamagedTails: reading stops at the first frame that is
// not whole and valid, as a crash during a write leaves it.
func TestJournalTornAndDamagedTails(t *testing.T) {
	j := openTestJournal(t)
	first := payloads("kept", 3, 50)
	if _, err := j.appendBatch(first); err != nil {
		t.Fatal(err)
	}
	end := j.off
	if _, err := j.appendBatch(payloads("second", 2, 60)); err != nil {
		t.Fatal(err)
	}
	path := segmentPath(j.dir, j.id, j.current)
	intact, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"cut inside the second batch's header", func(b []byte) []byte { return b[:end+3] }},
		{"cut inside its payload", func(b []byte) []byte { return b[:end+frameHeader+10] }},
		{"checksum flipped", func(b []byte) []byte { b[end+5] ^= 1; return b }},
		{"payload flipped", func(b []byte) []byte { b[end+frameHeader+1] ^= 1; return b }},
		{"zeroed", func(b []byte) []byte { clear(b[end : end+frameHeader]); return b }},
		{"length past the end", func(b []byte) []byte { b[end], b[end+1], b[end+2] = 0xff, 0xff, 0x3f; return b }},
	} {
		t.Run(c.name, func(t *testing.T) {
			damaged := filepath.Join(t.TempDir(), "seg")
			if err := os.WriteFile(damaged, c.damage(bytes.Clone(intact)), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readSegment(damaged)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, first, bytes.Equal) {
				t.Errorf("read %d frames, want the first batch's %d", len(got), len(first))
			}
		})
	}
	t.Run("header torn", func(t *testing.T) {
		damaged := filepath.Join(t.TempDir(), "seg")
		if err := os.WriteFile(damaged, intact[:5], 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := readSegment(damaged); err != nil || len(got) != 0 {
			t.Errorf("readSegment = %d frames, %v; want none", len(got), err)
		}
	})
}

// TestJournalFailedWriteIsNotReadBack: a batch whose write failed was
// answered with an error; what it left in the segment is zeroed before
// the next batch, so a later reader cannot take it for entries.
func TestJournalFailedWriteIsNotReadBack(t *testing.T) {
	j := openTestJournal(t)
	if _, err := j.appendBatch(payloads("before", 2, 40)); err != nil {
		t.Fatal(err)
	}
	// As if a write had failed after putting a batch's frames in place.
	failed := payloads("failed", 4, 40)
	var buf []byte
	for _, p := range failed {
		buf = appendFrame(buf, j.salt[:], p)
	}
	if _, err := j.f.WriteAt(buf, j.off); err != nil {
		t.Fatal(err)
	}
	j.dirtyEnd = j.off + int64(len(buf))
	// The same size as the failed ones: without the zeroing, the failed
	// batch's later frames would follow it intact.
	if _, err := j.appendBatch(payloads("after", 1, 40)); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, j)[j.current]
	var names []string
	for _, p := range got {
		names = append(names, string(p[:strings.IndexByte(string(p), ':')]))
	}
	if want := []string{"before-0", "before-1", "after-0"}; !slices.Equal(names, want) {
		t.Errorf("read back %v, want %v", names, want)
	}
}

// TestJournalLargeEntries: entries of a large roster are written from
// where they are, between small ones, and one larger than a segment
// extends the segment it starts.
func TestJournalLargeEntries(t *testing.T) {
	j := openTestJournal(t)
	batch := [][]byte{
		payloads("small", 1, 30)[0],
		payloads("large", 1, 200<<10)[0],
		payloads("small", 2, 30)[1],
		payloads("huge", 1, journalSegmentSize+(1<<20))[0],
		payloads("small", 3, 30)[2],
	}
	if _, err := j.appendBatch(payloads("before", 3, 1<<20)); err != nil {
		t.Fatal(err)
	}
	seg, err := j.appendBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	after := payloads("after", 2, 50)
	if _, err := j.appendBatch(after); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, j)
	if !slices.EqualFunc(got[seg], batch, bytes.Equal) {
		t.Errorf("segment %d read back %d payloads, want the batch's %d", seg, len(got[seg]), len(batch))
	}
	// The segment is past its size: the next batch starts another.
	if !slices.EqualFunc(got[seg+1], after, bytes.Equal) {
		t.Errorf("segment %d read back %d payloads, want the next batch's %d", seg+1, len(got[seg+1]), len(after))
	}
}
