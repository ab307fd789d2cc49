package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/internal/buildinfo"
)

// ledgerFlags select the ledger of serve, decide, report, ledger export
// and ledger verify.
type ledgerFlags struct {
	url, dataDir, keyFile string
	fromEnv               bool   // url is GEOSCOPE_LEDGER's
	replica               string // serve only: registerReplica
	flags                 *pflag.FlagSet
}

// ledgerOff disables the ledger (benchmarks, throwaway runs).
const ledgerOff = "off"

// envLedger supplies --ledger when the flag is not given, so that a
// PostgreSQL URL holding a password can come from a secret without
// appearing in the command line. It is not shown as the flag's default.
const envLedger = "GEOSCOPE_LEDGER"

func (l *ledgerFlags) register(f *pflag.FlagSet) {
	l.flags = f
	dataDir := os.Getenv("GEOSCOPE_DATA_DIR")
	if dataDir == "" {
		dataDir = ledger.DefaultDataDir
	}
	f.StringVar(&l.url, "ledger", "sqlite", "ledger backend: sqlite (in --data-dir), a postgres:// URL, or off (no durable record: for benchmarks only) (env "+envLedger+")")
	f.StringVar(&l.dataDir, "data-dir", dataDir, "`DIR` for the SQLite ledger and the generated ledger key (env GEOSCOPE_DATA_DIR)")
	f.StringVar(&l.keyFile, "ledger-key-file", "", "pseudonymization key `FILE` (32+ bytes, raw or hex; default: generated into --data-dir; export and report check that it is the ledger's)")
}

// registerReplica adds --replica-id, for commands that record.
func (l *ledgerFlags) registerReplica(f *pflag.FlagSet) {
	f.StringVar(&l.replica, "replica-id", "", "`NAME` of this replica, recorded in every ledger entry (default: the host name, which is the pod name under Kubernetes)")
}

// resolve applies GEOSCOPE_LEDGER when --ledger was not given. Set but
// empty, or with spaces around it, it is refused rather than read as
// unset or passed on: a Secret whose key is empty (or was made from a
// file ending in a newline) must not quietly mean each replica's own
// SQLite ledger on its scratch volume, nor a database named "geoscope\n".
func (l *ledgerFlags) resolve() error {
	if l.flags == nil || l.flags.Changed("ledger") {
		return nil
	}
	v, set := os.LookupEnv(envLedger)
	switch {
	case !set:
		return nil
	case strings.TrimSpace(v) == "":
		return usageError{fmt.Errorf("%s is set but empty: give a ledger (sqlite, off or a postgres:// URL), or unset it for the default", envLedger)}
	case strings.TrimSpace(v) != v:
		return usageError{fmt.Errorf("%s begins or ends with white space (a newline from the file a Secret was made from?): remove it", envLedger)}
	}
	l.url, l.fromEnv = v, true
	return nil
}

// chosen reports whether a ledger flag was given on the command line (the
// GEOSCOPE_DATA_DIR default alone does not count).
func (l *ledgerFlags) chosen(f *pflag.FlagSet) bool {
	return f.Changed("ledger") || f.Changed("data-dir") || f.Changed("ledger-key-file")
}

// openReader opens an existing ledger for reading: it creates no file and
// no key.
func (l *ledgerFlags) openReader(ctx context.Context, log *slog.Logger) (*ledger.Ledger, error) {
	if err := l.resolve(); err != nil {
		return nil, err
	}
	if l.url == ledgerOff {
		return nil, usageError{errors.New("--ledger off: there is no ledger to read")}
	}
	led, err := ledger.Open(ctx, ledger.Config{URL: l.url, DataDir: l.dataDir, KeyFile: l.keyFile, ReadOnly: true, Logger: log})
	return led, l.named(err)
}

// named says, of a configuration error about --ledger, when the value came
// from GEOSCOPE_LEDGER: the command line the operator reads has no
// --ledger on it.
func (l *ledgerFlags) named(err error) error {
	if err != nil && l.fromEnv && errors.Is(err, ledger.ErrConfig) {
		return fmt.Errorf("%s (in place of --ledger): %w", envLedger, err)
	}
	return err
}

