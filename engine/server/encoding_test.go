package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/input"
)

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// postEncoded posts body to hs at path as JSON, with the Content-Encoding
// given ("" for none).
func postEncoded(t *testing.T, hs *httptest.Server, path, encoding string, body []byte) response {
	t.Helper()
	h := http.Header{}
	if encoding != "" {
		h.Set("Content-Encoding", encoding)
	}
	return postHeaders(t, hs, path, h, body)
}

// postHeaders posts body to hs at path with the header lines of h (JSON
// unless h has a Content-Type), each value of a name on a line of its own.
func postHeaders(t *testing.T, hs *httptest.Server, path string, h http.Header, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, hs.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Clone()
	if len(h["Content-Type"]) == 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// rosterBody is a decision request for meeting june4-b (targeted by a
// standing order) with n participants, all located in mainland China.
func rosterBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"}, "participants": [`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id": "p-%d", "ip": "1.0.16.%d"}`, i, i%250+1)
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// Content-Encoding: gzip bodies are inflated (OPA's clients may send them);
// a body labelled gzip that is not, an encoding nobody implements, and a
// small body that inflates past --max-body are refused naming what is wrong.
func TestContentEncoding(t *testing.T) {
	const maxBody = 16 << 10
	ts := newTestServer(t, serverSetup{cfg: Config{MaxBody: maxBody}})
	hs := httptest.NewServer(ts.Handler())
	defer hs.Close()

	post := func(t *testing.T, path, encoding string, body []byte) response {
		t.Helper()
		return postEncoded(t, hs, path, encoding, body)
	}
	plain := post(t, "/v1/decisions", "", []byte(decisionBody))
	if plain.status != http.StatusOK {
		t.Fatalf("plain body: %s", plain)
	}
	actions := func(r response) string {
		var d struct {
			Actions []struct{ Type, ParticipantID string } `json:"actions"`
		}
		if err := json.Unmarshal(r.body, &d); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		raw, _ := json.Marshal(d.Actions)
		return string(raw)
	}

	for _, enc := range []string{"gzip", "GZIP", "x-gzip"} {
		t.Run("decision "+enc, func(t *testing.T) {
			r := post(t, "/v1/decisions", enc, gzipped(t, []byte(decisionBody)))
			if r.status != http.StatusOK {
				t.Fatalf("gzip body: %s", r)
			}
			if got, want := actions(r), actions(plain); got != want {
				t.Errorf("gzip body decided %s, plain body %s", got, want)
			}
		})
	}
	t.Run("admission gzip", func(t *testing.T) {
		r := post(t, "/v1/admission", "gzip", gzipped(t, []byte(admissionBody)))
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"allow":false`) {
			t.Errorf("gzip admission: %s", r)
		}
	})

	// Header lines as sent, each value on a line of its own (a header
	// given twice is not read as its first line).
	lines := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	cases := []struct {
		name, encoding string
		// header, when set, is sent instead of encoding.
		header      http.Header
		body        []byte
		status      int
		code, field string
	}{
		{"plain body labelled gzip", "gzip", nil, []byte(decisionBody), 400, "invalid_input", "body"},
		{"truncated gzip", "gzip", nil, gzipped(t, []byte(decisionBody))[:40], 400, "invalid_input", "body"},
		{"unknown encoding", "br", nil, []byte(decisionBody), 415, "unsupported_media_type", "Content-Encoding"},
		{"two encodings", "gzip, gzip", nil, gzipped(t, gzipped(t, []byte(decisionBody))), 415, "unsupported_media_type", "Content-Encoding"},
		{"two encodings on two lines", "", lines("Content-Encoding", "gzip", "Content-Encoding", "gzip"), gzipped(t, gzipped(t, []byte(decisionBody))), 415, "unsupported_media_type", "Content-Encoding"},
		{"identity, then gzip on another line", "", lines("Content-Encoding", "identity", "Content-Encoding", "gzip"), gzipped(t, []byte(decisionBody)), 415, "unsupported_media_type", "Content-Encoding"},
		{"two content types", "", lines("Content-Type", "application/json", "Content-Type", "text/plain"), []byte(decisionBody), 415, "unsupported_media_type", "Content-Type"},
		{"gzip bomb", "gzip", nil, gzipped(t, bytes.Repeat([]byte(" "), 8*maxBody)), 413, "too_large", "body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "gzip bomb" && len(tc.body) >= maxBody {
				t.Fatalf("the compressed bomb is %d bytes; it must be under --max-body to test the inflated limit", len(tc.body))
			}
			var r response
			if tc.header != nil {
				r = postHeaders(t, hs, "/v1/decisions", tc.header, tc.body)
			} else {
				r = post(t, "/v1/decisions", tc.encoding, tc.body)
			}
			e := r.errorBody(t)
			if r.status != tc.status || e.Code != tc.code || e.Field != tc.field || e.Message == "" {
				t.Errorf("got %s; want %d %s naming %s", r, tc.status, tc.code, tc.field)
			}
		})
	}
}

