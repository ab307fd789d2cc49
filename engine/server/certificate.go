package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certificate is the TLS certificate of --tls-cert and --tls-key, read
// again when either file changes, so that a certificate renewed in place
// (cert-manager rewriting a mounted Secret, a cron job of certbot) is
// served from the next handshake on, without a restart that would drop
// every connection. The files are looked at, at most once per
// certificateCheck, during a handshake: connections are kept alive, so
// handshakes are few, and a look is two stats.
//
// A renewal that does not load (the key written after the certificate, a
// pair that does not match) keeps the certificate served and is logged
// once; the next change is tried again.
type certificate struct {
	certFile, keyFile string
	log               *slog.Logger
	every             time.Duration

	mu             sync.Mutex
	current        *tls.Certificate
	loaded, failed [2]fileStamp // of the pair served, and of the last that failed
	lastFailure    string       // logged once, until another or a success
	lastLook       time.Time
}

// certificateCheck is how often a handshake looks for a renewed pair.
const certificateCheck = 10 * time.Second

// fileStamp tells one version of a file from another. A Secret's files
// are replaced through a symbolic link, which os.Stat follows.
type fileStamp struct {
	mod  time.Time
	size int64
}

func newCertificate(certFile, keyFile string, log *slog.Logger) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile, log: log, every: certificateCheck}
	stamps, err := c.stamps()
	if err == nil {
		err = c.load(stamps)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: --tls-cert %s with --tls-key %s: %v", ErrConfig, certFile, keyFile, err)
	}
	c.lastLook = time.Now()
	return c, nil
}

func (c *certificate) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, path := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(path)
		if err != nil {
			return s, pathError(err)
		}
		s[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

func (c *certificate) load(stamps [2]fileStamp) error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	c.current, c.loaded = &pair, stamps
	return nil
}

// get is tls.Config.GetCertificate.
func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.lastLook) >= c.every {
		c.lastLook = time.Now()
		c.reload()
	}
	return c.current, nil
}

// reload loads the pair if either file has changed since it was loaded.
func (c *certificate) reload() {
	stamps, err := c.stamps()
	if err == nil && (stamps == c.loaded || stamps == c.failed) {
		return
	}
	if err == nil {
		if err = c.load(stamps); err == nil {
			c.lastFailure = ""
			c.log.Info("TLS certificate reloaded", "tls_cert", c.certFile)
			return
		}
		c.failed = stamps
	}
	// A file that is missing a while (being replaced) fails every look:
	// said once.
	if err.Error() != c.lastFailure {
		c.lastFailure = err.Error()
		c.log.Warn("TLS certificate files changed but do not load; serving the previous certificate", "tls_cert", c.certFile, "tls_key", c.keyFile, "error", err.Error())
	}
}
