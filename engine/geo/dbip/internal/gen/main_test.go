package main

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/maxminddb-golang/v2"
)

const sourceEpoch = 1780345978 // 2026-06-01T20:32:58Z, like the real source

// writeSource writes a database in the @ip-location-db shape: no aliasing,
// reserved networks allowed, records {"country_code": CC} ("" = empty map).
// A trailing "+" on CC adds an extra field, making a record that differs in
// the source but not in the output.
func writeSource(t *testing.T, nets map[string]string) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "country ipvAll",
		BuildEpoch:              sourceEpoch,
		DisableIPv4Aliasing:     true,
		IncludeReservedNetworks: true,
		RecordSize:              24,
	})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, cc := range nets {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		rec := mmdbtype.Map{}
		if code, extra := strings.CutSuffix(cc, "+"); extra {
			rec["country_code"] = mmdbtype.String(code)
			rec["extra"] = mmdbtype.String("ignored by gen")
		} else if cc != "" {
			rec["country_code"] = mmdbtype.String(cc)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "source.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

var sampleSource = map[string]string{
	"1.0.0.0/24":     "AU",
	"1.0.1.0/24":     "AU+", // adjacent, same country, other record: must merge
	"1.0.2.0/24":     "CN",
	"8.8.8.0/24":     "US",
	"147.8.0.0/16":   "HK",
	"2408:8000::/20": "CN",
	"2a00:1450::/32": "DE",
	"5.5.5.0/24":     "",   // record without a country: stays unlisted
	"2001:2::/48":    "JP", // reserved (IETF assignments): dropped
	"2002::/16":      "US", // aliased to IPv4 in the output: dropped
}

func convertSample(t *testing.T) (*maxminddb.Reader, []byte, stats) {
	t.Helper()
	src, err := maxminddb.Open(writeSource(t, sampleSource))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	b, st, err := convert(src)
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	return src, b, st
}

func TestConvert(t *testing.T) {
	src, b, st := convertSample(t)
	want := stats{networks: 10, inserted: 7, noCountry: 1, reserved: 1, aliased: 1, countries: 5}
	if st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	if err := check(src, b); err != nil {
		t.Errorf("check: %v", err)
	}

	out, err := maxminddb.OpenBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	md := out.Metadata
	if md.DatabaseType != "DBIP-Country-Lite" || md.BuildEpoch != sourceEpoch || md.IPVersion != 6 || md.RecordSize != 24 {
		t.Errorf("metadata = %+v", md)
	}
	if d := md.Description["en"]; !strings.Contains(d, "DB-IP") || !strings.Contains(d, "CC BY 4.0") {
		t.Errorf("description = %q", d)
	}

	lookup := func(addr string) (string, bool) {
		var rec struct {
			Country struct {
				ISOCode string `maxminddb:"iso_code"`
			} `maxminddb:"country"`
		}
		r := out.Lookup(netip.MustParseAddr(addr))
		if err := r.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		return rec.Country.ISOCode, r.Found()
	}
	for addr, cc := range map[string]string{
		"1.0.0.1": "AU", "1.0.1.255": "AU", "1.0.2.3": "CN", "8.8.8.8": "US",
		"147.8.2.58": "HK", "2408:8000::1": "CN", "2a00:1450::1": "DE",
		"::ffff:8.8.8.8":    "US", // IPv4-mapped alias
		"2002:0808:0808::1": "US", // 6to4 alias reaches the IPv4 tree
	} {
		if got, _ := lookup(addr); got != cc {
			t.Errorf("%s: %q, want %q", addr, got, cc)
		}
	}
	for _, addr := range []string{"5.5.5.5", "9.9.9.9", "2001:2::1", "2002:0909:0909::1"} {
		if got, found := lookup(addr); found || got != "" {
			t.Errorf("%s: found=%v %q, want no record", addr, found, got)
		}
	}

	// Adjacent identical networks merge into one.
	var nets []string
	for res := range out.Networks() {
		nets = append(nets, res.Prefix().String())
	}
	if !strings.Contains(strings.Join(nets, " "), "1.0.0.0/23") {
		t.Errorf("1.0.0.0/24 and 1.0.1.0/24 (both AU) not merged; networks: %v", nets)
	}
}

func TestConvertRejectsBadCountryCode(t *testing.T) {
	for _, cc := range []string{"usa", "us", "U1"} {
		src, err := maxminddb.Open(writeSource(t, map[string]string{"8.8.8.0/24": cc}))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := convert(src); err == nil || !strings.Contains(err.Error(), "country_code") {
			t.Errorf("country_code %q: err = %v, want a country_code error", cc, err)
		}
		_ = src.Close()
	}
}

func TestConvertRejectsEmptySource(t *testing.T) {
	src, err := maxminddb.Open(writeSource(t, map[string]string{"8.8.8.0/24": ""}))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close() //nolint:errcheck // test
	if _, _, err := convert(src); err == nil {
		t.Error("convert of a source without countries succeeded")
	}
}

// TestCheckDetectsMismatch makes sure the self-check is not vacuous: an
// output that disagrees with the source must be rejected.
func TestCheckDetectsMismatch(t *testing.T) {
	src, _, _ := convertSample(t)
	tampered := map[string]string{}
	for k, v := range sampleSource {
		tampered[k] = v
	}
	tampered["147.8.0.0/16"] = "CN"
	other, err := maxminddb.Open(writeSource(t, tampered))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close() //nolint:errcheck // test
	b, _, err := convert(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(src, b); err == nil || !strings.Contains(err.Error(), "147.8.") {
		t.Errorf("check(source, tampered output) = %v, want a 147.8.0.0/16 mismatch", err)
	}
}

// TestRunReproducible: the output file is byte-identical across runs, so
// regenerating from the same source never produces a spurious diff.
func TestRunReproducible(t *testing.T) {
	in := writeSource(t, sampleSource)
	dir := t.TempDir()
	var outs [][]byte
	for _, name := range []string{"a.mmdb", "b.mmdb"} {
		out := filepath.Join(dir, name)
		var log bytes.Buffer
		if err := run(in, out, &log); err != nil {
			t.Fatalf("run: %v", err)
		}
		if !strings.Contains(log.String(), "5 countries") {
			t.Errorf("log = %q", log.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Error("two runs on the same source produced different files")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestRunMissingInput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.mmdb")
	if err := run(filepath.Join(t.TempDir(), "nope.mmdb"), out, io.Discard); err == nil {
		t.Fatal("run with a missing input succeeded")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output created despite the error: %v", err)
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{
		"1.0.16.0/20": "1.0.31.255", "8.8.8.8/32": "8.8.8.8", "0.0.0.0/0": "255.255.255.255",
		"2408:8000::/20": "2408:8fff:ffff:ffff:ffff:ffff:ffff:ffff",
	} {
		if got := lastAddr(netip.MustParsePrefix(in)); got != netip.MustParseAddr(want) {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}
