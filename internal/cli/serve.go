package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/server"
	"github.com/geoscope/geoscope/engine/sources"
)

func serveCommand() *cobra.Command {
	var (
		cfg       server.Config
		bundles   []string
		geoPath   string
		logLevel  string
		opaConfig string
		keys      verificationFlags
		ledgers   ledgerFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Answer decision requests over HTTP",
		Long: `Serve answers decision requests from meeting servers over HTTP.

With no flags it listens on 127.0.0.1:8181 with the embedded policy, the
embedded example registry and the embedded DB-IP Country Lite database, and
without authentication (loopback only). Listening on any other address needs
--tokens-file (or --insecure-no-auth).

The GeoIP database file and bundle directories are watched: a replaced file
is loaded and swapped in; one that fails to load is rejected and the last
good version keeps answering (see GET /v1/status).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd, logLevel)
			if err != nil {
				return err
			}
			cfg.Version = Version
			scfg := sources.Config{Bundles: bundles, GeoIPDB: geoPath, OPAConfig: opaConfig, Logger: log}
			var src *sources.Sources
			if err := keys.apply(&scfg); err != nil {
				return err
			}
			// Refuse a bad configuration before anything is opened or
			// created on disk.
			if err := errors.Join(cfg.Validate(), scfg.Validate()); err != nil {
				return err
			}
			led, err := ledgers.open(cmd.Context(), log)
			if err != nil {
				return err
			}
			opts := []engine.Option{engine.WithDecisionLog(func(ctx context.Context, r *engine.Record) { src.LogDecision(ctx, r) })}
			if led != nil {
				defer led.Close()
				opts = append(opts, engine.WithRecorder(led))
			}
			eng := engine.New(opts...)
			src = sources.New(scfg, eng)
			srv, err := server.New(cfg, eng, src, log)
			if err != nil {
				return err
			}
			if led != nil {
				srv.UseLedger(led)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// A failed first load leaves the server up but not ready (503),
			// so a fixed file is picked up without a restart. A broken OPA
			// configuration is fatal.
			if err := src.Load(ctx); errors.Is(err, sources.ErrConfig) {
				return err
			}
			if err := src.Watch(ctx); err != nil {
				return err
			}
			return srv.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", server.DefaultAddr, "listen on `HOST:PORT`")
	f.StringArrayVar(&bundles, "bundle", nil, "load the bundle at `PATH` (directory or .tar.gz); repeatable (default: embedded policy and example registry)")
	f.StringVar(&geoPath, "geoip-db", "", "GeoIP2/GeoLite2 Country or City database `FILE` (default: embedded DB-IP Country Lite)")
	f.Int64Var(&cfg.MaxBody, "max-body", server.DefaultMaxBody, "largest request body in `BYTES`")
	f.IntVar(&cfg.MaxParticipants, "max-participants", server.DefaultMaxParticipants, "most participants in one request")
	f.Int64Var(&cfg.MaxInflight, "max-inflight", 0, "request body `BYTES` decided at once by requests over 64 KiB; more wait up to --queue-timeout (default: --max-body times one per two CPUs)")
	f.DurationVar(&cfg.QueueTimeout, "queue-timeout", server.DefaultQueueTimeout, "how long a request may wait for --max-inflight room before it is answered 503 overloaded")
	f.Int64Var(&cfg.MaxResponse, "max-response", server.DefaultMaxResponse, "largest decision answer in `BYTES` (413 too_large beyond)")
	f.DurationVar(&cfg.EvalTimeout, "eval-timeout", server.DefaultEvalTimeout, "deadline for each evaluation")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "how long requests in flight may take to finish on SIGINT/SIGTERM")
	f.StringVar(&cfg.TokensFile, "tokens-file", "", "bearer tokens, one \"SCOPE SHA256-HEX\" per line (scopes: decide, admin)")
	f.BoolVar(&cfg.InsecureNoAuth, "insecure-no-auth", false, "allow listening on a non-loopback address without --tokens-file")
	f.BoolVar(&cfg.PublicMetrics, "public-metrics", false, "serve /metrics and /v1/status without a token")
	f.BoolVar(&cfg.PublicReport, "public-report", false, "serve the transparency report (/report, /v1/report) without a token")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "serve TLS with this certificate `FILE` (PEM)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "private key `FILE` for --tls-cert (PEM)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&opaConfig, "config", "", "OPA configuration `FILE` (services, bundles, keys, decision_logs); excludes --bundle")
	keys.register(f)
	ledgers.register(f)
	return cmd
}

// newLogger returns a JSON logger on stderr.
func newLogger(cmd *cobra.Command, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{err}
	}
	return slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: l})), nil
}
