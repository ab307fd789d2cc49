package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decisionlog"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/engine/server"
	"github.com/geoscope/geoscope/engine/sources"
	"github.com/geoscope/geoscope/engine/tracing"
	"github.com/geoscope/geoscope/internal/buildinfo"
)

func serveCommand() *cobra.Command {
	var (
		cfg        server.Config
		bundles    []string
		geoPath    string
		logLevel   string
		opaConfig  string
		opaSet     []string
		opaSetFile []string
		keys       verificationFlags
		ledgers    ledgerFlags
		phones     bool
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
good version keeps answering (see GET /v1/status). SIGHUP, like
POST /v1/admin/reload, reloads every source now (remote bundles are
downloaded again). SIGINT and SIGTERM shut down gracefully: requests in
flight are answered, then OPA's plugins (with --config) stop, the
decision-log plugin uploading the events it holds.

With --log-level debug the policy's print() calls are compiled in and
their output is logged at debug level (msg "policy print", with the
location). It may hold whatever the policy prints, participant ids
included: debug logging is for authoring, not for production.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// SIGHUP reloads; caught from the start so that one arriving
			// during startup does not end the process.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			log, console, err := newLoggers(cmd, logLevel)
			if err != nil {
				return err
			}
			bi := buildinfo.Read()
			cfg.Version, cfg.Revision, cfg.RevisionTime, cfg.Modified = bi.Version(), bi.Revision, bi.RevisionTime, bi.Modified
			scfg := sources.Config{Bundles: bundles, GeoIPDB: geoPath, OPAConfig: opaConfig, OPASet: opaSet, OPASetFile: opaSetFile, Logger: log, Console: console, InstanceID: ledgers.replicaName()}
			var src *sources.Sources
			if err := keys.apply(&scfg); err != nil {
				return err
			}
			// The policy's print() output is an authoring aid that may
			// carry ids: it is compiled in, and logged, at debug level only.
			if log.Enabled(cmd.Context(), slog.LevelDebug) {
				scfg.Load.Print = policy.LogPrints(log)
			}
			// A limit given as 0 would be taken as its default: say so
			// instead of serving with a value nobody asked for.
			for _, name := range []string{"max-body", "max-participants", "queue-timeout", "min-body-rate", "max-response", "eval-timeout", "shutdown-timeout"} {
				if fl := cmd.Flags().Lookup(name); fl.Changed && (fl.Value.String() == "0" || fl.Value.String() == "0s") {
					return usageError{fmt.Errorf("--%s 0: must be positive (leave the flag out for its default, %s)", name, fl.DefValue)}
				}
			}
			// Refuse a bad configuration before anything is opened or
			// created on disk.
			if err := errors.Join(cfg.Validate(), scfg.Validate()); err != nil {
				return err
			}
			// The ledger's settings too, before the address is bound
			// below: an address in use would hide them otherwise.
			if err := ledgers.check(); err != nil {
				return err
			}
			traces, err := tracingConfig(scfg)
			if err != nil {
				return err
			}
			tp, err := tracing.Start(cmd.Context(), traces, cfg.Version)
			if err != nil {
				return err
			}
			tracing.LogErrors(log)
			defer func() {
				// Flush the spans still batched.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := tp.Shutdown(ctx); err != nil {
					log.Warn("spans not exported at shutdown", "error", err.Error())
				}
			}()
			// Listening before the ledger opens: an address in use is
			// refused before anything is created on disk.
			ln, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				return fmt.Errorf("--addr %s: %w", cfg.Addr, err)
			}
			defer ln.Close()
			led, err := ledgers.open(cmd.Context(), log)
			if err != nil {
				return err
			}
			opts := []engine.Option{engine.WithPhoneLocation(phones)}
			pseudo, err := decisionLogPseudonyms(led, scfg.HasOPAConfig(), log)
			if err != nil {
				return err
			}
			if led != nil {
				defer led.Close()
				opts = append(opts, engine.WithRecorder(led))
				// Which ledger this replica records into, said once: a
				// wrong one is otherwise visible only in /v1/status.
				log.Info("ledger opened", append(ledgers.where(), "backend", led.Health().Backend, "replica", ledgers.replicaName())...)
			}
			if scfg.HasOPAConfig() {
				dl := decisionlog.New(func() *plugins.Manager { return src.Manager() }, pseudo, log)
				opts = append(opts, engine.WithDecisionLog(dl.Log), engine.WithDecisionLogEnabled(dl.Enabled))
			}
			if traces.Enabled() {
				log.Info("exporting OpenTelemetry spans", "type", traces.Type, "address", traces.Address)
				cfg.TracerProvider = tp
				cfg.Untraced = traces.Excludes
				opts = append(opts, engine.WithTracerProvider(tp))
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
			// Once the stop has begun, a second signal ends the process at
			// once (Go's default), for an operator who will not wait: as
			// kill -9, it loses the plain-admission counts not yet
			// written (docs/operations.md).
			context.AfterFunc(ctx, stop)
			// A failed first load leaves the server up but not ready (503),
			// so a fixed file is picked up without a restart. A broken OPA
			// configuration is fatal: it is found as OPA's plugins start,
			// which is quick (their bundles arrive while the server runs),
			// so that load comes before serving.
			if scfg.HasOPAConfig() {
				if err := src.Load(ctx); errors.Is(err, sources.ErrConfig) {
					return err
				}
			}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ctx, ln) }()
			if !scfg.HasOPAConfig() {
				// Local bundles are read and built while the server already
				// answers: a large registry takes seconds (tens on a busy
				// node), during which /health must say the process lives
				// (a liveness probe that timed out would restart it, to
				// load again) and /ready that it is not ready yet.
				log.Info("loading the bundles and the GeoIP database; not ready until they are active")
				if err := src.Load(ctx); errors.Is(err, sources.ErrConfig) {
					stop()
					<-served
					return err
				}
			}
			if err := src.Watch(ctx); err != nil {
				stop()
				<-served
				return err
			}
			go reloadOnHangup(ctx, hup, src, log)
			err = <-served
			// OPA's plugins stop after the drain, as in OPA's runtime: a
			// request answered during it hands its decision-log event to a
			// plugin still running, and the plugin's final upload, which
			// the stop makes and waits for, carries it. The upload gets
			// --shutdown-timeout of its own, so a collector that does not
			// answer delays the exit by that much at most; a request cut
			// off by --shutdown-timeout may still be deciding then, and its
			// event is lost.
			stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			// OPA's decision-log plugin makes its final upload under
			// stopCtx, but then waits for an upload already under way,
			// which only its service's own timeouts bound (10 s for the
			// response's head, 30 s to connect): the stop is not waited
			// for past stopCtx, so that the ledger is still closed, and
			// its counts written, within the pod's grace period.
			stopped := make(chan struct{})
			go func() { src.Stop(stopCtx); close(stopped) }()
			select {
			case <-stopped:
			case <-stopCtx.Done():
				log.Warn("OPA's plugins did not stop within --shutdown-timeout; decision-log events not yet uploaded are lost", "timeout", cfg.ShutdownTimeout.String())
			}
			return err
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
	f.Int64Var(&cfg.MinBodyRate, "min-body-rate", server.DefaultMinBodyRate, "slowest a decision request's body may arrive, in `BYTES` per second after a 2 s start (408 body_timeout below it)")
	f.Int64Var(&cfg.MaxResponse, "max-response", server.DefaultMaxResponse, "largest decision answer in `BYTES` (413 too_large beyond)")
	f.DurationVar(&cfg.EvalTimeout, "eval-timeout", server.DefaultEvalTimeout, "deadline for each evaluation")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "how long requests in flight may take to finish on SIGINT/SIGTERM, and then OPA's plugins to stop (the final decision-log upload)")
	f.StringVar(&cfg.TokensFile, "tokens-file", "", "bearer tokens, one \"SCOPE SHA256-HEX\" per line (scopes: decide, metrics, admin), lines of at most 64 KiB")
	f.BoolVar(&cfg.InsecureNoAuth, "insecure-no-auth", false, "allow listening on a non-loopback address without --tokens-file")
	f.BoolVar(&cfg.PublicMetrics, "public-metrics", false, "serve /metrics and /v1/status without a token: anyone who reaches the server reads the live counters, which tell when decisions are made and what they did (a metrics token in --tokens-file is the safer way)")
	f.BoolVar(&cfg.PublicReport, "public-report", false, "serve the transparency report (/report, /v1/report) without a token")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "serve TLS with this certificate `FILE` (PEM)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "private key `FILE` for --tls-cert (PEM)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error (console decision logs of --config are printed at any level, as OPA prints them)")
	f.StringVar(&opaConfig, "config", "", "OPA configuration `FILE` (services, bundles, keys, decision_logs); excludes --bundle")
	// Arrays, not slices, as OPA's: a comma belongs to the value's syntax.
	f.StringArrayVar(&opaSet, "set", nil, "override a value of the OPA configuration, as OPA's --set: `KEY=VALUE[,KEY=VALUE]` (decision_logs.console=true); repeatable; without --config, the whole configuration")
	f.StringArrayVar(&opaSetFile, "set-file", nil, "override a value of the OPA configuration with a file's content (trimmed), as OPA's --set-file: `KEY=FILE` (services.s.credentials.bearer.token=/run/secrets/token); repeatable")
	registerPhoneFlag(f, &phones)
	keys.register(f, true)
	ledgers.register(f)
	ledgers.registerReplica(f)
	return cmd
}

