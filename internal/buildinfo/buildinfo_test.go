package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	cases := []struct {
		name     string
		version  string
		settings []debug.BuildSetting
		want     string
	}{
		{"tag", "v1.4.0", settings("vcs.revision", rev), "v1.4.0"},
		{"pseudo-version from the commit", "v0.0.0-20260102150405-0123456789ab+dirty", settings("vcs.revision", rev, "vcs.modified", "true"), "v0.0.0-20260102150405-0123456789ab+dirty"},
		{"devel with revision", "(devel)", settings("vcs.revision", rev, "vcs.modified", "false"), "(devel)+0123456789ab"},
		{"devel modified", "(devel)", settings("vcs.revision", rev, "vcs.modified", "true"), "(devel)+0123456789ab.dirty"},
		{"devel without vcs", "(devel)", nil, "(devel)"},
		{"no version at all", "", nil, "(devel)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			i := fromBuildInfo(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/geoscope/geoscope", Version: tc.version}, Settings: tc.settings})
			if got := i.Version(); got != tc.want {
				t.Errorf("Version() = %q, want %q", got, tc.want)
			}
			var b strings.Builder
			if err := i.Write(&b); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(b.String(), "Version: "+tc.want+"\n") || !strings.Contains(b.String(), "Go-Version: go1.26.8\n") {
				t.Errorf("Write:\n%s", b.String())
			}
			if tc.settings != nil && !strings.Contains(b.String(), "Revision: "+rev) {
				t.Errorf("Write does not name the revision:\n%s", b.String())
			}
		})
	}
}

func TestOverride(t *testing.T) {
	defer func(o string) { override = o }(override)
	override = "v9.9.9-packaged"
	if got := fromBuildInfo(&debug.BuildInfo{Main: debug.Module{Version: "v1.0.0"}}).Version(); got != "v9.9.9-packaged" {
		t.Errorf("Version() = %q with a link-time override", got)
	}
}