// A gzip body sent small is budgeted in the small lane while it inflates
// within it, so compressed join-time questions are not queued behind
// rosters; one that inflates past it moves to the large lane, and waits
// there (503 overloaded when it stays full) like any big request.
func TestGzipBodiesTakeTheSmallLaneWhileSmall(t *testing.T) {
	ts := newTestServer(t, serverSetup{cfg: Config{QueueTimeout: 50 * time.Millisecond}})
	hs := httptest.NewServer(ts.Handler())
	defer hs.Close()
	post := func(t *testing.T, path string, body []byte) response {
		t.Helper()
		return postEncoded(t, hs, path, "gzip", body)
	}
	roster := rosterBody(3_000)
	bigRoster := gzipped(t, roster)
	if len(roster) <= SmallBody || len(bigRoster) > SmallBody {
		t.Fatalf("the roster is %d bytes, %d compressed: the case needs more than %d inflated and at most that sent", len(roster), len(bigRoster), SmallBody)
	}

	// The large lane full, as while rosters are decided.
	f := ts.inflight
	if err := f.large.Acquire(context.Background(), f.largeCap); err != nil {
		t.Fatal(err)
	}
	held := true
	defer func() {
		if held {
			f.large.Release(f.largeCap)
		}
	}()
	r := post(t, "/v1/admission", gzipped(t, []byte(admissionBody)))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"allow":false`) {
		t.Fatalf("a gzip admission while the large lane is full: %s", r)
	}
	r = post(t, "/v1/decisions", bigRoster)
	if e := r.errorBody(t); r.status != http.StatusServiceUnavailable || e.Code != "overloaded" || r.header.Get("Retry-After") == "" {
		t.Fatalf("a gzip roster inflating past the small lane while the large lane is full: %s", r)
	}
	if used := f.smallUsed.Load(); used != 0 {
		t.Errorf("%d bytes of the small lane still reserved", used)
	}

	f.large.Release(f.largeCap)
	held = false
	r = post(t, "/v1/decisions", bigRoster)
	if r.status != http.StatusOK || strings.Count(string(r.body), `"remove_participant"`) == 0 {
		t.Fatalf("the gzip roster once the large lane has room: %.300s", r)
	}
	if small, large := f.smallUsed.Load(), f.largeUsed.Load(); small != 0 || large != 0 {
		t.Errorf("reserved after the requests: small lane %d, large lane %d", small, large)
	}
}

// A gzip body that outgrows the small lane: one inflating past --max-body
// is 413, one cut short after the move is 400, only maxMoving wait for
// the large lane at once (another is refused straight away, not after
// the queue timeout), and every reservation is given back.
func TestGzipBodiesMovingLanes(t *testing.T) {
	const maxBody = 256 << 10
	ts := newTestServer(t, serverSetup{cfg: Config{MaxBody: maxBody, QueueTimeout: 2 * time.Second}})
	hs := httptest.NewServer(ts.Handler())
	defer hs.Close()
	post := func(t *testing.T, body []byte) response {
		t.Helper()
		return postEncoded(t, hs, "/v1/decisions", "gzip", body)
	}
	f := ts.inflight

	bomb := gzipped(t, bytes.Repeat([]byte(" "), 4*maxBody))
	if len(bomb) > SmallBody {
		t.Fatalf("the bomb is %d bytes compressed; it must be sent small", len(bomb))
	}
	if r := post(t, bomb); r.status != http.StatusRequestEntityTooLarge || r.errorBody(t).Field != "body" {
		t.Errorf("a gzip bomb sent small: %s", r)
	}
	settled(t, ts.inflight)

	roster := rosterBody(6_000)
	whole := gzipped(t, roster)
	if len(roster) < 2*SmallBody || len(roster) > maxBody || len(whole) > SmallBody {
		t.Fatalf("the roster is %d bytes, %d compressed: the cases need it sent small, inflating to over twice SmallBody and within --max-body", len(roster), len(whole))
	}
	// Cut where more than SmallBody has inflated: the body is moved, then
	// found cut short.
	if r := post(t, whole[:len(whole)*3/4]); r.status != http.StatusBadRequest || r.errorBody(t).Field != "body" {
		t.Errorf("a gzip body cut short after it moved: %s", r)
	}
	settled(t, ts.inflight)

	// The large lane full and every place to wait taken: refused at once.
	if err := f.large.Acquire(context.Background(), f.largeCap); err != nil {
		t.Fatal(err)
	}
	if err := f.moving.Acquire(context.Background(), maxMoving); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := post(t, whole)
	if e := r.errorBody(t); r.status != http.StatusServiceUnavailable || e.Code != "overloaded" || r.header.Get("Retry-After") == "" {
		t.Errorf("a gzip roster with nowhere to wait: %s", r)
	}
	if waited := time.Since(start); waited >= time.Second {
		t.Errorf("refused after %v, not straight away (queue timeout 2s)", waited)
	}
	f.moving.Release(maxMoving)
	f.large.Release(f.largeCap)
	settled(t, ts.inflight)
	if r := post(t, whole); r.status != http.StatusOK {
		t.Errorf("the gzip roster once there is room: %.300s", r)
	}
	settled(t, ts.inflight)
}

// TestGzipBodyInflatedWhileItArrives: a gzip body sent small but longer
// than gzipStart, inflating within the small lane, is inflated as it
// arrives and admitted into the small lane once it has all arrived; so is
// one sent in two parts, the second after a pause. Nothing stays held.
func TestGzipBodyInflatedWhileItArrives(t *testing.T) {
	ts := newTestServer(t, serverSetup{})
	hs := httptest.NewServer(ts.Handler())
	defer hs.Close()
	// Ids that hardly compress: sent past gzipStart, inflated within
	// SmallBody.
	roster, _ := incompressibleRoster(SmallBody-200, "1.0.16.")
	body := gzipped(t, roster)
	if len(body) <= gzipStart || len(roster) > SmallBody {
		t.Fatalf("%d bytes sent, %d inflated: the case needs more than %d sent and at most %d inflated", len(body), len(roster), gzipStart, SmallBody)
	}
	if r := postEncoded(t, hs, "/v1/decisions", "gzip", body); r.status != http.StatusOK || !strings.Contains(string(r.body), `"remove_participant"`) {
		t.Fatalf("a gzip body inflated while it arrives: %.300s", r)
	}
	settled(t, ts.inflight)

	resp, raw := postGzipInTwoParts(t, hs, body, gzipStart+1024, 100*time.Millisecond)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a gzip body whose rest came after a pause: %d %.300s", resp.StatusCode, raw)
	}
	settled(t, ts.inflight)
}

// TestGzipBodyOutgrowingTheSmallLaneWhileItArrives: a gzip body sent
// small but longer than gzipStart, which inflates past SmallBody while it
// arrives, moves to the large lane and is decided whole: one byte past
// SmallBody is what tells it from a body that fits the small lane, and a
// body read only up to SmallBody would be decided as its first 64 KiB.
func TestGzipBodyOutgrowingTheSmallLaneWhileItArrives(t *testing.T) {
	ts := newTestServer(t, serverSetup{})
	hs := httptest.NewServer(ts.Handler())
	defer hs.Close()
	// Ids that hardly compress: sent past gzipStart and within SmallBody,
	// inflated past SmallBody.
	roster, n := incompressibleRoster(SmallBody+4<<10, "36.110.44.")
	body := gzipped(t, roster)
	if len(body) <= gzipStart || len(body) > SmallBody || len(roster) <= SmallBody {
		t.Fatalf("%d bytes sent, %d inflated: the case needs more than %d sent, at most %d, and more than that inflated", len(body), len(roster), gzipStart, SmallBody)
	}
	r := postEncoded(t, hs, "/v1/decisions", "gzip", body)
	if r.status != http.StatusOK {
		t.Fatalf("a gzip body outgrowing the small lane while it arrives: %.300s", r)
	}
	if got := strings.Count(string(r.body), `"remove_participant"`); got != n {
		t.Errorf("%d participants removed of the %d sent, all in mainland China", got, n)
	}
	settled(t, ts.inflight)
}

// incompressibleRoster is a decision request for meeting june4-b of at
// least size bytes, its participants' ids random letters (gzip saves
// little on them) and their addresses ipPrefix followed by 1 to 250. It
// returns the request and how many participants it holds.
func incompressibleRoster(size int, ipPrefix string) ([]byte, int) {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b strings.Builder
	b.WriteString(`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"}, "participants": [`)
	noise := make([]byte, 120)
	n := 0
	for ; b.Len() < size; n++ {
		if n > 0 {
			b.WriteByte(',')
		}
		rand.Read(noise)
		for j := range noise {
			noise[j] = letters[int(noise[j])%len(letters)]
		}
		fmt.Fprintf(&b, `{"id": "%s", "ip": "%s%d"}`, noise, ipPrefix, n%250+1)
	}
	b.WriteString(`]}}`)
	return []byte(b.String()), n
}

