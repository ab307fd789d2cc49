package cli

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/geoscope/geoscope/engine/server"
)

// errProbe is a probe that got no 200.
var errProbe = errors.New("probe failed")

// probeCommand checks a running server's /ready (or any of its open
// endpoints) and exits 0 on 200. It is the container image's HEALTHCHECK:
// the image has no shell and no HTTP client of its own.
func probeCommand() *cobra.Command {
	var (
		target  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "probe [--url URL]",
		Short: "Exit 0 if a running server answers 200 (the container health check)",
		Long: `Probe sends GET to URL (by default $GEOSCOPE_PROBE_URL, or the /ready
endpoint of a server on the default port) and exits 0 when it answers 200,
1 otherwise, saying why on stderr. /ready answers 200 once the policy, the
registry and the GeoIP database are active; /health once the process
serves.

An https:// URL is probed without verifying the server's certificate, as
the kubelet's HTTPS probes do: the probe asks its own server, on
loopback, where the certificate's names do not apply. A container that
serves TLS sets GEOSCOPE_PROBE_URL=https://127.0.0.1:8181/ready, and one
that listens elsewhere than --addr 0.0.0.0:8181 names its port there.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := url.Parse(target)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageError{fmt.Errorf("--url %q: want an http:// or https:// URL", target)}
			}
			if timeout <= 0 {
				return usageError{fmt.Errorf("--timeout %v: want a positive duration", timeout)}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
			if err != nil {
				return usageError{err}
			}
			// Not verified (see Long): the probe tells whether its own
			// server answers, not who it is.
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("%w: %v", errProbe, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%w: %s answered %d: %s", errProbe, u.Redacted(), resp.StatusCode, strings.TrimSpace(string(body)))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "url", cmp.Or(os.Getenv("GEOSCOPE_PROBE_URL"), "http://"+server.DefaultAddr+"/ready"), "`URL` to probe (env GEOSCOPE_PROBE_URL)")
	f.DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	return cmd
}
