package ledger_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/internal/pgtest"
	"github.com/geoscope/geoscope/internal/proctest"
)

// commitCutter is a TCP proxy on loopback between a ledger and its
// PostgreSQL server that loses the outcome of one commit: it forwards the
// COMMIT of the first transaction that writes aggregate counts, waits
// until the server has answered it (the transaction is then durable: the
// server answers once its log is flushed), and closes both connections
// instead of passing the answer on. The ledger sees its connection cut
// during a commit that in fact succeeded, as it would when a network
// path or the server's host fails at that moment.
type commitCutter struct {
	ln     net.Listener
	target string
	armed  atomic.Bool
	cut    chan struct{} // closed once a commit's answer was withheld
	wg     sync.WaitGroup
}

func newCommitCutter(t *testing.T, target string) *commitCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:"+proctest.FreePort(t))
	if err != nil {
		t.Fatal(err)
	}
	c := &commitCutter{ln: ln, target: target, cut: make(chan struct{})}
	var mu sync.Mutex
	var conns []net.Conn
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, client)
			mu.Unlock()
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.serve(client)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, conn := range conns {
			conn.Close()
		}
		mu.Unlock()
		c.wg.Wait()
	})
	return c
}

// addr is the proxy's host:port.
func (c *commitCutter) addr() string { return c.ln.Addr().String() }

// readMessage reads one message of the protocol after the startup: a type
// byte, a length that counts itself, the body.
func readMessage(r *bufio.Reader) (typ byte, body []byte, err error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n < 4 || n > 1<<30 {
		return 0, nil, errors.New("malformed message length")
	}
	body = make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return head[0], body, nil
}

func writeMessage(w io.Writer, typ byte, body []byte) error {
	msg := make([]byte, 5, 5+len(body))
	msg[0] = typ
	binary.BigEndian.PutUint32(msg[1:], uint32(4+len(body)))
	_, err := w.Write(append(msg, body...))
	return err
}

// serve relays one connection, and cuts it after the commit of a
// transaction that wrote counts while the cutter is armed. A transaction
// writes counts when a statement of it inserts into ledger_quiet_counts:
// a query, or a statement prepared on the connection and bound in it
// (the migration that creates the table is no such transaction).
func (c *commitCutter) serve(client net.Conn) {
	server, err := net.Dial("tcp", c.target)
	if err != nil {
		client.Close()
		return
	}
	closeBoth := sync.OnceFunc(func() {
		client.Close()
		server.Close()
	})
	defer closeBoth()
	var cutting atomic.Bool
	go func() {
		defer closeBoth()
		r := bufio.NewReader(server)
		for {
			typ, body, err := readMessage(r)
			if err != nil {
				return
			}
			if cutting.Load() {
				// Everything the server says from the COMMIT on is
				// withheld; ReadyForQuery ends its answer.
				if typ == 'Z' {
					close(c.cut)
					return
				}
				continue
			}
			if writeMessage(client, typ, body) != nil {
				return
			}
		}
	}()
	r := bufio.NewReader(client)
	// The startup message has no type byte. sslmode=disable: no
	// SSLRequest comes first.
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return
	}
	startup := make([]byte, binary.BigEndian.Uint32(n[:])-4)
	if _, err := io.ReadFull(r, startup); err != nil {
		return
	}
	if _, err := server.Write(append(n[:], startup...)); err != nil {
		return
	}
	counts, countStatements := false, map[string]bool{}
	names := func(b []byte) bool {
		return bytes.Contains(bytes.ToLower(b), []byte("insert into ledger_quiet_counts"))
	}
	for {
		typ, body, err := readMessage(r)
		if err != nil {
			return
		}
		switch typ {
		case 'Q': // a simple query: begin, commit, rollback
			q := strings.ToLower(strings.TrimSpace(strings.TrimRight(string(body), "\x00")))
			switch {
			case strings.HasPrefix(q, "begin"):
				counts = false
			case q == "commit" && counts && c.armed.CompareAndSwap(true, false):
				cutting.Store(true)
			}
			counts = counts || names(body)
		case 'P': // Parse: statement name, query
			name, query, _ := bytes.Cut(body, []byte{0})
			if names(query) {
				countStatements[string(name)] = true
				counts = true
			}
		case 'B': // Bind: portal name, statement name
			_, rest, _ := bytes.Cut(body, []byte{0})
			stmt, _, _ := bytes.Cut(rest, []byte{0})
			counts = counts || countStatements[string(stmt)]
		}
		if writeMessage(server, typ, body) != nil {
			return
		}
	}
}

