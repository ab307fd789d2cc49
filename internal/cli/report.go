package cli

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/report"
	"github.com/geoscope/geoscope/internal/patherr"
)

func reportCommand() *cobra.Command {
	var (
		flags        ledgerFlags
		since, until string
		format, out  string
		minCount     int
	)
	cmd := &cobra.Command{
		Use:   "report [--since T] [--until T] [--format md|csv|json|html] [--out FILE] [--min-count N]",
		Short: "Write the transparency report on government demands, from the ledger",
		Long: `Report aggregates the enforcement ledger into the transparency report on
government demands: orders cited and received, demands and their outcomes
(granted as asked, narrowed to participants, refused) with the refusal
reasons, participant-level actions by type and located country, meeting
terminations and account suspensions, guard blocks, the GeoIP databases and
bundle revisions in use, and the number of users outside a jurisdiction
who were affected, computed from the action records. It identifies nobody;
counts from 1 to --min-count minus 1 are shown as "<5" (for 5).

The period is [--since, --until): RFC 3339 times or YYYY-MM-DD dates (UTC
midnight). --until is the first instant, or day, not included: the first
quarter of 2026 is --since 2026-01-01 --until 2026-04-01 (a registry
order's expires date, by contrast, includes its day). Without them it is
the year to date, today included.

Formats: md (Markdown), csv (one long table: section,authority,jurisdiction,
key,value), json, html (one self-contained page, no script). The report goes
to stdout, or to --out FILE (replaced atomically).

Exit status: 0 with a report, 2 on a bad flag (named in the message),
1 when the ledger cannot be read.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(report.Formats, format) {
				return usageError{fmt.Errorf("--format %q: want one of %s", format, strings.Join(report.Formats, ", "))}
			}
			if minCount < 1 {
				return usageError{fmt.Errorf("--min-count %d: want 1 or more (1 suppresses nothing)", minCount)}
			}
			var p report.Period
			var bad string
			var err error
			if p.Since, p.Until, bad, err = ledger.ParseBounds(since, until); err != nil {
				return usageError{fmt.Errorf("--%s: %w", bad, err)}
			}
			p = p.WithDefaults(time.Now())
			if !p.Since.Before(p.Until) {
				flag := "--until"
				if until == "" {
					flag = "--since"
				}
				return usageError{fmt.Errorf("%s: the period is empty: --since %s must be before --until %s", flag, p.Since.Format(time.RFC3339), p.Until.Format(time.RFC3339))}
			}
			if out != "" {
				if out, err = followOutLink(out); err != nil {
					return err
				}
				if err := checkOutFile(out); err != nil {
					return err
				}
				if err := outsideLedger(out, flags.dataDir, flags.keyFile); err != nil {
					return err
				}
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			l, err := flags.openReader(cmd.Context(), log)
			if err != nil {
				return err
			}
			defer l.Close()
			r, err := report.Build(cmd.Context(), l, p, report.Options{MinCount: minCount})
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := r.Render(&buf, format); err != nil {
				return err
			}
			if out == "" {
				_, err := cmd.OutOrStdout().Write(buf.Bytes())
				return err
			}
			return writeAtomic(out, buf.Bytes())
		},
	}
	f := cmd.Flags()
	flags.register(f)
	f.StringVar(&since, "since", "", "the period starts at `T` (RFC 3339 or YYYY-MM-DD; default: 1 January, UTC, of the year --until falls in, or of the current year)")
	f.StringVar(&until, "until", "", "the period ends before `T` (RFC 3339 or YYYY-MM-DD; default: the end of today, UTC)")
	f.StringVar(&format, "format", report.FormatMarkdown, "output format: "+strings.Join(report.Formats, ", "))
	f.StringVar(&out, "out", "", "write the report to `FILE` instead of stdout")
	f.IntVar(&minCount, "min-count", report.DefaultMinCount, "show counts from 1 to `N`-1 as \"<N\"")
	return cmd
}

// checkOutFile refuses an --out that cannot be replaced by a file: a
// directory (the temporary file would land beside it, and the rename
// fail), or a path inside a directory that does not exist.
func checkOutFile(path string) error {
	if strings.HasSuffix(path, "/") || strings.HasSuffix(path, string(filepath.Separator)) {
		return usageError{fmt.Errorf("--out %s: names a directory; give a file name", path)}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return usageError{fmt.Errorf("--out %s: is a directory; give a file name, e.g. %s", path, filepath.Join(path, "report"))}
	} else if err == nil && !fi.Mode().IsRegular() {
		// A device, a pipe or a socket (/dev/stdout) is not a file a
		// rename can replace: it would be replaced by one.
		return usageError{fmt.Errorf("--out %s: is not a regular file; leave out --out to write the report to standard output", path)}
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return usageError{fmt.Errorf("--out %s: the directory %s does not exist", path, filepath.Dir(path))}
	}
	return nil
}

// followOutLink is the file --out names: for a symbolic link, the file it
// points to, which is what a writer through the link would change. The
// report replaces its file atomically (a rename), which would otherwise
// replace the link itself and leave its target as it was. A link whose
// target does not exist, or a chain of links that never ends, is refused.
func followOutLink(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return path, nil
	}
	target, err := resolvedPath(path)
	if err != nil {
		return "", usageError{fmt.Errorf("--out %s: is a symbolic link that leads to no file (%v); give the path of the file to write", path, patherr.Cause(err))}
	}
	return target, nil
}

// outsideLedger refuses an --out inside the data directory, or naming the
// key file: the report would replace the ledger's database, its log or its
// key (a report is replaced atomically, whatever was there).
func outsideLedger(out, dataDir, keyFile string) error {
	dir, err := resolvedPath(filepath.Dir(out))
	if err != nil {
		return nil // checkOutFile has found the directory; nothing else to compare
	}
	if d, err := resolvedPath(dataDir); err == nil && (dir == d || strings.HasPrefix(dir, d+string(filepath.Separator))) {
		return usageError{fmt.Errorf("--out %s: is inside --data-dir %s, which holds the ledger and its key; write the report elsewhere", out, dataDir)}
	}
	if keyFile != "" {
		o, err1 := resolvedPath(out)
		k, err2 := resolvedPath(keyFile)
		if err1 == nil && err2 == nil && o == k {
			return usageError{fmt.Errorf("--out %s: is --ledger-key-file; write the report elsewhere", out)}
		}
	}
	return nil
}

// resolvedPath is path made absolute with its symbolic links resolved.
func resolvedPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// writeAtomic replaces path with data: a reader sees the old file or the
// whole new one.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return usageError{fmt.Errorf("--out %s: %w", path, patherr.Cause(err))}
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	return nil
}
