package geotest_test

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/geoscope/geoscope/engine/geo/geotest"
)

func record(t *testing.T, r *maxminddb.Reader, addr string) (map[string]any, bool) {
	t.Helper()
	var rec map[string]any
	res := r.Lookup(netip.MustParseAddr(addr))
	if err := res.Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return rec, res.Found()
}

// TestBuildRecordShape: records carry exactly the fields the Entry sets.
func TestBuildRecordShape(t *testing.T) {
	b := geotest.Build(t, "GeoLite2-City", []geotest.Entry{
		{Network: "8.8.8.0/24", Country: "US"},
		{Network: "101.32.0.0/14", Country: "HK", Registered: "CN"},
		{Network: "45.112.0.0/16", Registered: "CN"},
		{Network: "104.16.0.0/13", Country: "US", Anycast: true},
		{Network: "2408:8000::/20", Country: "CN"},
	})
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if md := r.Metadata; md.DatabaseType != "GeoLite2-City" || md.IPVersion != 6 ||
		!md.BuildTime().Equal(geotest.BuildTime) {
		t.Errorf("metadata = %+v", md)
	}
	iso := func(cc string) map[string]any { return map[string]any{"iso_code": cc} }
	for addr, want := range map[string]map[string]any{
		"8.8.8.8":        {"country": iso("US")},
		"101.32.0.1":     {"country": iso("HK"), "registered_country": iso("CN")},
		"45.112.0.1":     {"registered_country": iso("CN")},
		"104.16.0.1":     {"country": iso("US"), "traits": map[string]any{"is_anycast": true}},
		"2408:8000::1":   {"country": iso("CN")},
		"::ffff:8.8.8.8": {"country": iso("US")}, // IPv4-mapped alias like MaxMind's
	} {
		got, found := record(t, r, addr)
		if !found || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v (found=%v), want %v", addr, got, found, want)
		}
	}
	if _, found := record(t, r, "9.9.9.9"); found {
		t.Error("9.9.9.9 is listed, want unlisted")
	}
}

func TestBuildASNShape(t *testing.T) {
	r, err := maxminddb.OpenBytes(geotest.Build(t, "GeoLite2-ASN", []geotest.Entry{{Network: "8.8.8.0/24", Country: "US"}}))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := record(t, r, "8.8.8.8")
	want := map[string]any{"autonomous_system_number": uint64(64496), "autonomous_system_organization": "geotest"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ASN record = %#v, want %#v", got, want)
	}
}

func TestStandard(t *testing.T) {
	path := geotest.Standard(t)
	r, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close() //nolint:errcheck // test
	if r.Metadata.DatabaseType != "GeoIP2-Country" {
		t.Errorf("type = %q", r.Metadata.DatabaseType)
	}
	if err := r.Verify(); err != nil {
		t.Errorf("Verify: %v", err)
	}
	n := 0
	for range r.Networks() {
		n++
	}
	if n != len(geotest.StandardEntries) {
		t.Errorf("%d networks, want one per entry (%d)", n, len(geotest.StandardEntries))
	}
	if filepath.Dir(path) == "" || !strings.HasSuffix(path, ".mmdb") {
		t.Errorf("path = %q", path)
	}
}

// The City database has every Country network with the same country, and
// subdivisions in the GeoIP2 City shape.
func TestStandardCity(t *testing.T) {
	r, err := maxminddb.Open(geotest.StandardCity(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close() //nolint:errcheck // test
	if r.Metadata.DatabaseType != geotest.StandardCityType {
		t.Errorf("type = %q", r.Metadata.DatabaseType)
	}
	if err := r.Verify(); err != nil {
		t.Errorf("Verify: %v", err)
	}
	for i, e := range geotest.StandardEntries {
		if c := geotest.StandardCityEntries[i]; c.Network != e.Network || c.Country != e.Country || c.Registered != e.Registered || c.Anycast != e.Anycast {
			t.Errorf("city entry %d = %+v, want the country entry %+v", i, c, e)
		}
	}
	sub := func(codes ...string) []any {
		out := make([]any, len(codes))
		for i, c := range codes {
			out[i] = map[string]any{"iso_code": c}
		}
		return out
	}
	iso := func(cc string) map[string]any { return map[string]any{"iso_code": cc} }
	for addr, want := range map[string]map[string]any{
		"81.2.69.1":   {"country": iso("GB"), "subdivisions": sub("ENG", "LND")},
		"91.200.1.1":  {"country": iso("UA"), "subdivisions": sub("43")},
		"91.203.1.1":  {"country": iso("UA")},
		"91.205.1.1":  {"subdivisions": sub("43")},
		"147.8.2.58":  {"country": iso("HK")},
		"36.110.0.10": {"country": iso("CN"), "subdivisions": sub("SH")},
	} {
		got, found := record(t, r, addr)
		if !found || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v (found=%v), want %v", addr, got, found, want)
		}
	}
}

func TestWriteFileNameIsSafe(t *testing.T) {
	path := geotest.WriteFile(t, "../DBIP-Location (compat=City)", geotest.StandardEntries[:1])
	if base := filepath.Base(path); base != "___DBIP-Location__compat_City_.mmdb" {
		t.Errorf("file name = %q", base)
	}
}

// fatalTB records Fatalf instead of failing the real test.
type fatalTB struct {
	*testing.T
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func fatalOf(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatalTB{T: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestBuildRejectsBadEntries(t *testing.T) {
	for _, tc := range []struct {
		entry geotest.Entry
		want  string
	}{
		{geotest.Entry{Network: "not-a-cidr", Country: "US"}, "entry 0"},
		{geotest.Entry{Network: "8.8.8.8/24", Country: "US"}, "host bits"},
		{geotest.Entry{Network: "10.0.0.0/8", Country: "US"}, "reserved"},
		{geotest.Entry{Network: "2001:db8::/32", Country: "US"}, "reserved"},
	} {
		entry, want := tc.entry, tc.want
		msg := fatalOf(t, func(tb testing.TB) { geotest.Build(tb, "GeoIP2-Country", []geotest.Entry{entry}) })
		if !strings.Contains(msg, want) {
			t.Errorf("Build(%+v) fatal = %q, want it to mention %q", entry, msg, want)
		}
	}
}