// open opens the ledger, or returns nil when it is off.
func (l *ledgerFlags) open(ctx context.Context, log *slog.Logger) (*ledger.Ledger, error) {
	if err := l.resolve(); err != nil {
		return nil, err
	}
	if l.url == ledgerOff {
		log.Warn("the ledger is off: decisions are answered without a durable record")
		return nil, nil
	}
	led, err := ledger.Open(ctx, ledger.Config{URL: l.url, DataDir: l.dataDir, KeyFile: l.keyFile, EngineVersion: buildinfo.Version(), Replica: l.replica, Logger: log})
	return led, l.named(err)
}

func ledgerCommand() *cobra.Command {
	cmd := commandGroup("ledger", "Read the enforcement ledger")
	var (
		flags        ledgerFlags
		since, until string
		format       string
		order, auth  string
	)
	export := &cobra.Command{
		Use:   "export [--since T] [--until T] [--order ID] [--authority ID] [--format jsonl]",
		Short: "Write ledger entries, oldest first, one JSON object per line (for auditors)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "jsonl" {
				return usageError{fmt.Errorf("--format %q: only jsonl is supported", format)}
			}
			var q ledger.Query
			var err error
			if q.Since, q.Until, err = periodFlags(since, until); err != nil {
				return err
			}
			q.Order, q.Authority = order, auth
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			l, err := flags.openReader(cmd.Context(), log)
			if err != nil {
				return err
			}
			defer l.Close()
			enc := json.NewEncoder(cmd.OutOrStdout())
			return l.Scan(cmd.Context(), q, func(e *ledger.Entry) error { return enc.Encode(e) })
		},
	}
	f := export.Flags()
	flags.register(f)
	f.StringVar(&since, "since", "", "entries at or after `T` (RFC 3339 or YYYY-MM-DD)")
	f.StringVar(&until, "until", "", "entries before `T` (RFC 3339 or YYYY-MM-DD)")
	f.StringVar(&order, "order", "", "only entries that evaluated this order id, or that it targeted while not in force (a previewed order's id, recorded as its pseudonym, is matched with --ledger-key-file)")
	f.StringVar(&auth, "authority", "", "only entries that evaluated an order of this authority, or that one targeted while not in force (one only a preview named, recorded as its pseudonym, is matched with --ledger-key-file)")
	f.StringVar(&format, "format", "jsonl", "output format: jsonl")
	cmd.AddCommand(export, verifyCommand())
	return cmd
}

// periodFlags parses --since and --until (either may be absent: zero),
// and refuses an empty period, naming the flag.
func periodFlags(since, until string) (s, u time.Time, err error) {
	s, u, bad, err := ledger.ParseBounds(since, until)
	if err != nil {
		return s, u, usageError{fmt.Errorf("--%s: %w", bad, err)}
	}
	if !s.IsZero() && !u.IsZero() && !s.Before(u) {
		return s, u, usageError{fmt.Errorf("--until: the period is empty: --since %s must be before --until %s", s.Format(time.RFC3339Nano), u.Format(time.RFC3339Nano))}
	}
	return s, u, nil
}

