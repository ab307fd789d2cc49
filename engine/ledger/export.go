package ledger

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// An export (geoscope ledger export) writes each entry on a line of its
// own: its text exactly as stored, which is what its link covers, with
// its place in the chain added as the last two members,
//
//	{...the entry as stored...,"chain_seq":N,"chain_link":"<64 hex digits>"}
//
// so that the entry's text is the line with that ending replaced by "}",
// and anyone can recompute the links (chain.go gives the formula) and
// compare them with the ledger head a report printed, without geoscope
// and without the database. Re-encoding a decoded entry would do for the
// entries this version writes, but not, byte for byte, for every entry an
// older one wrote, and an auditor must not have to take the export's word
// that the two are the same. An entry without a link yet is written as
// stored, without the two members.
//
// The two members are appended, not wrapped around the entry, so that a
// reader of the export that does not check the chain reads an entry as
// before, with two members more.

// ExportLine is the line an export writes for s, newline included.
//
// Entries are stored as encoding/json writes them, which ends an object
// with "}" and never writes a newline; a text that does not (a row
// altered behind geoscope's back) is written as it is, without its place
// in the chain, which the check of the export then reports missing.
func ExportLine(s *Stored) []byte {
	text := s.Text
	if s.Seq <= 0 || s.Link == "" || len(text) < 2 || text[0] != '{' || text[len(text)-1] != '}' {
		return append(slices.Clip(text), '\n')
	}
	body := text[:len(text)-1]
	out := make([]byte, 0, len(text)+100)
	out = append(out, body...)
	if len(body) > 1 { // "{" alone: an object without members
		out = append(out, ',')
	}
	out = append(out, `"chain_seq":`...)
	out = strconv.AppendInt(out, s.Seq, 10)
	out = append(out, `,"chain_link":"`...)
	out = append(out, s.Link...)
	return append(out, "\"}\n"...)
}

// maxExportLine bounds a line of an export that VerifyExport reads: a
// file that is not an export (a crafted line of gigabytes, a file without
// a newline) is refused at the line that passes it, where reading the line
// whole would take the memory it asks for. No ledger holds an entry near
// it: a decision on a large roster (--max-participants, within --max-body)
// is tens of MB; the SQLite journal refuses an entry over maxFrame
// (512 MiB), SQLite a text over a billion bytes, and PostgreSQL a value of
// 1 GiB. So the bound is the largest text either database stores, with
// room for the place in the chain appended to it: it refuses no line of an
// export of a ledger, whatever --max-body a server was given. A variable,
// lowered by tests.
var maxExportLine = 1<<30 + 1<<10

// exportChain matches the place in the chain ExportLine appends.
var exportChain = regexp.MustCompile(`,?"chain_seq":([0-9]{1,19}),"chain_link":"([0-9a-f]{64})"\}$`)

// exported is what VerifyExport keeps of a line: enough to check the
// chain in its order, not the entry.
type exported struct {
	line  int
	seq   int64
	link  string
	sum   [32]byte
	id    string
	at    int64
	timed bool
}

