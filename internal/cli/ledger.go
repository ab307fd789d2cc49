package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/internal/buildinfo"
	"github.com/geoscope/geoscope/internal/patherr"
)

// ledgerFlags select the ledger of serve, decide, report, ledger export
// and ledger verify.
type ledgerFlags struct {
	url, dataDir, keyFile string
	fromEnv               bool   // url is GEOSCOPE_LEDGER's
	dataDirFromEnv        bool   // dataDir is GEOSCOPE_DATA_DIR's
	replica               string // serve only: registerReplica
	flags                 *pflag.FlagSet
}

// ledgerOff disables the ledger (benchmarks, throwaway runs).
const ledgerOff = "off"

// envLedger supplies --ledger when the flag is not given, so that a
// PostgreSQL URL holding a password can come from a secret without
// appearing in the command line. It is not shown as the flag's default.
const envLedger = "GEOSCOPE_LEDGER"

// envDataDir supplies --data-dir's default (the container image sets it
// to /data).
const envDataDir = "GEOSCOPE_DATA_DIR"

func (l *ledgerFlags) register(f *pflag.FlagSet) {
	l.flags = f
	// A blank value shows the built-in default in --help; resolve refuses
	// it before any ledger is opened.
	dataDir := os.Getenv(envDataDir)
	if strings.TrimSpace(dataDir) == "" {
		dataDir = ledger.DefaultDataDir
	}
	f.StringVar(&l.url, "ledger", "sqlite", "ledger backend: sqlite (in --data-dir), a postgres:// URL, or off (no durable record: for benchmarks only) (env "+envLedger+")")
	f.StringVar(&l.dataDir, "data-dir", dataDir, "`DIR` for the SQLite ledger and the generated ledger key (env "+envDataDir+")")
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
//
// GEOSCOPE_DATA_DIR is held alike when --data-dir was not given: read as
// unset, a blank value meant a new ledger, under a new key, in
// ./geoscope-data of whatever directory the process started in, apart
// from the ledger the variable was meant to name.
func (l *ledgerFlags) resolve() error {
	if l.flags == nil {
		return nil
	}
	if !l.flags.Changed("data-dir") {
		if v, set := os.LookupEnv(envDataDir); set {
			switch {
			case strings.TrimSpace(v) == "":
				return usageError{fmt.Errorf("%s is set but empty: give the data directory, or unset it for the default (%s)", envDataDir, ledger.DefaultDataDir)}
			case strings.TrimSpace(v) != v:
				return usageError{fmt.Errorf("%s begins or ends with white space: remove it", envDataDir)}
			}
			l.dataDirFromEnv = true
		}
	}
	if l.flags.Changed("ledger") {
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
	return l.openRead(ctx, log, false)
}

// openWithKey opens an existing ledger for reading with its key (checked
// against the ledger), so that the pseudonyms of ids can be computed.
func (l *ledgerFlags) openWithKey(ctx context.Context, log *slog.Logger) (*ledger.Ledger, error) {
	return l.openRead(ctx, log, true)
}

// openToMatch opens an existing ledger for reading with its key when one
// is at hand, --ledger-key-file or a SQLite data directory's ledger.key,
// and without one otherwise: a previewed order's id, recorded as its
// pseudonym, is then matched wherever the key can be found, as ledger
// statements finds it.
func (l *ledgerFlags) openToMatch(ctx context.Context, log *slog.Logger) (*ledger.Ledger, error) {
	if err := l.resolve(); err != nil {
		return nil, err
	}
	inDataDir := false
	if path, ok := (ledger.Config{URL: l.url, DataDir: l.dataDir}).KeyInDataDir(); ok && l.keyFile == "" {
		_, err := os.Stat(path)
		inDataDir = err == nil
	}
	return l.openRead(ctx, log, inDataDir)
}

func (l *ledgerFlags) openRead(ctx context.Context, log *slog.Logger, pseudonyms bool) (*ledger.Ledger, error) {
	if err := l.resolve(); err != nil {
		return nil, err
	}
	if l.url == ledgerOff {
		return nil, usageError{errors.New("--ledger off: there is no ledger to read")}
	}
	led, err := ledger.Open(ctx, ledger.Config{URL: l.url, DataDir: l.dataDir, KeyFile: l.keyFile, ReadOnly: true, Pseudonyms: pseudonyms, Logger: log})
	return led, l.named(err)
}

// named says, of a configuration error about --ledger or --data-dir, when
// the value came from GEOSCOPE_LEDGER or GEOSCOPE_DATA_DIR: the command
// line the operator reads has no such flag on it (the image sets
// GEOSCOPE_DATA_DIR).
func (l *ledgerFlags) named(err error) error {
	if err == nil || !errors.Is(err, ledger.ErrConfig) {
		return err
	}
	if l.dataDirFromEnv && strings.Contains(err.Error(), "--data-dir") {
		err = fmt.Errorf("%s (in place of --data-dir): %w", envDataDir, err)
	}
	if l.fromEnv {
		err = fmt.Errorf("%s (in place of --ledger): %w", envLedger, err)
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
	led, err := ledger.Open(ctx, l.config(log))
	return led, l.named(err)
}

// check makes the checks of the recording ledger's settings that create
// nothing (GEOSCOPE_LEDGER and GEOSCOPE_DATA_DIR, then
// ledger.Config.Validate), which open makes again: serve makes them
// before it binds its address.
func (l *ledgerFlags) check() error {
	if err := l.resolve(); err != nil {
		return err
	}
	if l.url == ledgerOff {
		return nil
	}
	return l.named(l.config(nil).Validate())
}

// config is the ledger open opens.
func (l *ledgerFlags) config(log *slog.Logger) ledger.Config {
	return ledger.Config{URL: l.url, DataDir: l.dataDir, KeyFile: l.keyFile, EngineVersion: buildinfo.Version(), Replica: l.replica, Logger: log}
}

func ledgerCommand() *cobra.Command {
	cmd := commandGroup("ledger", "Read the enforcement ledger")
	var (
		flags        ledgerFlags
		since, until string
		format       string
		order, auth  string
		counts       bool
	)
	export := &cobra.Command{
		Use:   "export [--since T] [--until T] [--order ID] [--authority ID] [--counts] [--format jsonl]",
		Short: "Write ledger entries, oldest first, one JSON object per line (for auditors)",
		Long: `Export writes the ledger's entries, oldest first, one JSON object per
line: each entry's text exactly as stored, with its place in the hash
chain appended as its last two members, "chain_seq" and "chain_link" (an
entry not linked yet has neither). The entry's text is the line with
that ending replaced by "}": anyone can recompute the links from it, and
"geoscope ledger verify --export FILE --head LINK" checks a whole export
(no --since, --until, --order or --authority) against the ledger head a
report printed, without the database.

With --counts it writes the aggregate counts instead, one JSON object per
UTC day, kind, meeting and orders in force: the plain allowed admissions
(kind "admission") and the decisions with nothing to do (kind
"decision"), which are counted rather than recorded one by one, and which
the transparency report adds to its figures. The days are those from the
day of --since up to, not including, the day of --until, as the report
takes them. The counts are not chained.

Exit status: 0 with the export, 2 on a bad flag, 1 when the ledger cannot
be read.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "jsonl" {
				return usageError{fmt.Errorf("--format %q: only jsonl is supported", format)}
			}
			var q ledger.Query
			var err error
			if q.Since, q.Until, err = periodFlags(since, until); err != nil {
				return err
			}
			if counts && auth != "" {
				return usageError{errors.New("--authority with --counts: the aggregate counts name the orders in force, not their authorities; give --order")}
			}
			q.Order, q.Authority = order, auth
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			open := flags.openReader
			if order != "" || auth != "" {
				open = flags.openToMatch
			}
			l, err := open(cmd.Context(), log)
			if err != nil {
				return err
			}
			defer l.Close()
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			if counts {
				rows, err := l.Counts(cmd.Context(), q.Since, q.Until)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(out)
				for _, r := range rows {
					if order != "" && !slices.Contains(strings.Split(r.OrderIDs, ","), order) {
						continue
					}
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return out.Flush()
			}
			if err := l.ScanStored(cmd.Context(), q, func(s *ledger.Stored) error {
				_, err := out.Write(ledger.ExportLine(s))
				return err
			}); err != nil {
				return err
			}
			return out.Flush()
		},
	}
	f := export.Flags()
	flags.register(f)
	f.StringVar(&since, "since", "", "entries at or after `T` (RFC 3339 or YYYY-MM-DD)")
	f.StringVar(&until, "until", "", "entries before `T` (RFC 3339 or YYYY-MM-DD)")
	f.StringVar(&order, "order", "", "only entries that evaluated this order id, or that it targeted while not in force (a previewed order's id, recorded as its pseudonym, is matched with the ledger's key: --ledger-key-file, or ledger.key in --data-dir)")
	f.StringVar(&auth, "authority", "", "only entries that evaluated an order of this authority, or that one targeted while not in force (one only a preview named, recorded as its pseudonym, is matched with the ledger's key: --ledger-key-file, or ledger.key in --data-dir)")
	f.BoolVar(&counts, "counts", false, "write the aggregate counts per day (plain allowed admissions, decisions with nothing to do) instead of the entries")
	f.StringVar(&format, "format", "jsonl", "output format: jsonl")
	cmd.AddCommand(export, verifyCommand(), statementsCommand())
	return cmd
}

// statementsCommand is `ledger statements`: the statements of reasons for
// the actions decided on one person, found by the pseudonym of the id the
// operator holds.
func statementsCommand() *cobra.Command {
	var (
		flags                ledgerFlags
		participant, account onceFlag
		since, until         string
	)
	cmd := &cobra.Command{
		Use:   "statements (--participant ID | --account ID) [--since T] [--until T]",
		Short: "Write the statements of reasons for the actions decided on one participant or account",
		Long: `Statements finds the recorded decisions that acted on one person, and
writes, for each, the statement of reasons of every action on them (and
of no one else's): one JSON object per line, oldest first, with the
decision's id, time, meeting and request, and its statements, as
GET /v1/ledger/{decision_id} gives them. A request its client sent again
(the same "request") was recorded, and is listed, each time; the meeting
platform acted on one answer.

The ledger holds keyed pseudonyms, not ids: the id given is turned into
its pseudonym with the ledger's key (--ledger-key-file, or ledger.key in
--data-dir), which is checked against the ledger first. --participant
finds a participant removed or denied admission; --account an account
suspended, or a host removed or denied (actions on a host name the host's
account). Neither id is written anywhere; one no meeting server could
send (a control character, such as the carriage return of a pasted
line, invalid UTF-8, more than 256 bytes) is refused, as it was recorded
on no one.

Exit status: 0 (with nothing on stdout when no recorded decision acted on
the person), 2 on a bad flag or a key that is not the ledger's, 1 when
the ledger cannot be read.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (participant.value == "") == (account.value == "") {
				return usageError{errors.New("give the person's id with --participant or --account (one of them)")}
			}
			// An id no request can carry was recorded on no one: said,
			// rather than answered with nothing as for a person nothing
			// was decided on (a pasted id that kept a carriage return).
			// The id is not repeated.
			for _, f := range []struct {
				name string
				id   *onceFlag
			}{{"participant", &participant}, {"account", &account}} {
				if why := input.IDProblem(f.id.value); f.id.value != "" && why != "" {
					return usageError{fmt.Errorf("--%s %s: it is not an id a meeting server can send, so no decision acted on it (the id is not shown)", f.name, why)}
				}
			}
			var q ledger.Query
			var err error
			if q.Since, q.Until, err = periodFlags(since, until); err != nil {
				return err
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			l, err := flags.openWithKey(cmd.Context(), log)
			if err != nil {
				return err
			}
			defer l.Close()
			subject := l.Pseudonymizer().Participant(participant.value)
			if account.value != "" {
				subject = l.Pseudonymizer().Account(account.value)
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			enc := json.NewEncoder(out)
			if err := l.Scan(cmd.Context(), q, func(e *ledger.Entry) error {
				var mine []ledger.Statement
				for _, st := range e.Statements() {
					if st.Action.Subject == subject {
						mine = append(mine, st)
					}
				}
				if len(mine) == 0 {
					return nil
				}
				return enc.Encode(struct {
					DecisionID string             `json:"decision_id"`
					Time       time.Time          `json:"time"`
					Kind       string             `json:"kind"`
					MeetingID  string             `json:"meeting_id"`
					Request    string             `json:"request,omitempty"`
					Statements []ledger.Statement `json:"statements"`
				}{e.DecisionID, e.Time, e.Kind, e.MeetingID, e.Request, mine})
			}); err != nil {
				return err
			}
			return out.Flush()
		},
	}
	f := cmd.Flags()
	flags.register(f)
	f.Var(&participant, "participant", "the participant's `ID`, as the meeting server sent it")
	f.Var(&account, "account", "the account's `ID`, as the meeting server sent it")
	f.StringVar(&since, "since", "", "decisions at or after `T` (RFC 3339 or YYYY-MM-DD)")
	f.StringVar(&until, "until", "", "decisions before `T` (RFC 3339 or YYYY-MM-DD)")
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
		exportFlag   onceFlag
	)
	cmd := &cobra.Command{
		Use:   "verify [--head LINK]... [--since T --until T] [--export FILE] [--format text|json]",
		Short: "Check the ledger's hash chain, and that it still holds the heads reports printed",
		Long: `Reads every entry in chain order and checks its link, the numbering, and
that the columns stored beside each entry, and the index of the orders it
cites (which reports read), agree with its text; an entry
still without a link ten minutes after it was decided is reported too.
Each --head is a link a transparency report printed (its "ledger head"):
it must be some entry's in an unbroken chain, which shows that nothing the
report counted was altered or removed since. An entry chained after a
head and decided more than ten minutes before the head's own entry is
reported: it was added to the ledger's past since (or a server's clock
was that far behind: see docs/operations.md). With the
report's period (--since, --until, as the report's note prints them;
with one --head only), an entry decided in the period and chained after
the head is reported too: it was added to the period since. Without a
head, a ledger whose last entries were removed, or rewritten whole,
links and all, still verifies: keep the heads of published reports.

With --export FILE it checks a file "geoscope ledger export" wrote (- for
standard input) instead of the ledger, with the same checks of the chain,
the heads and the period, and without the database: an auditor given
the export and a published report checks that the one holds what the
other counted. Only a whole export (without --since, --until, --order or
--authority) can be checked: the entries a partial one leaves out are
reported missing. A line longer than 1 GiB and 1 KiB (1073742848 bytes),
more than any entry a ledger stores, stops the check (exit 3) naming the
line, read no further: it is not an export geoscope wrote.

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
			var (
				v      *ledger.Verification
				unseen int
			)
			if exportPath := exportFlag.value; exportPath != "" {
				if flags.chosen(cmd.Flags()) {
					return usageError{errors.New("--export checks a file, not a ledger: leave out --ledger, --data-dir and --ledger-key-file")}
				}
				var in io.Reader = cmd.InOrStdin()
				if exportPath != "-" {
					file, ferr := os.Open(exportPath)
					if ferr != nil {
						return usageError{fmt.Errorf("--export: %v", patherr.Cause(ferr))}
					}
					defer file.Close()
					// A directory opens, and fails at the first read as
					// if the ledger could not be read: it is the flag's
					// mistake.
					if st, serr := file.Stat(); serr == nil && st.IsDir() {
						return usageError{fmt.Errorf("--export %s: is a directory; give the file geoscope ledger export wrote", exportPath)}
					}
					in = file
				}
				if v, err = ledger.VerifyExport(in, opts); v == nil {
					if errors.Is(err, ledger.ErrConfig) {
						return usageError{fmt.Errorf("--export %s: %s", exportPath, strings.TrimPrefix(err.Error(), ledger.ErrConfig.Error()+": "))}
					}
					// A line past the bound (exit 3) or a read that
					// failed (1): the file is named, as the line is.
					return fmt.Errorf("--export %s: %w", exportPath, err)
				}
			} else {
				log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
				l, oerr := flags.openReader(cmd.Context(), log)
				if oerr != nil {
					return oerr
				}
				defer l.Close()
				if v, err = l.Verify(cmd.Context(), opts); v == nil {
					return err
				}
				unseen = l.Unseen()
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
				}{v, unseen}); werr != nil {
					return werr
				}
				return err
			}
			// Written as one, and checked: an answer that could not be
			// written is not "verified" (exit 0) to a script that kept
			// it, any more than in JSON.
			text := bufio.NewWriter(out)
			out = text
			if n := unseen; n > 0 {
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
			if werr := text.Flush(); werr != nil {
				return werr
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
	f.Var(&exportFlag, "export", "check the `FILE` geoscope ledger export wrote (- for stdin) instead of the ledger")
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
