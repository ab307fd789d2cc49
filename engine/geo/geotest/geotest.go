// Package geotest builds tiny MaxMind DB (mmdb) files for tests, so that
// every package in geoscope can exercise real database files (written with
// mmdbwriter, read back by the production code) without network access,
// checked-in fixtures, or depending on what a commercial database says today.
//
// Most tests should use [Standard], whose fixed contents are documented on
// [StandardEntries], or [StandardCity] for subdivisions ([StandardCityEntries]);
// tests that need a special shape use [Build] or [WriteFile] with their own
// entries.
//
// mmdbwriter's default of refusing reserved networks (private, documentation,
// multicast, ...) is kept on purpose: a real database has no records there,
// so a test that needs one is testing something that cannot happen.
package geotest

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Entry is one network of a test database.
type Entry struct {
	// Network is a CIDR prefix, IPv4 or IPv6, e.g. "81.2.69.0/24".
	Network string
	// Country is the located country, written as country.iso_code.
	// Empty means the record has no "country" map at all.
	Country string
	// Registered is the registered country, written as
	// registered_country.iso_code. Empty means no "registered_country" map.
	Registered string
	// Anycast sets traits.is_anycast to true. False writes no traits map.
	Anycast bool
	// Subdivisions are written as subdivisions[].iso_code, largest first,
	// the way GeoIP2 City databases store them: the part of the ISO
	// 3166-2 code after the hyphen ("43" for UA-43). None writes no
	// subdivisions array.
	Subdivisions []string
}

// BuildTime is the build_epoch written into every database built here, so that
// tests can assert what geo.DB.Info reports.
var BuildTime = time.Date(2026, time.January, 2, 3, 4, 5, 0, time.UTC)

// StandardEntries is the content of the database written by [Standard]. The
// whole project's tests rely on it, so entries may be added but existing
// ones must not change. The countries are what this test database says,
// whatever the real-world allocation is. Any address not covered is
// unlisted.
//
//	Network          country  registered  anycast  purpose
//	1.0.16.0/20      CN                            mainland China, IPv4
//	36.110.0.0/16    CN                            mainland China, IPv4
//	2408:8000::/20   CN                            mainland China, IPv6
//	8.8.8.0/24       US                            United States, IPv4
//	23.0.0.0/12      US                            United States, IPv4
//	2600:1f00::/24   US                            United States, IPv6
//	24.48.0.0/14     CA                            Canada
//	81.2.69.0/24     GB                            United Kingdom
//	85.214.0.0/15    DE                            Germany
//	147.8.0.0/16     HK                            Hong Kong
//	168.95.0.0/16    TW                            Taiwan
//	60.246.0.0/16    MO                            Macao
//	101.32.0.0/14    HK       CN                   located ≠ registered
//	45.112.0.0/16             CN                   registration only
//	104.16.0.0/13    US                true        anycast
var StandardEntries = []Entry{
	{Network: "1.0.16.0/20", Country: "CN"},
	{Network: "36.110.0.0/16", Country: "CN"},
	{Network: "2408:8000::/20", Country: "CN"},
	{Network: "8.8.8.0/24", Country: "US"},
	{Network: "23.0.0.0/12", Country: "US"},
	{Network: "2600:1f00::/24", Country: "US"},
	{Network: "24.48.0.0/14", Country: "CA"},
	{Network: "81.2.69.0/24", Country: "GB"},
	{Network: "85.214.0.0/15", Country: "DE"},
	{Network: "147.8.0.0/16", Country: "HK"},
	{Network: "168.95.0.0/16", Country: "TW"},
	{Network: "60.246.0.0/16", Country: "MO"},
	{Network: "101.32.0.0/14", Country: "HK", Registered: "CN"},
	{Network: "45.112.0.0/16", Registered: "CN"},
	{Network: "104.16.0.0/13", Country: "US", Anycast: true},
}

// StandardType is the database_type of the [Standard] database.
const StandardType = "GeoIP2-Country"

// StandardCityEntries is the content of the database written by
// [StandardCity]: every network of [StandardEntries] with the same country
// (so anything decided with the Country database is decided the same way
// with it), some with subdivisions, and networks in Ukraine for
// subdivision jurisdictions. Entries may be added; existing ones must not
// change.
//
//	Network          country  subdivisions  purpose
//	1.0.16.0/20      CN       BJ            CN-BJ, Beijing
//	36.110.0.0/16    CN       SH            CN-SH, Shanghai
//	81.2.69.0/24     GB       ENG, LND      GB-ENG and GB-LND (London lies in England)
//	91.200.0.0/16    UA       43            UA-43, Crimea
//	91.201.0.0/16    UA       40            UA-40, Sevastopol
//	91.202.0.0/16    UA       30            UA-30, Kyiv
//	91.203.0.0/16    UA                     Ukraine, no subdivision in the record
//	91.204.0.0/16    UA       4 3           a malformed iso_code: the country only
//	91.205.0.0/16             43            a subdivision without a country: unknown
//	91.206.0.0/16    UA       43   anycast  anycast wins: unknown
//	(the rest of StandardEntries, unchanged, without subdivisions)
var StandardCityEntries = func() []Entry {
	subdivisions := map[string][]string{
		"1.0.16.0/20":   {"BJ"},
		"36.110.0.0/16": {"SH"},
		"81.2.69.0/24":  {"ENG", "LND"},
	}
	out := make([]Entry, 0, len(StandardEntries)+7)
	for _, e := range StandardEntries {
		e.Subdivisions = subdivisions[e.Network]
		out = append(out, e)
	}
	return append(out,
		Entry{Network: "91.200.0.0/16", Country: "UA", Subdivisions: []string{"43"}},
		Entry{Network: "91.201.0.0/16", Country: "UA", Subdivisions: []string{"40"}},
		Entry{Network: "91.202.0.0/16", Country: "UA", Subdivisions: []string{"30"}},
		Entry{Network: "91.203.0.0/16", Country: "UA"},
		Entry{Network: "91.204.0.0/16", Country: "UA", Subdivisions: []string{"4 3"}},
		Entry{Network: "91.205.0.0/16", Subdivisions: []string{"43"}},
		Entry{Network: "91.206.0.0/16", Country: "UA", Subdivisions: []string{"43"}, Anycast: true},
	)
}()

