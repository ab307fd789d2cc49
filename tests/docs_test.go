package tests

// What the documents name, the code has: every geoscope command line they
// write runs a command the binary has with flags that command takes, and
// every test, benchmark or fuzz target they cite by name, and every metric,
// exists. Each of these was found stale once (a flag renamed, a test
// renamed with the code it tests), which no reader can tell from the
// text.

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docFiles are the documents a reader follows: the README, docs/ and the
// worked extensions' READMEs, relative to the module root.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"README.md"}
	for _, pattern := range []string{"docs/*.md", "docs/extensions/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			rel, _ := filepath.Rel(root, p)
			names = append(names, rel)
		}
	}
	docs := map[string]string{}
	for _, name := range names {
		raw, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		docs[name] = string(raw)
	}
	return docs
}

var (
	fencedBlock = regexp.MustCompile("(?ms)^```([a-z]*)\n(.*?)^```")
	inlineCode  = regexp.MustCompile("`([^`]+)`")
	// An invocation in a command line: geoscope, or go run of it, where
	// a shell command begins (not an image named geoscope in podman's).
	invocation = regexp.MustCompile(`(?:^|[|;&(])\s*(?:geoscope|go run \./cmd/geoscope)\s+`)
	helpFlag   = regexp.MustCompile(`(?m)^\s+(?:-[a-zA-Z], )?(--[a-z0-9-]+)`)
)

// commandLines returns what the document writes as geoscope command
// lines: inline code that begins with the command, and the lines of shell
// blocks (continuations joined) that run it.
func commandLines(doc string) []string {
	var lines []string
	for _, b := range fencedBlock.FindAllStringSubmatch(doc, -1) {
		if b[1] != "sh" && b[1] != "bash" {
			continue
		}
		for _, line := range strings.Split(strings.ReplaceAll(b[2], "\\\n", " "), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			if invocation.MatchString(line) {
				lines = append(lines, line)
			}
		}
	}
	prose := fencedBlock.ReplaceAllString(doc, "")
	for _, m := range inlineCode.FindAllStringSubmatch(prose, -1) {
		code := strings.Join(strings.Fields(m[1]), " ")
		if strings.HasPrefix(code, "geoscope ") || strings.HasPrefix(code, "go run ./cmd/geoscope ") {
			lines = append(lines, code)
		}
	}
	return lines
}

// cliCommands reads the binary's commands and the flags each takes from
// its help, as "ledger verify" → {"--head", ...}; a command with
// subcommands maps to nil.
func cliCommands(t *testing.T) map[string][]string {
	t.Helper()
	commands := map[string][]string{}
	var walk func(path []string)
	walk = func(path []string) {
		res := runCLI(t, nil, append(slices.Clone(path), "--help")...)
		if res.code != 0 {
			t.Fatalf("geoscope %s --help: %v", strings.Join(path, " "), res)
		}
		if _, list, ok := strings.Cut(res.stdout, "Available Commands:\n"); ok {
			list, _, _ = strings.Cut(list, "\n\n")
			for _, line := range strings.Split(list, "\n") {
				name := strings.Fields(line)[0]
				if name != "help" && name != "completion" {
					walk(append(slices.Clone(path), name))
				}
			}
			if len(path) > 0 {
				commands[strings.Join(path, " ")] = nil
			}
			return
		}
		var flags []string
		for _, m := range helpFlag.FindAllStringSubmatch(res.stdout, -1) {
			flags = append(flags, m[1])
		}
		commands[strings.Join(path, " ")] = flags
	}
	walk(nil)
	return commands
}

