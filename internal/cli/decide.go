package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/spf13/cobra"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/engine/registry"
	"github.com/geoscope/geoscope/engine/server"
	"github.com/geoscope/geoscope/engine/sources"
)

func decideCommand() *cobra.Command {
	var (
		inputPath   string
		geoPath     string
		bundles     []string
		showPrint   bool
		evalTimeout time.Duration
		maxBody     int64
		maxPeople   int
		keys        verificationFlags
		ledgers     ledgerFlags
		phones      bool
		at          string
	)
	cmd := &cobra.Command{
		Use:   "decide [--input FILE] [--geoip-db FILE] [--bundle PATH]...",
		Short: "Decide one request (JSON from --input or stdin) and print the decision",
		Long: `Decide reads one decision request, locates every address, evaluates the
policy, applies the guard, and prints the decision as JSON on stdout.

Without --bundle the embedded policy and the embedded example registry are
used; with --bundle exactly the given bundles are loaded (a warning says so
when they hold no registry). Without --geoip-db the embedded DB-IP Country
Lite database is used. The request is held to serve's limits,
--max-body (4 MiB) and --max-participants (100,000) by default: raise
them to decide a larger one.

decide records nothing unless --ledger, --data-dir or --ledger-key-file is
given: an offline answer is a what-if that no meeting server carries out,
and it must not appear in a server's ledger or transparency report. Give
one of them when the decision will be enforced.

With --show-print the policy's print() calls are compiled in and their
output goes to stderr, one "FILE:ROW: OUTPUT" line per call (never to
stdout, the decision or the ledger).

With --at the request is decided as of another time (an RFC 3339
date-time, or a date for its start in UTC): the orders in force then are
evaluated, a policy that reads the clock (time.now_ns) reads that time,
and the decision carries it. It is for reviewing what
geoscope would decide, or would have decided, while an order is or was in
force; it cannot be combined with recording in a ledger, whose entries
are decided now.

Warnings go to stderr, one JSON line each: bundles without a registry,
an extension rule the default policy never reads (exempt, withheld or
refusals in a package other than geoscope.extensions) or writes as a
complete rule, and each entry of the extension rules that is malformed
for this request (data.geoscope.extension_problems: an entry with a
misspelt key names no order and withholds nothing; the first 20, then
how many more).

Exit status: 0 with a decision, 2 on bad input or unreadable bundles or
database (the message on stderr names the field), 1 on other failures.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unexpected argument %q: give the request with --input %s, or on stdin", args[0], args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			if maxBody <= 0 {
				return usageError{fmt.Errorf("--max-body %d: want a positive number of bytes", maxBody)}
			}
			if maxPeople <= 0 {
				return usageError{fmt.Errorf("--max-participants %d: want a positive number", maxPeople)}
			}
			raw, err := readInput(cmd.InOrStdin(), inputPath, maxBody)
			if err != nil {
				return err
			}
			req, err := input.Decode(raw, input.Limits{MaxParticipants: maxPeople})
			if errors.Is(err, input.ErrTooLarge) {
				return fmt.Errorf("%w; raise --max-participants to decide it", err)
			}
			if err != nil {
				return err
			}
			var asOf time.Time
			if at != "" {
				if ledgers.chosen(cmd.Flags()) && ledgers.url != ledgerOff {
					return usageError{errors.New("--at decides as of another time and cannot be recorded in a ledger; leave out --ledger, --data-dir and --ledger-key-file")}
				}
				t, _, err := registry.ParseInstant(at, false)
				if err != nil {
					return &input.FieldError{Field: "--at", Message: strings.TrimPrefix(err.Error(), registry.ErrDate.Error()+": ")}
				}
				asOf = t
			}
			if cmd.Flags().Changed("eval-timeout") && evalTimeout <= 0 {
				return usageError{fmt.Errorf("--eval-timeout %s: must be positive", evalTimeout)}
			}
			opts, err := keys.loadOptions()
			if err != nil {
				return err
			}
			if showPrint {
				opts.Print = policy.PrintTo(cmd.ErrOrStderr())
			}
			snap, err := policy.LoadSnapshot(cmd.Context(), bundles, opts)
			if err != nil {
				return err
			}
			db, err := openGeo(geoPath)
			if err != nil {
				return err
			}
			for _, w := range snap.Warnings() {
				log.Warn(w)
			}
			if w := sources.SubdivisionWarning(snap.Registry(), db.Info()); w != "" {
				log.Warn(w)
			}
			// What the extension rules got wrong for this request (an entry
			// with a misspelt key withholds nothing, in silence), asked of
			// the policy with the input it evaluates, and said after the
			// decision: decide is where an author tries a policy out.
			var problems []string
			engineOpts := []engine.Option{engine.WithPhoneLocation(phones), engine.WithInputHook(func(ctx context.Context, snap *policy.Snapshot, in ast.Value) {
				problems, _ = snap.ExtensionProblems(ctx, in)
			})}
			defer func() {
				for i, p := range problems {
					if i == maxExtensionProblems {
						log.Warn(fmt.Sprintf("data.geoscope.extension_problems: %d more (see docs/policy.md)", len(problems)-i))
						break
					}
					log.Warn("data.geoscope.extension_problems: " + input.Shorten(p, maxProblemText) + " (see docs/policy.md)")
				}
			}()
			if !asOf.IsZero() {
				engineOpts = append(engineOpts, engine.WithClock(func() time.Time { return asOf }))
			}
			// --ledger off is what decide does anyway: nothing to warn about.
			if ledgers.chosen(cmd.Flags()) && ledgers.url != ledgerOff {
				led, err := ledgers.open(cmd.Context(), log)
				if err != nil {
					return err
				}
				if led != nil {
					defer led.Close()
					engineOpts = append(engineOpts, engine.WithRecorder(led))
				}
			} else if os.Getenv(envLedger) != "" && !ledgers.chosen(cmd.Flags()) {
				// Run beside a server (kubectl exec), whose environment
				// names its ledger: say that this answer is not in it.
				fmt.Fprintf(cmd.ErrOrStderr(), "geoscope: not recorded: decide records only when --ledger, --data-dir or --ledger-key-file is given (%s alone does not make it)\n", envLedger)
			}
			eng := engine.New(engineOpts...)
			eng.SetPolicy(snap)
			eng.SetGeo(db)
			// The same deadline a server gives each evaluation: a policy
			// that does not finish is an error, not a hang.
			ctx, cancel := context.WithTimeout(cmd.Context(), evalTimeout)
			defer cancel()
			d, err := eng.Decide(ctx, req)
			if errors.Is(err, policy.ErrTimeout) {
				// OPA's own words name the built-in it was in, not the
				// deadline or the flag that sets it.
				return fmt.Errorf("%w (the deadline is --eval-timeout %s; a server gives each evaluation its --eval-timeout, %s by default, and answers 503 eval_timeout beyond it)",
					err, evalTimeout, server.DefaultEvalTimeout)
			}
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(d)
		},
	}
	f := cmd.Flags()
	f.StringVar(&inputPath, "input", "", "read the request from `FILE` (default: stdin)")
	f.StringVar(&geoPath, "geoip-db", "", "GeoIP2/GeoLite2 Country or City database `FILE` (default: embedded DB-IP Country Lite)")
	f.StringArrayVar(&bundles, "bundle", nil, "load the bundle at `PATH` (directory or .tar.gz); repeatable")
	registerPhoneFlag(f, &phones)
	f.StringVar(&at, "at", "", "decide as of `TIME` (RFC 3339, or YYYY-MM-DD for the start of that UTC day) instead of now: the orders in force then (not with a ledger)")
	f.BoolVar(&showPrint, "show-print", false, "write the output of the policy's print() calls to stderr")
	f.DurationVar(&evalTimeout, "eval-timeout", server.DefaultEvalTimeout, "deadline for the evaluation")
	// The server's limits, so that what decide takes a server takes too,
	// and a request piped in from elsewhere cannot take the machine's
	// memory (a decision takes many times its request's size).
	f.Int64Var(&maxBody, "max-body", server.DefaultMaxBody, "largest request in `BYTES`, as serve's --max-body")
	f.IntVar(&maxPeople, "max-participants", server.DefaultMaxParticipants, "most participants in the request, as serve's --max-participants")
	keys.register(f, false)
	ledgers.register(f)
	ledgers.registerReplica(f)
	return cmd
}

// maxExtensionProblems bounds the extension problems decide writes, and
// maxProblemText each one (a policy of one's own may define
// extension_problems with any text): an extension rule that goes wrong
// for every participant of a large roster has a problem each, and the
// first ones say what is wrong.
const (
	maxExtensionProblems = 20
	maxProblemText       = 1024
)

func readInput(stdin io.Reader, path string, maxBody int64) ([]byte, error) {
	r, name := stdin, "stdin"
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errReadInput, err)
		}
		defer f.Close()
		r, name = f, path
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errReadInput, err)
	}
	if int64(len(raw)) > maxBody {
		return nil, fmt.Errorf("%w: %s: more than --max-body %d bytes; raise --max-body to decide it", errReadInput, name, maxBody)
	}
	return raw, nil
}