// registerPhoneFlag adds --locate-phone-numbers (serve and decide).
func registerPhoneFlag(f *pflag.FlagSet, on *bool) {
	f.BoolVar(on, "locate-phone-numbers", false, "locate dial-in callers by the country of their calling number "+
		"(roaming and spoofed caller id make this weaker than an address; see docs/policy.md); "+
		"without it a caller's location is unknown: never acted on, counted as outside")
}

// newLoggers returns serve's JSON loggers on stderr: its log, at --log-level,
// and the console of OPA's plugins (decision_logs.console and
// status.console).
//
// The console is OPA's console logger, apart from the main log as in OPA:
// what an operator asked to see with console: true is printed whatever
// --log-level filters out, at "info" written as OPA writes it (its logger
// writes levels in lower case, slog in upper case), so that pipelines that
// read OPA's console decision logs select these lines unchanged. Both
// write through one lock: a line of one never splits one of the other.
func newLoggers(cmd *cobra.Command, level string) (log, console *slog.Logger, err error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	w := &lockedWriter{w: cmd.ErrOrStderr()}
	log = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
	console = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.LevelKey {
				return slog.String(slog.LevelKey, strings.ToLower(a.Value.String()))
			}
			return a
		},
	}))
	return log, console, nil
}

// lockedWriter serialises the writes of loggers that each lock only
// themselves.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// reloadOnHangup reloads every source on SIGHUP, as POST /v1/admin/reload
// does, and logs what happened: a rejected version leaves the active one
// answering.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, src *sources.Sources, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading the bundles and the GeoIP database")
			err := src.Reload(ctx)
			st := src.Status()
			revisions := map[string]string{}
			for _, b := range st.Bundles {
				revisions[b.Name] = b.Revision
			}
			if err != nil {
				log.Error("SIGHUP reload rejected a version; the active ones keep answering", "error", err.Error(), "revisions", revisions)
				continue
			}
			log.Info("SIGHUP reload done", "revisions", revisions)
		}
	}
}

// decisionLogPseudonyms is the pseudonymizer of the decision logs: the
// ledger's, so that a person's pseudonym is the same in both. With the
// ledger off there is no ledger key; a key of this process's own keeps the
// logs free of ids, at the price of pseudonyms that match nothing else.
func decisionLogPseudonyms(led *ledger.Ledger, opa bool, log *slog.Logger) (*ledger.Pseudonymizer, error) {
	if led != nil {
		return led.Pseudonymizer(), nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if opa {
		log.Warn("the ledger is off: decision logs carry pseudonyms under a key of this process only, which match no ledger")
	}
	return ledger.NewPseudonymizer(key), nil
}

// tracingConfig reads the distributed_tracing block of the OPA
// configuration, if one is given.
func tracingConfig(c sources.Config) (*tracing.Config, error) {
	if !c.HasOPAConfig() {
		return &tracing.Config{}, nil
	}
	raw, err := c.ReadOPAConfig()
	if err != nil {
		return nil, err
	}
	return tracing.FromOPAConfig(raw)
}