// A flush of counts whose commit succeeded while its answer was lost
// (the connection cut between the server's commit and the ledger) is
// retried, finds its batch written, and adds nothing: the counts read back
// are the decisions counted, once each. Counts that arrive between the
// lost attempt and its retry are written in a batch of their own. The
// retry comes at the next flush, or at Close when the ledger stops first.
func TestCountsOfAFlushWhoseCommitAnswerWasLostAreNotAddedTwice(t *testing.T) {
	for _, retried := range []string{"next flush", "close"} {
		t.Run(retried, func(t *testing.T) {
			dsn := pgtest.Shared(t).NewSchema(t)
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cutter := newCommitCutter(t, u.Host)
			u.Host = cutter.addr()
			b := newBackend(t, "sqlite") // a directory for the key
			b.name, b.url = "postgres", u.String()
			interval := 20 * time.Millisecond
			if retried == "close" {
				// The first flush is cut; Close comes long before the
				// second.
				interval = 2 * time.Second
			}
			logs := &syncBuffer{}
			l := b.open(t, func(c *ledger.Config) {
				c.FlushInterval = interval
				c.Logger = slog.New(slog.NewTextHandler(logs, nil))
			})
			cutter.armed.Store(true)

			// In the writer's goroutine, right after the flush that lost
			// its answer: more admissions, counted after that flush took
			// its batch and before it is retried.
			const first, meanwhile = 5, 3
			failed := make(chan struct{})
			var once sync.Once
			var writes []ledger.Write
			var mu sync.Mutex
			l.ObserveWrites(func(w ledger.Write) {
				if w.Kind != ledger.WriteCounts {
					return
				}
				mu.Lock()
				writes = append(writes, w)
				mu.Unlock()
				if w.Err != nil {
					once.Do(func() {
						for range meanwhile {
							record(t, l, plainAdmission(newID(), "m-cut"))
						}
						close(failed)
					})
				}
			})
			for range first {
				record(t, l, plainAdmission(newID(), "m-cut"))
			}
			select {
			case <-failed:
			case <-time.After(30 * time.Second):
				t.Fatal("no flush of counts failed: the proxy cut no commit")
			}
			select {
			case <-cutter.cut:
			default:
				t.Fatal("a flush of counts failed, but not by the proxy's cut")
			}
			if retried == "close" {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			// Read past the proxy, straight from the server.
			reader := &backend{name: "postgres", url: dsn, dir: b.dir}
			want := map[string]int64{"admission|m-cut|CN-1|" + baseTime.Format(time.DateOnly): first + meanwhile}
			if retried == "close" {
				l = reader.open(t)
			}
			waitCounts(t, l, want)
			// Nothing more arrives: later flushes must not change it.
			time.Sleep(100 * time.Millisecond)
			waitCounts(t, l, want)
			// The batch was sent again and found written: the proxy
			// withheld the answer of a commit that succeeded.
			if out := logs.String(); !strings.Contains(out, "written already") {
				t.Errorf("the log does not say that the batch sent again was written already:\n%s", out)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(writes) < 2 || writes[0].Err == nil {
				t.Errorf("writes of counts = %+v, want the first failed and later ones", writes)
			}
		})
	}
}

// A stop whose last flush of counts fails says that the counts are
// dropped: until then the log said they were kept and retried, and
// nothing else would tell that the report will count fewer admissions
// than were answered.
func TestStopWithCountsNotWrittenSaysTheyAreDropped(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		logs := &syncBuffer{}
		l := b.open(t, func(c *ledger.Config) {
			c.FlushInterval = time.Hour
			c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		})
		record(t, l, plainAdmission(newID(), "m-stop"))
		record(t, l, plainAdmission(newID(), "m-other"))
		if _, err := b.raw(t).Exec(`ALTER TABLE ledger_quiet_counts RENAME TO held_aside`); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if out := logs.String(); !strings.Contains(out, "dropped") || !strings.Contains(out, "rows=2") {
			t.Errorf("a stop with counts not written logs:\n%s\nwant them said dropped, with their 2 rows", out)
		}
	})
}