// settled waits until nothing is held in f's lanes and arriving budget
// and no big request is active, as after every request. A reservation is
// given back when its handler returns, which may be just after the client
// has read the answer; one never given back fails after 5 s.
func settled(t *testing.T, f *inflight) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		small, large, arriving, active := f.smallUsed.Load(), f.largeUsed.Load(), f.arrivingUsed.Load(), f.largeActive.Load()
		if small == 0 && large == 0 && arriving == 0 && active == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("held after the request: small lane %d, large lane %d, arriving %d, %d big requests active", small, large, arriving, active)
		}
	}
}

// A charset other than UTF-8 is refused naming it, quoted and cut to 32
// bytes on a character boundary, the mark included: a header's value is
// the client's, of any length, and a cut within a character was quoted as
// its bytes' escapes.
func TestCharsetRefusalQuotesItsStart(t *testing.T) {
	ts := newTestServer(t, serverSetup{})
	charset := "x" + strings.Repeat("é", 40)
	r := ts.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: decisionBody, contentType: `application/json; charset="` + charset + `"`})
	e := r.errorBody(t)
	if r.status != http.StatusUnsupportedMediaType || e.Code != "unsupported_media_type" || e.Field != "Content-Type" {
		t.Fatalf("got %s; want 415 unsupported_media_type naming Content-Type", r)
	}
	quoted := `"` + input.Shorten(charset, 32) + `"`
	if !strings.Contains(e.Message, quoted) || len(input.Shorten(charset, 32)) > 32 || strings.Contains(e.Message, `\x`) {
		t.Errorf("message %q: want the charset's start quoted as %s, at most 32 bytes and no byte cut from its character", e.Message, quoted)
	}
}
