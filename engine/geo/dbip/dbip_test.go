package dbip_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/geoscope/geoscope/engine/geo/dbip"
)

func open(t *testing.T) *maxminddb.Reader {
	t.Helper()
	r, err := maxminddb.OpenBytes(dbip.Database)
	if err != nil {
		t.Fatalf("embedded database does not open: %v", err)
	}
	return r
}

// TestMetadataMatchesConstants fails when the embedded file is regenerated
// without updating the constants that describe it (or vice versa).
func TestMetadataMatchesConstants(t *testing.T) {
	md := open(t).Metadata
	if md.DatabaseType != dbip.DatabaseType {
		t.Errorf("database_type = %q, want %q", md.DatabaseType, dbip.DatabaseType)
	}
	if got := md.BuildTime().UTC(); !got.Equal(dbip.SourceBuild) {
		t.Errorf("build_epoch = %v, SourceBuild = %v", got, dbip.SourceBuild)
	}
	// ip-location-db versions end in the source's build date and hour,
	// 2.3.YYYYMMDDHH, which ties SourceVersion to the embedded data.
	stamp := dbip.SourceVersion[strings.LastIndexByte(dbip.SourceVersion, '.')+1:]
	if want := dbip.SourceBuild.Format("2006010215"); stamp != want {
		t.Errorf("SourceVersion %s does not match SourceBuild (want suffix %s)", dbip.SourceVersion, want)
	}
	if md.IPVersion != 6 {
		t.Errorf("ip_version = %d, want 6", md.IPVersion)
	}
	desc := md.Description["en"]
	for _, s := range []string{"DB-IP", "https://db-ip.com", "CC BY 4.0", "re-encoded"} {
		if !strings.Contains(desc, s) {
			t.Errorf("description %q does not mention %q", desc, s)
		}
	}
}

// TestVerify runs the reader's full structural verification, the check the
// geo package relies on having passed for the embedded file.
func TestVerify(t *testing.T) {
	if err := open(t).Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestRecordShape: records are GeoIP2 Country shaped and contain nothing
// else, and IPv4 is reachable through the IPv4-mapped alias.
func TestRecordShape(t *testing.T) {
	r := open(t)
	for addr, cc := range map[string]string{"8.8.8.8": "US", "::ffff:147.8.2.58": "HK", "2408:8000::1": "CN"} {
		var got map[string]any
		res := r.Lookup(netip.MustParseAddr(addr))
		if err := res.Decode(&got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"country": map[string]any{"iso_code": cc}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: record %v, want %v", addr, got, want)
		}
	}
}

func TestAttribution(t *testing.T) {
	if dbip.Attribution != "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0" {
		t.Errorf("Attribution = %q", dbip.Attribution)
	}
	if dbip.SourceBuild.Location() != time.UTC {
		t.Errorf("SourceBuild not in UTC")
	}
}

// TestDatabaseDigest ties the SHA-256 quoted in the package documentation to
// the embedded file, so the provenance note cannot silently go stale.
func TestDatabaseDigest(t *testing.T) {
	const documented = "b763818b4985bf26ba86fa5185a52eb605e0b1ba2f4ca1ccd593c1136aa0283c"
	sum := sha256.Sum256(dbip.Database)
	if got := hex.EncodeToString(sum[:]); got != documented {
		t.Errorf("embedded file SHA-256 = %s; update the package documentation (and this test) from %s", got, documented)
	}
}
