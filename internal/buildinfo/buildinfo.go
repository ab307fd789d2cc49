// Package buildinfo tells which geoscope this binary is: its module
// version and the version-control revision it was built from, as the Go
// toolchain stamped them (runtime/debug.ReadBuildInfo). The same version
// string is printed by `geoscope version`, reported by /v1/status and
// written into every ledger entry, so an auditor can tie a recorded
// decision to the code that made it.
package buildinfo

import (
	"fmt"
	"io"
	"runtime/debug"
	"time"
)

// override replaces the version when set at link time, for packagers who
// build outside a checkout:
//
//	go build -ldflags "-X github.com/geoscope/geoscope/internal/buildinfo.override=v1.2.3"
var override string

// Info is what the binary knows about its own build.
type Info struct {
	// Module is the main module's path.
	Module string
	// ModuleVersion is the main module's version as the toolchain stamped
	// it: a tag (v1.2.3), a pseudo-version derived from the commit (Go
	// 1.24+, with "+dirty" for uncommitted changes), or "(devel)" when the
	// build had no version-control information.
	ModuleVersion string
	// Revision is the commit (vcs.revision), empty when not stamped
	// (-buildvcs=false, a build outside a checkout).
	Revision     string
	RevisionTime time.Time
	// Modified reports uncommitted changes in the checkout.
	Modified  bool
	GoVersion string
}

// Read returns this binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{ModuleVersion: "(devel)"}
	}
	return fromBuildInfo(bi)
}

// fromBuildInfo extracts Info from bi.
func fromBuildInfo(bi *debug.BuildInfo) Info {
	i := Info{Module: bi.Main.Path, ModuleVersion: bi.Main.Version, GoVersion: bi.GoVersion}
	if i.ModuleVersion == "" {
		i.ModuleVersion = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.RevisionTime, _ = time.Parse(time.RFC3339, s.Value)
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// Version is the one version string: the link-time override if any, else
// the stamped module version, else "(devel)" qualified by the revision
// ("(devel)+0123456789ab", "+dirty" for a modified checkout) so that even
// a build without a version still names its commit.
func (i Info) Version() string {
	if override != "" {
		return override
	}
	if i.ModuleVersion != "(devel)" {
		return i.ModuleVersion
	}
	if i.Revision == "" {
		return i.ModuleVersion
	}
	v := "(devel)+" + i.Revision[:min(12, len(i.Revision))]
	if i.Modified {
		v += ".dirty"
	}
	return v
}

// Version is Read().Version().
func Version() string { return Read().Version() }

// Write prints the build information, one "key: value" per line.
func (i Info) Write(w io.Writer) error {
	rev := i.Revision
	if rev == "" {
		rev = "unknown (built without version-control information)"
	} else if i.Modified {
		rev += " (modified)"
	}
	_, err := fmt.Fprintf(w, "Version: %s\nModule: %s %s\nRevision: %s\n", i.Version(), i.Module, i.ModuleVersion, rev)
	if err == nil && !i.RevisionTime.IsZero() {
		_, err = fmt.Fprintf(w, "Revision-Time: %s\n", i.RevisionTime.UTC().Format(time.RFC3339))
	}
	if err == nil {
		_, err = fmt.Fprintf(w, "Go-Version: %s\n", i.GoVersion)
	}
	return err
}
