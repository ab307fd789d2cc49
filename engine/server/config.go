package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/geoscope/geoscope/internal/secretfile"
)

// Config configures the HTTP server. Zero values take the defaults below.
type Config struct {
	// Addr is the HOST:PORT the caller listens on (Serve takes the
	// listener). Without tokens, New refuses one that is not a loopback
	// address unless InsecureNoAuth, and Serve checks the listener's own.
	Addr string
	// MaxBody bounds request bodies in bytes.
	MaxBody int64
	// MaxParticipants bounds the roster of one request.
	MaxParticipants int
	// MaxInflight bounds the request bytes decided at once by requests
	// with bodies over SmallBody (default: DefaultInflightBodies times
	// MaxBody). Memory in use grows with it; see inflight.go.
	MaxInflight int64
	// QueueTimeout is how long a request may wait for room in the
	// in-flight budget before it is answered 503 overloaded.
	QueueTimeout time.Duration
	// MinBodyRate is the slowest a decision request's body may arrive, in
	// bytes per second after a start of 2 s, from when it is first read
	// (a body over SmallBody once it is admitted into the in-flight
	// budget); a slower one is answered 408 body_timeout (see paced.go).
	MinBodyRate int64
	// MaxResponse bounds the body of a decision answer.
	MaxResponse int64
	// EvalTimeout bounds each evaluation.
	EvalTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after a shutdown signal.
	ShutdownTimeout time.Duration
	// TokensFile holds bearer tokens ("SCOPE SHA256-HEX" per line).
	TokensFile string
	// InsecureNoAuth allows a non-loopback listener without tokens.
	InsecureNoAuth bool
	// PublicMetrics opens /metrics and /v1/status without a token.
	PublicMetrics bool
	// PublicReport opens /report and /v1/report without a token.
	PublicReport bool
	// TLSCert and TLSKey enable TLS; both or neither.
	TLSCert, TLSKey string
	// Version and Revision (the build's commit) are reported by
	// /v1/status, and with RevisionTime (the commit's time) and Modified
	// (built from a checkout with uncommitted changes) in the Data API's
	// ?provenance.
	Version, Revision string
	RevisionTime      time.Time
	Modified          bool
	// TracerProvider traces every request (nil: no tracing) but those
	// Untraced reports.
	TracerProvider trace.TracerProvider
	// Untraced reports whether a request for a URL path is left
	// untraced (distributed_tracing.exclude_paths); nil traces them all.
	Untraced func(path string) bool
}

// Defaults.
const (
	DefaultAddr            = "127.0.0.1:8181"
	DefaultMaxBody         = 4 << 20
	DefaultMaxParticipants = 100_000
	DefaultQueueTimeout    = time.Second
	DefaultMinBodyRate     = 256 << 10
	DefaultMaxResponse     = 64 << 20
	DefaultEvalTimeout     = time.Second
	DefaultShutdownTimeout = 10 * time.Second
)

// DefaultInflightBodies is how many bodies of the largest size are decided
// at once by default: one per two CPUs (at least one). A big roster keeps a
// CPU busy for hundreds of milliseconds; the other CPUs stay free for
// admissions, which must not wait behind it.
func DefaultInflightBodies() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// ErrConfig is matched by configuration errors.
var ErrConfig = errors.New("invalid server configuration")

// Validate checks the configuration (with defaults applied) without any
// side effect, so a command can refuse a bad one before it opens anything.
func (c Config) Validate() error { return c.withDefaults().validate() }

// withDefaults fills zero values.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxParticipants == 0 {
		c.MaxParticipants = DefaultMaxParticipants
	}
	if c.MaxInflight == 0 && c.MaxBody > 0 {
		// Saturated at the largest int64: a --max-body near it must not
		// wrap around into a negative default.
		c.MaxInflight = math.MaxInt64
		if n := int64(DefaultInflightBodies()); c.MaxBody <= math.MaxInt64/n {
			c.MaxInflight = c.MaxBody * n
		}
	}
	if c.QueueTimeout == 0 {
		c.QueueTimeout = DefaultQueueTimeout
	}
	if c.MinBodyRate == 0 {
		c.MinBodyRate = DefaultMinBodyRate
	}
	if c.MaxResponse == 0 {
		c.MaxResponse = DefaultMaxResponse
	}
	if c.EvalTimeout == 0 {
		c.EvalTimeout = DefaultEvalTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c
}

// validate checks the configuration after defaults are applied.
func (c Config) validate() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("%w: --addr %q: %v", ErrConfig, c.Addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%w: --addr %q: the port %q is not a port number (0 to 65535) or service name", ErrConfig, c.Addr, port)
	}
	switch {
	case c.MaxBody < 0:
		return fmt.Errorf("%w: --max-body must be positive", ErrConfig)
	case c.MaxParticipants < 0:
		return fmt.Errorf("%w: --max-participants must be positive", ErrConfig)
	case c.MaxInflight < c.MaxBody:
		return fmt.Errorf("%w: --max-inflight (%d) must be at least --max-body (%d), or a body of the largest size could never be admitted", ErrConfig, c.MaxInflight, c.MaxBody)
	case c.QueueTimeout < 0:
		return fmt.Errorf("%w: --queue-timeout must be positive", ErrConfig)
	case c.MinBodyRate < 0:
		return fmt.Errorf("%w: --min-body-rate must be positive", ErrConfig)
	case c.MaxResponse < 0:
		return fmt.Errorf("%w: --max-response must be positive", ErrConfig)
	case c.EvalTimeout < 0:
		return fmt.Errorf("%w: --eval-timeout must be positive", ErrConfig)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("%w: --shutdown-timeout must be positive", ErrConfig)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", ErrConfig)
	case c.TokensFile == "" && !c.InsecureNoAuth && !isLoopback(host):
		return fmt.Errorf("%w: refusing to listen on %s without authentication: give --tokens-file, "+
			"or listen on a loopback address, or pass --insecure-no-auth to accept unauthenticated requests from the network",
			ErrConfig, c.Addr)
	}
	if c.TokensFile != "" {
		// Read now, so that a missing or malformed file is refused before
		// anything is opened (New reads it again).
		if _, err := loadTokens(c.TokensFile); err != nil {
			return err
		}
	}
	return c.checkTLS()
}

// checkTLS reads the certificate and its key, so that a missing or
// mismatched file is a configuration error naming the flag before
// anything is opened, not a failure after "listening".
func (c Config) checkTLS() error {
	if c.TLSCert == "" {
		return nil
	}
	_, err := loadPair(c.TLSCert, c.TLSKey)
	return err
}

// loadPair reads the certificate and its key, as tls.LoadX509KeyPair does,
// but refuses a key other users of the system may read (secretfile): it
// lets whoever reads it pose as this server.
func loadPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: --tls-cert %s: %v", ErrConfig, certFile, pathError(err))
	}
	key, err := secretfile.ReadPrivate(keyFile, "--tls-key "+keyFile, "whoever reads the key can pose as this server")
	var pe *os.PathError
	switch {
	case errors.As(err, &pe):
		return tls.Certificate{}, fmt.Errorf("%w: --tls-key %s: %v", ErrConfig, keyFile, pathError(err))
	case err != nil:
		return tls.Certificate{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: --tls-cert %s with --tls-key %s: %v", ErrConfig, certFile, keyFile, err)
	}
	return pair, nil
}

// pathError drops the path an *os.PathError repeats.
func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// isLoopback reports whether host names only loopback addresses. An empty
// host means every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
