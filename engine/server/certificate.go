package server

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"sync/atomic"
)

// certificate is the TLS certificate of --tls-cert and --tls-key, read
// again when either file changes (see Server.watchFiles), so that a
// certificate renewed in place (cert-manager rewriting a mounted Secret, a
// cron job of certbot) is served from the next handshake on, without a
// restart that would drop every connection. A renewal that does not load
// (a pair that does not match) keeps the certificate served, and is
// logged.
type certificate struct {
	certFile, keyFile string
	log               *slog.Logger
	current           atomic.Pointer[tls.Certificate]
}

func newCertificate(certFile, keyFile string, log *slog.Logger) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile, log: log}
	pair, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	c.current.Store(&pair)
	return c, nil
}

// get is tls.Config.GetCertificate.
func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// reload reads the pair again.
func (c *certificate) reload() {
	pair, err := loadPair(c.certFile, c.keyFile)
	if err == nil && bytes.Equal(pair.Certificate[0], c.current.Load().Certificate[0]) {
		return // another watched file changed
	}
	if err != nil {
		c.log.Warn("TLS certificate files changed but do not load; serving the previous certificate", "tls_cert", c.certFile, "tls_key", c.keyFile, "error", err.Error())
		return
	}
	c.current.Store(&pair)
	c.log.Info("TLS certificate reloaded", "tls_cert", c.certFile)
}