func TestDocsCommandLinesNameRealCommandsAndFlags(t *testing.T) {
	commands := cliCommands(t)
	lines := 0
	for name, doc := range docFiles(t) {
		for _, line := range commandLines(doc) {
			for _, loc := range invocation.FindAllStringIndex(line, -1) {
				lines++
				args := strings.Fields(line[loc[1]:])
				// The command line ends where the shell or the prose takes over.
				for i, a := range args {
					if strings.ContainsAny(a[:1], "|;&>)#") {
						args = args[:i]
						break
					}
				}
				if len(args) == 0 || strings.HasPrefix(args[0], "-") || args[0] == "..." {
					continue // the root's own flags (--version), or a placeholder
				}
				cmd := args[0]
				flags, ok := commands[cmd]
				if !ok {
					t.Errorf("%s: %q runs geoscope %s, which is no command", name, line, cmd)
					continue
				}
				rest := args[1:]
				if flags == nil { // a group: ledger, geoip
					if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
						continue
					}
					cmd += " " + rest[0]
					if flags, ok = commands[cmd]; !ok {
						t.Errorf("%s: %q runs geoscope %s, which is no command", name, line, cmd)
						continue
					}
					rest = rest[1:]
				}
				for _, a := range rest {
					flag, _, _ := strings.Cut(a, "=")
					if strings.HasPrefix(flag, "--") && !slices.Contains(flags, flag) {
						t.Errorf("%s: %q gives geoscope %s the flag %s, which it does not take", name, line, cmd, flag)
					}
				}
			}
		}
	}
	if lines < 20 {
		t.Fatalf("only %d geoscope command lines found in the documents: the test no longer reads them", lines)
	}
}

// TestHelpFlagsNameTheirCommandsFlags: a flag's description in a command's
// --help names only flags of that command. The descriptions are shared
// between commands (serve and decide register the same bundle flags), and
// one written for serve told decide's reader of a flag decide does not
// take. A command's long text may name another command's flags; its
// Flags section speaks of its own.
func TestHelpFlagsNameTheirCommandsFlags(t *testing.T) {
	mention := regexp.MustCompile(`--[a-z][a-z0-9-]+`)
	checked := 0
	for cmd, flags := range cliCommands(t) {
		if flags == nil {
			continue
		}
		res := runCLI(t, nil, append(strings.Fields(cmd), "--help")...)
		_, section, ok := strings.Cut(res.stdout, "\nFlags:\n")
		if !ok {
			t.Errorf("geoscope %s --help has no Flags section", cmd)
			continue
		}
		for _, line := range strings.Split(section, "\n") {
			line = strings.TrimSpace(line)
			for _, flag := range mention.FindAllString(line, -1) {
				if !slices.Contains(flags, flag) {
					t.Errorf("geoscope %s --help: %q names %s, which geoscope %s does not take", cmd, line, flag, cmd)
				}
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("only %d flag lines read: the test no longer finds them", checked)
	}
}

// TestDocsCiteRealTests: a test, benchmark or fuzz target the documents
// name (to run, or as the evidence of what they say) is defined in the
// module.
func TestDocsCiteRealTests(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	def := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)[A-Z]\w*)\(`)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range def.FindAllStringSubmatch(string(raw), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile(`\b((?:Test|Benchmark|Fuzz)[A-Z]\w*)`)
	for name, doc := range docFiles(t) {
		for _, m := range cited.FindAllStringSubmatch(doc, -1) {
			if !defined[m[1]] {
				t.Errorf("%s names %s, which no _test.go defines", name, m[1])
			}
		}
	}
}

// TestDocsNameRealMetrics: a metric the documents (or the alerting rules'
// texts) name is one the server registers. The families a running server
// exposes are each in docs/operations.md's table (TestMetricsUnderLoad).
func TestDocsNameRealMetrics(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	literal := regexp.MustCompile(`"(geoscope_[a-z0-9_]+)"`)
	err = filepath.WalkDir(filepath.Join(root, "engine"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllStringSubmatch(string(raw), -1) {
			registered[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A metric name, not a decision-log timer (timer_geoscope_guard_ns)
	// nor a prefix standing for a family of names (geoscope_ledger_*).
	named := regexp.MustCompile(`geoscope_[a-z0-9_]*[a-z0-9]`)
	isNamePart := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' }
	docs := docFiles(t)
	if raw, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "alerts.yaml")); err == nil {
		docs["deploy/prometheus/alerts.yaml"] = string(raw)
	} else {
		t.Fatal(err)
	}
	for name, doc := range docs {
		for _, loc := range named.FindAllStringIndex(doc, -1) {
			if loc[0] > 0 && isNamePart(doc[loc[0]-1]) || loc[1] < len(doc) && (isNamePart(doc[loc[1]]) || doc[loc[1]] == '*') {
				continue
			}
			if metric := doc[loc[0]:loc[1]]; !registered[familyOf(metric)] {
				t.Errorf("%s names the metric %s, which the server does not register", name, metric)
			}
		}
	}
}