func verifyCommand() *cobra.Command {
	var (
		flags        ledgerFlags
		pins         []string
		since, until string
		format       string
	)
	cmd := &cobra.Command{
		Use:   "verify [--head LINK]... [--since T --until T] [--format text|json]",
		Short: "Check the ledger's hash chain, and that it still holds the heads reports printed",
		Long: `Reads every entry in chain order and checks its link, the numbering, and
that the columns stored beside each entry agree with its text; an entry
still without a link ten minutes after it was decided is reported too.
Each --head is a link a transparency report printed (its "ledger head"):
it must be some entry's in an unbroken chain, which shows that nothing the
report counted was altered or removed since. With the report's period
(--since, --until, as the report's note prints them; with one --head
only), an entry decided in the period and chained after the head is
reported too: it was added to the period since. Without a head, a ledger whose last entries were
removed, or rewritten whole, links and all, still verifies: keep the
heads of published reports.

Exit status: 0 verified, 3 it does not verify (the problems are listed),
1 the ledger could not be read, 2 a usage error or no chained ledger there.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return usageError{fmt.Errorf("--format %q: want text or json", format)}
			}
			var opts ledger.VerifyOptions
			var err error
			if opts.Since, opts.Until, err = periodFlags(since, until); err != nil {
				return err
			}
			if (since != "" || until != "") && len(pins) != 1 {
				return usageError{errors.New("--since and --until are the period of the report whose ledger head --head gives: give that one --head with them")}
			}
			for _, p := range pins {
				if !ledger.IsLink(p) {
					return usageError{fmt.Errorf("--head %q: want a chain link, 64 hexadecimal digits, as a report prints it", p)}
				}
			}
			opts.Pins = pins
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			l, err := flags.openReader(cmd.Context(), log)
			if err != nil {
				return err
			}
			defer l.Close()
			v, err := l.Verify(cmd.Context(), opts)
			if v == nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				// Unseen: entries in a stopped server's journal, not
				// checked (see the text output).
				if werr := enc.Encode(struct {
					*ledger.Verification
					Unseen int `json:"unseen_journal_entries,omitempty"`
				}{v, l.Unseen()}); werr != nil {
					return werr
				}
				return err
			}
			if n := l.Unseen(); n > 0 {
				fmt.Fprintf(out, "INCOMPLETE: %d recorded entries are still in a stopped server's journal, not in the database; they are not checked (the next geoscope serve on this directory copies them)\n", n)
			}
			if err != nil {
				fmt.Fprintf(out, "NOT VERIFIED: %d problem(s)", v.ProblemCount)
				if v.ProblemCount > len(v.Problems) {
					fmt.Fprintf(out, ", the first %d:", len(v.Problems))
				}
				fmt.Fprintln(out)
				for _, p := range v.Problems {
					fmt.Fprintln(out, "  -", p)
				}
			} else {
				fmt.Fprintln(out, "verified")
			}
			fmt.Fprintf(out, "entries chained: %d\n", v.Entries)
			if v.Head.Seq > 0 {
				fmt.Fprintf(out, "head: entry %d, link %s\n", v.Head.Seq, v.Head.Link)
			}
			for _, p := range v.Pinned {
				fmt.Fprintf(out, "pinned: entry %d, link %s\n", p.Seq, p.Link)
			}
			if v.Unlinked > 0 {
				fmt.Fprintf(out, "entries without a link yet: %d (recorded before the chain, or by an older replica; a running geoscope serve links them within seconds, and they are not covered until then)\n", v.Unlinked)
			}
			return err
		},
	}
	f := cmd.Flags()
	flags.register(f)
	f.StringArrayVar(&pins, "head", nil, "a `LINK` a report printed as its ledger head: it must be an entry's link (repeatable)")
	f.StringVar(&since, "since", "", "the start `T` of the period of the report that printed --head (RFC 3339 or YYYY-MM-DD)")
	f.StringVar(&until, "until", "", "the end `T` of that period, exclusive (RFC 3339 or YYYY-MM-DD)")
	f.StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// where names the opened ledger for a log line, without credentials: the
// data directory, or the PostgreSQL host, port and database (as pgconn
// reads them, so a socket directory or a host given as a parameter is
// named too), and where the setting came from.
func (l *ledgerFlags) where() []any {
	from := "--ledger"
	if l.fromEnv {
		from = envLedger
	}
	if l.url == "" || l.url == "sqlite" {
		return []any{"data_dir", l.dataDir, "from", from}
	}
	pc, err := pgconn.ParseConfig(l.url)
	if err != nil {
		return []any{"from", from}
	}
	return []any{"host", pc.Host, "port", pc.Port, "database", pc.Database, "from", from}
}

// replicaName is --replica-id, or the default the ledger records. OPA's
// plugins label this process's decision logs and status reports with it
// (their "id" label), so that a log service tells replicas apart.
func (l *ledgerFlags) replicaName() string {
	if l.replica != "" {
		return l.replica
	}
	return ledger.DefaultReplica()
}