// VerifyExport checks an export as Verify checks the ledger: every
// chained entry's link recomputed from its text, in the order of the
// numbers, which must run from 1 without a gap, and each of o.Pins found
// among the links (with o.Since and o.Until, no entry of that period
// chained after the first; with any pin, none chained after it and dated
// before the entries up to it). Only a whole export (no --since, --until,
// --order or --authority) can be checked against a head: the others leave
// entries out, which are reported missing.
//
// The lines need not be in chain order (an export is in the order of the
// entries' times). Memory grows with the number of entries, about 200
// bytes each, and with the longest line, not with the export's size. A
// line longer than maxExportLine, which no ledger's entry makes, stops the
// check with an error wrapping ErrNotVerified and naming the line.
func VerifyExport(r io.Reader, o VerifyOptions) (*Verification, error) {
	v := &Verification{Problems: []string{}, Pinned: []Head{}}
	want, err := pinsWanted(o.Pins)
	if err != nil {
		return nil, err
	}
	var (
		chained   []exported
		unchained []exported
		latest    = int64(math.MinInt64)
	)
	lines := newExportLines(r)
	for n := 1; ; n++ {
		line, err := lines.next()
		if errors.Is(err, errLineTooLong) {
			return nil, fmt.Errorf("%w: line %d is longer than %d bytes, more than any entry of a ledger: not an export geoscope wrote", ErrNotVerified, n, maxExportLine)
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: reading the export: %v", ErrUnavailable, err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		x := exported{line: n}
		text := line
		// The place in the chain ends the line: looked for in its last
		// bytes only, as an entry of a big roster is megabytes long.
		off := max(0, len(line)-128)
		if m := exportChain.FindSubmatchIndex(line[off:]); m != nil {
			seqText := line[off+m[2] : off+m[3]]
			seq, perr := strconv.ParseInt(string(seqText), 10, 64)
			if perr != nil || seq <= 0 {
				v.problem("line %d: chain_seq %s is not an entry's number", n, seqText)
				continue
			}
			x.seq, x.link = seq, string(line[off+m[4]:off+m[5]])
			// The line is this loop's own buffer: its text is cut in
			// place, not copied, which would double what a big entry
			// takes.
			line[off+m[0]] = '}'
			text = line[:off+m[0]+1]
		}
		var e struct {
			DecisionID string    `json:"decision_id"`
			Time       time.Time `json:"time"`
		}
		if jerr := json.Unmarshal(text, &e); jerr != nil || e.DecisionID == "" {
			v.problem("line %d is not an entry of a ledger export: %v", n, cmp.Or(jerr, errors.New("it has no decision_id")))
			continue
		}
		x.sum = sha256.Sum256(text)
		x.id = e.DecisionID
		x.at, x.timed = e.Time.UnixNano(), !e.Time.IsZero()
		if x.seq == 0 {
			unchained = append(unchained, x)
			continue
		}
		if x.timed {
			latest = max(latest, x.at)
		}
		chained = append(chained, x)
	}
	// An export without entries is one of a ledger without any (a period
	// of plain admissions, which are counted, not recorded): it verifies
	// as the ledger does, with none, unless a head given is then found in
	// none of them (finish).
	slices.SortFunc(chained, func(a, b exported) int { return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.line, b.line)) })
	c := newChainCheck(v, want, o)
	for _, x := range chained {
		c.entry(chainRow{seq: x.seq, at: x.at, link: x.link, linked: true, id: x.id}, x.sum, x.timed, func() string { return "" })
	}
	c.finish()
	// An entry without a link is covered by no head. A server links one
	// within seconds, so one decided well before the export's last
	// chained entry was added behind geoscope's back (or the export was
	// made while a server of this version was linking the history).
	for _, x := range unchained {
		v.Unlinked++
		if x.timed && latest > math.MinInt64+int64(unlinkedGrace) && x.at < latest-int64(unlinkedGrace) {
			v.problem("line %d (decision %s, decided at %s) has no link, though entries decided after it were chained: nothing covers it", x.line, shownText(x.id), time.Unix(0, x.at).UTC().Format(time.RFC3339))
		}
	}
	if v.ProblemCount > 0 {
		return v, fmt.Errorf("%w: %d problem(s)", ErrNotVerified, v.ProblemCount)
	}
	return v, nil
}

// exportLines reads an export line by line, none longer than
// maxExportLine.
type exportLines struct {
	br *bufio.Reader
	// file is the export when it is a regular file, and base where br
	// started reading it: a line longer than br's buffer is then read
	// again from the file, in one slice of its length, when its end is
	// found, not gathered as it goes; a line past the bound takes no
	// memory at all, and a long entry's takes its own size, not twice it.
	file   io.ReaderAt
	base   int64
	offset int64 // where the next line starts, from base
	buf    []byte
	full   [][]byte
}

func newExportLines(r io.Reader) *exportLines {
	l := &exportLines{br: bufio.NewReaderSize(r, 1<<20)}
	if f, ok := r.(interface {
		io.ReaderAt
		io.Seeker
		Stat() (fs.FileInfo, error)
	}); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if base, err := f.Seek(0, io.SeekCurrent); err == nil {
				l.file, l.base = f, base
			}
		}
	}
	return l
}

var errLineTooLong = errors.New("line too long")

// next returns the next line (its newline included, if any), valid until
// the next call, or errLineTooLong, having read no further, once the line
// passes maxExportLine bytes. At the end of the input it returns what is
// left with io.EOF, as bufio.Reader.ReadBytes does. Read from a stream, a
// line longer than the buffer is gathered as ReadBytes gathers it, in
// copies of the buffer and then in one slice, which takes twice the line.
func (l *exportLines) next() ([]byte, error) {
	var (
		total int
		frag  []byte
		err   error
	)
	l.full = l.full[:0]
	for {
		frag, err = l.br.ReadSlice('\n')
		if total+len(frag) > maxExportLine {
			return nil, errLineTooLong
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			break
		}
		if l.file == nil {
			l.full = append(l.full, bytes.Clone(frag))
		}
		total += len(frag)
	}
	start := l.offset
	total += len(frag)
	l.offset += int64(total)
	if cap(l.buf) < total {
		l.buf = make([]byte, 0, total)
	}
	line := l.buf[:0]
	switch {
	case len(frag) == total:
		line = append(line, frag...)
	case l.file != nil:
		line = line[:total]
		if n, rerr := l.file.ReadAt(line, l.base+start); n < total {
			return nil, fmt.Errorf("reading its %d bytes again: %w", total, cmp.Or(rerr, io.ErrUnexpectedEOF))
		}
	default:
		for _, f := range l.full {
			line = append(line, f...)
		}
		line = append(line, frag...)
	}
	return line, err
}
