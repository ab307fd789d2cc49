package geo_test

import (
	"net/netip"
	"testing"

	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/geo/dbip"
)

func TestEmbedded(t *testing.T) {
	db, err := geo.Embedded()
	if err != nil {
		t.Fatalf("Embedded: %v", err)
	}
	for addr, cc := range map[string]string{
		"8.8.8.8":              "US",
		"202.96.128.86":        "CN",
		"147.8.2.58":           "HK",
		"168.95.1.1":           "TW",
		"::ffff:202.96.128.86": "CN",
		"2408:8000::1":         "CN",
		"2002:0808:0808::1":    "US", // 6to4 answered through the IPv4 alias
	} {
		checkLocate(t, db, addr, known(cc))
	}
	checkLocate(t, db, "10.0.0.1", unknown(geo.ReasonPrivate))
	checkLocate(t, db, "2001:0:0808:0808::1", unknown(geo.ReasonNotGlobal))

	info := db.Info()
	if info.Database != "DBIP-Country-Lite" {
		t.Errorf("Info().Database = %q, want DBIP-Country-Lite", info.Database)
	}
	if !info.Build.Equal(dbip.SourceBuild) {
		t.Errorf("Info().Build = %v, want the source's build time %v", info.Build, dbip.SourceBuild)
	}
}

// TestEmbeddedShared: every caller gets the same DB, and one caller closing
// it must not break the others.
func TestEmbeddedShared(t *testing.T) {
	a, err := geo.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	b, err := geo.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("Embedded returned two different DBs")
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := b.Locate(netip.MustParseAddr("147.8.2.58")); !got.Equal(known("HK")) {
		t.Errorf("after Close of the shared DB, Locate = %+v, want HK", got)
	}
}
