package server

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// --max-body is a bound a body may reach and not pass, however it is sent:
// with its length declared, or chunked, plain or gzip-compressed (then
// what it inflates to is bounded), in the small lane (a --max-body under
// SmallBody) and in the large one. Each body is an admission padded with
// trailing spaces, so that one cut short at the limit would still decode:
// a byte over is refused 413 too_large, not decided as what was left.
func TestBodyAtItsLimit(t *testing.T) {
	for _, maxBody := range []int64{2 << 10, 2 * SmallBody} {
		ts := newTestServer(t, serverSetup{cfg: Config{MaxBody: maxBody}})
		padded := func(n int64) string {
			return admissionBody + strings.Repeat(" ", int(n)-len(admissionBody))
		}
		gzipHeader := http.Header{"Content-Encoding": {"gzip"}}
		for _, tc := range []struct {
			name string
			req  func(body string) request
		}{
			{"declared", func(body string) request { return request{method: http.MethodPost, path: "/v1/admission", body: body} }},
			{"chunked", func(body string) request {
				return request{method: http.MethodPost, path: "/v1/admission", body: body, chunked: true}
			}},
			{"gzip, declared", func(body string) request {
				return request{method: http.MethodPost, path: "/v1/admission", body: string(gzipped(t, []byte(body))), header: gzipHeader}
			}},
			{"gzip, chunked", func(body string) request {
				return request{method: http.MethodPost, path: "/v1/admission", body: string(gzipped(t, []byte(body))), header: gzipHeader, chunked: true}
			}},
		} {
			if r := ts.do(t, tc.req(padded(maxBody))); r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"allow":false`)) {
				t.Errorf("--max-body %d, %s: a body of exactly %d bytes: %s, want 200", maxBody, tc.name, maxBody, r)
			}
			r := ts.do(t, tc.req(padded(maxBody+1)))
			if e := r.errorBody(t); r.status != http.StatusRequestEntityTooLarge || e.Code != "too_large" || e.Field != "body" {
				t.Errorf("--max-body %d, %s: a body of %d bytes: %s, want 413 too_large", maxBody, tc.name, maxBody+1, r)
			}
		}
		if small, large, arriving := ts.inflight.smallUsed.Load(), ts.inflight.largeUsed.Load(), ts.inflight.arrivingUsed.Load(); small != 0 || large != 0 || arriving != 0 {
			t.Errorf("--max-body %d: still held after the requests: small lane %d, large lane %d, arriving %d", maxBody, small, large, arriving)
		}
	}
}
