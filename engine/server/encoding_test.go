package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
		req, err := http.NewRequest(http.MethodPost, hs.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return response{status: resp.StatusCode, header: resp.Header, body: raw}
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

	cases := []struct {
		name, encoding string
		body           []byte
		status         int
		code, field    string
	}{
		{"plain body labelled gzip", "gzip", []byte(decisionBody), 400, "invalid_input", "body"},
		{"truncated gzip", "gzip", gzipped(t, []byte(decisionBody))[:40], 400, "invalid_input", "body"},
		{"unknown encoding", "br", []byte(decisionBody), 415, "unsupported_media_type", "Content-Encoding"},
		{"two encodings", "gzip, gzip", gzipped(t, gzipped(t, []byte(decisionBody))), 415, "unsupported_media_type", "Content-Encoding"},
		{"gzip bomb", "gzip", gzipped(t, bytes.Repeat([]byte(" "), 8*maxBody)), 413, "too_large", "body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "gzip bomb" && len(tc.body) >= maxBody {
				t.Fatalf("the compressed bomb is %d bytes; it must be under --max-body to test the inflated limit", len(tc.body))
			}
			r := post(t, "/v1/decisions", tc.encoding, tc.body)
			e := r.errorBody(t)
			if r.status != tc.status || e.Code != tc.code || e.Field != tc.field || e.Message == "" {
				t.Errorf("got %s; want %d %s naming %s", r, tc.status, tc.code, tc.field)
			}
		})
	}
}
