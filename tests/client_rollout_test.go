package tests

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/client"
	"github.com/geoscope/geoscope/engine/input"
)

// A replica restarted under load, with meeting servers connected straight
// to it (as through a Kubernetes Service, which forwards connections, not
// requests). Over HTTP/1.1 an admission sent on a keep-alive connection as
// the replica closes it fails (EOF, a reset), and the Go client does not
// send it again: it may have been decided. Over HTTP/2, as
// docs/operations.md says, the replica's GOAWAY names the requests it did
// not take and Go's client sends them again: with a transport set up as
// WithHTTPClient's documentation says, an admission fails only while the
// replica is down (connection refused) or loading (not_ready).
func TestRolloutOverHTTP2LosesNoAdmission(t *testing.T) {
	certPath, keyPath, pool := selfSigned(t)
	p := startServe(t, serveOpts{ready: true, rootCAs: pool, args: []string{"--ledger", "off", "--tls-cert", certPath, "--tls-key", keyPath}})

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 64
	t.Cleanup(tr.CloseIdleConnections)
	var mu sync.Mutex
	protos := map[string]int{}
	hc := &http.Client{
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := tr.RoundTrip(r)
			if err == nil {
				mu.Lock()
				protos[resp.Proto]++
				mu.Unlock()
			}
			return resp, err
		}),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c, err := client.New(p.base, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var answered, refused, notReady int
	var lost []error
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := c.Admit(ctx, client.AdmissionRequest{
					Meeting:     input.AdmissionMeeting{ID: "weekly", Host: input.AdmissionHost{AccountID: "acct-x", AccountCountry: "DE"}},
					Participant: input.Participant{ID: fmt.Sprint("w", w, "-", i), IP: "8.8.8.8"},
				})
				cancel()
				var oe *net.OpError
				mu.Lock()
				switch {
				case err == nil:
					answered++
				case errors.As(err, &oe) && oe.Op == "dial":
					refused++
				case errors.Is(err, client.ErrNotReady):
					notReady++
				default:
					lost = append(lost, err)
				}
				mu.Unlock()
			}
		})
	}
	for range 3 {
		time.Sleep(500 * time.Millisecond)
		if code := p.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("exit code %d after SIGTERM", code)
		}
		p.restart()
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	t.Logf("answered %d, refused while down %d, not ready %d, lost %d; protocols %v", answered, refused, notReady, len(lost), protos)
	if protos["HTTP/2.0"] == 0 || len(protos) != 1 {
		t.Errorf("protocols %v, want HTTP/2 only", protos)
	}
	if answered < 20 {
		t.Errorf("%d admissions answered: too few to say anything", answered)
	}
	for i, err := range lost {
		if i == 5 {
			break
		}
		t.Errorf("an admission failed otherwise than while the replica was down or loading: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