// StandardCityType is the database_type of the [StandardCity] database.
const StandardCityType = "GeoIP2-City"

// StandardCity writes the [StandardCityEntries] database as a
// "GeoIP2-City" file in tb.TempDir and returns its path.
func StandardCity(tb testing.TB) string {
	tb.Helper()
	return WriteFile(tb, StandardCityType, StandardCityEntries)
}

// Standard writes the [StandardEntries] database as a "GeoIP2-Country"
// file in tb.TempDir and returns its path.
func Standard(tb testing.TB) string {
	tb.Helper()
	return WriteFile(tb, StandardType, StandardEntries)
}

// WriteFile is [Build] followed by writing the result to a file in
// tb.TempDir; it returns the path.
func WriteFile(tb testing.TB, dbType string, entries []Entry) string {
	tb.Helper()
	b := Build(tb, dbType, entries)
	path := filepath.Join(tb.TempDir(), fileName(dbType))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatalf("geotest: writing %s: %v", path, err)
	}
	return path
}

// Build returns an mmdb file with database_type dbType (e.g.
// "GeoIP2-Country", "GeoLite2-City", "GeoLite2-ASN") holding entries, in an
// IPv6 tree with IPv4 aliased the way MaxMind's own databases are.
//
// Records have the GeoIP2 Country shape and contain only the fields an Entry
// sets. When dbType contains "ASN" the records have the GeoLite2-ASN shape
// instead (autonomous_system_number, autonomous_system_organization), so that
// a wrong-type database is realistic. Invalid networks, overlapping reserved
// space and write errors fail the test.
func Build(tb testing.TB, dbType string, entries []Entry) []byte {
	tb.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType,
		Description:  map[string]string{"en": "geoscope test database (geotest)"},
		Languages:    []string{"en"},
		BuildEpoch:   BuildTime.Unix(),
		RecordSize:   24,
	})
	if err != nil {
		tb.Fatalf("geotest: new tree: %v", err)
	}
	asn := strings.Contains(dbType, "ASN")
	for i, e := range entries {
		p, err := netip.ParsePrefix(e.Network)
		if err != nil {
			tb.Fatalf("geotest: entry %d: %v", i, err)
		}
		if p != p.Masked() {
			tb.Fatalf("geotest: entry %d: %s has host bits set (want %s)", i, p, p.Masked())
		}
		var rec mmdbtype.Map
		if asn {
			rec = asnRecord(i)
		} else {
			rec = countryRecord(e)
		}
		if err := tree.Insert(ipNet(p), rec); err != nil {
			tb.Fatalf("geotest: entry %d (%s): %v", i, e.Network, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		tb.Fatalf("geotest: writing database: %v", err)
	}
	return buf.Bytes()
}

func countryRecord(e Entry) mmdbtype.Map {
	rec := mmdbtype.Map{}
	if e.Country != "" {
		rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(e.Country)}
	}
	if e.Registered != "" {
		rec["registered_country"] = mmdbtype.Map{"iso_code": mmdbtype.String(e.Registered)}
	}
	if e.Anycast {
		rec["traits"] = mmdbtype.Map{"is_anycast": mmdbtype.Bool(true)}
	}
	if len(e.Subdivisions) > 0 {
		subs := make(mmdbtype.Slice, len(e.Subdivisions))
		for i, iso := range e.Subdivisions {
			subs[i] = mmdbtype.Map{"iso_code": mmdbtype.String(iso)}
		}
		rec["subdivisions"] = subs
	}
	return rec
}

// asnRecord returns a GeoLite2-ASN shaped record. The numbers come from the
// documentation range 64496-64511 (RFC 5398).
func asnRecord(i int) mmdbtype.Map {
	return mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(64496 + i%16), //nolint:gosec // bounded
		"autonomous_system_organization": mmdbtype.String("geotest"),
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

// fileName makes a readable file name from a database type; the type is
// caller-controlled, so anything outside a safe alphabet is replaced.
func fileName(dbType string) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, dbType)
	if name == "" {
		name = "db"
	}
	return name + ".mmdb"
}
