// Package cli implements the geoscope command line. It parses flags and
// wires the engine's stages together; all decisions are made in package
// engine.
package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/engine/server"
	"github.com/geoscope/geoscope/engine/sources"
	"github.com/geoscope/geoscope/engine/tracing"
	"github.com/geoscope/geoscope/internal/buildinfo"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1 // the decision could not be made (policy error, ...)
	exitBadInput = 2 // bad input, or unreadable bundles or GeoIP database
	// exitNotVerified: `ledger verify` read the ledger, and its chain does
	// not hold (1 would be a ledger that could not be read).
	exitNotVerified = 3
)

// usageError marks flag and argument mistakes.
type usageError struct{ error }

// usageArgs makes a cobra argument check report a usage error (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// noArgs refuses positional arguments for a command that takes none,
// saying so (cobra would call the argument an unknown command).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q: %s takes no arguments (see --help)", args[0], cmd.CommandPath())}
	}
	return nil
}

// commandGroup is a command that only holds subcommands. Without one it
// prints its help; with an argument that names none it is a usage error
// (cobra would print the help and succeed, so that a mistyped
// "ledger exprot > audit.jsonl" looked like an empty export).
func commandGroup(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// Main runs the CLI and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "geoscope",
		Short:         "Scoped enforcement of government demands against meetings",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Version(),
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return refuseEmptyValues(cmd) }
	root.AddCommand(decideCommand(), geoipCommand(), serveCommand(), ledgerCommand(), reportCommand(), probeCommand(), versionCommand())

	err := root.Execute()
	if err == nil {
		return exitOK
	}
	// cobra reports an unknown subcommand with a plain error.
	if strings.HasPrefix(err.Error(), "unknown command ") {
		err = usageError{err}
	}
	fmt.Fprintln(stderr, "geoscope:", err)
	return exitCode(err)
}

// refuseEmptyValues refuses a flag given with an empty value. Read as
// absent, --config "" served the embedded example registry, --ledger ""
// the default ledger, --tokens-file "" no authentication: an unset
// variable in a deployment's template must not quietly mean the default.
func refuseEmptyValues(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || !f.Changed {
			return
		}
		empty := false
		switch v := f.Value.(type) {
		case pflag.SliceValue:
			empty = slices.Contains(v.GetSlice(), "")
		default:
			empty = f.Value.Type() == "string" && f.Value.String() == ""
		}
		if once, ok := f.Value.(*onceFlag); ok && once.times > 1 {
			err = usageError{fmt.Errorf("--%s is given %d times: give it once (run the command once for each)", f.Name, once.times)}
			return
		}
		if empty {
			err = usageError{fmt.Errorf("--%s is empty: give a value, or leave the flag out for its default", f.Name)}
		}
	})
	return err
}

// onceFlag is a string flag that may be given once. pflag keeps the last
// of a string flag given twice, so that "statements --participant A
// --participant B" would answer for B alone, and say nothing of A: the
// second is refused (refuseEmptyValues), naming the flag and neither
// value, which may be a person's id.
type onceFlag struct {
	value string
	times int
}

func (o *onceFlag) String() string { return o.value }

func (o *onceFlag) Set(v string) error {
	o.value = v
	o.times++
	return nil
}

func (o *onceFlag) Type() string { return "string" }

func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.Is(err, ledger.ErrNotVerified):
		return exitNotVerified
	case errors.As(err, &ue),
		errors.Is(err, input.ErrInvalid), errors.Is(err, input.ErrTooLarge),
		errors.Is(err, policy.ErrBundle), errors.Is(err, policy.ErrRegistry), errors.Is(err, policy.ErrKey),
		errors.Is(err, geo.ErrUnreadable), errors.Is(err, geo.ErrWrongType),
		errors.Is(err, errReadInput), errors.Is(err, server.ErrConfig), errors.Is(err, sources.ErrConfig),
		errors.Is(err, ledger.ErrConfig), errors.Is(err, tracing.ErrConfig):
		return exitBadInput
	}
	return exitFailure
}

var errReadInput = errors.New("cannot read input")

// openGeo opens the database at path, or the embedded one when path is "".
func openGeo(path string) (*geo.DB, error) {
	if path == "" {
		return geo.Embedded()
	}
	return geo.Open(path)
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the revision this binary was built from",
		Long: `Version prints the module version and the version-control revision the Go
toolchain stamped into this binary. The first line's version is the one
GET /v1/status reports and every ledger entry records (engine_version).
Ledger-Schema is the ledger schema version this binary migrates a ledger
to: before an upgrade or a rollback, it tells which releases can share
a ledger (docs/operations.md, upgrades).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := buildinfo.Read().Write(cmd.OutOrStdout()); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Ledger-Schema: %d\n", ledger.SchemaVersion())
			return err
		},
	}
}
