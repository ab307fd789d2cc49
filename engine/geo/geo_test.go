package geo_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/oschwald/geoip2-golang/v2"

	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/geo/geotest"
)

func known(cc string) geo.Location       { return geo.Location{Country: cc, Known: true} }
func unknown(reason string) geo.Location { return geo.Location{Reason: reason} }

func openStandard(t testing.TB) *geo.DB {
	t.Helper()
	db, err := geo.Open(geotest.Standard(t))
	if err != nil {
		t.Fatalf("Open(standard): %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func checkLocate(t *testing.T, db *geo.DB, addr string, want geo.Location) {
	t.Helper()
	got := db.Locate(netip.MustParseAddr(addr))
	if !got.Equal(want) {
		t.Errorf("Locate(%s) = %+v, want %+v", addr, got, want)
	}
}

// TestLocateStandardCountries covers every country of the standard database,
// at the first and last address of each range and just outside it.
func TestLocateStandardCountries(t *testing.T) {
	db := openStandard(t)
	tests := []struct {
		addr string
		want geo.Location
	}{
		// CN
		{"1.0.16.0", known("CN")},
		{"1.0.16.5", known("CN")},
		{"1.0.31.255", known("CN")},
		{"1.0.15.255", unknown(geo.ReasonNotListed)},
		{"1.0.32.0", unknown(geo.ReasonNotListed)},
		{"36.110.0.1", known("CN")},
		{"36.110.255.255", known("CN")},
		{"36.111.0.0", unknown(geo.ReasonNotListed)},
		{"2408:8000::", known("CN")},
		{"2408:8000::1", known("CN")},
		{"2408:8fff:ffff:ffff:ffff:ffff:ffff:ffff", known("CN")},
		{"2408:9000::", unknown(geo.ReasonNotListed)},
		// US
		{"8.8.8.8", known("US")},
		{"8.8.8.0", known("US")},
		{"8.8.8.255", known("US")},
		{"8.8.9.0", unknown(geo.ReasonNotListed)},
		{"23.0.0.1", known("US")},
		{"23.15.255.255", known("US")},
		{"23.16.0.0", unknown(geo.ReasonNotListed)},
		{"2600:1f00::1", known("US")},
		{"2600:1fff:ffff::1", known("US")},
		{"2600:2000::1", unknown(geo.ReasonNotListed)},
		// The rest of the table.
		{"24.48.0.1", known("CA")},
		{"24.51.255.255", known("CA")},
		{"81.2.69.142", known("GB")},
		{"85.214.0.1", known("DE")},
		{"85.215.255.255", known("DE")},
		{"147.8.2.58", known("HK")},
		{"168.95.1.1", known("TW")},
		{"60.246.0.1", known("MO")},
		// Located in HK, registered in CN: the located country wins.
		{"101.32.0.1", known("HK")},
		{"101.35.255.255", known("HK")},
		// Registered in CN only, no located country: unknown, never CN.
		{"45.112.0.1", unknown(geo.ReasonNoCountry)},
		{"45.112.255.255", unknown(geo.ReasonNoCountry)},
		// Anycast, although the record names a country.
		{"104.16.0.1", unknown(geo.ReasonAnycast)},
		{"104.23.255.255", unknown(geo.ReasonAnycast)},
		{"104.24.0.0", unknown(geo.ReasonNotListed)},
		// Unlisted public space.
		{"9.9.9.9", unknown(geo.ReasonNotListed)},
		{"2a00:1450::1", unknown(geo.ReasonNotListed)},
	}
	for _, tt := range tests {
		checkLocate(t, db, tt.addr, tt.want)
	}
}

// TestStandardEntriesAllExercised keeps the table above honest: every
// StandardEntries network must answer what the entry says.
func TestStandardEntriesAllExercised(t *testing.T) {
	db := openStandard(t)
	for _, e := range geotest.StandardEntries {
		p := netip.MustParsePrefix(e.Network)
		want := known(e.Country)
		switch {
		case e.Anycast:
			want = unknown(geo.ReasonAnycast)
		case e.Country == "":
			want = unknown(geo.ReasonNoCountry)
		}
		if got := db.Locate(p.Addr()); !got.Equal(want) {
			t.Errorf("%s: Locate(%s) = %+v, want %+v", e.Network, p.Addr(), got, want)
		}
	}
}

func TestLocateIPv4Mapped(t *testing.T) {
	db := openStandard(t)
	checkLocate(t, db, "::ffff:1.0.16.5", known("CN"))
	checkLocate(t, db, "::ffff:147.8.2.58", known("HK"))
	checkLocate(t, db, "::ffff:101.32.0.1", known("HK"))
	checkLocate(t, db, "::ffff:104.16.0.1", unknown(geo.ReasonAnycast))
	checkLocate(t, db, "::ffff:9.9.9.9", unknown(geo.ReasonNotListed))
	// Mapped special-purpose addresses get their IPv4 classification.
	checkLocate(t, db, "::ffff:10.1.2.3", unknown(geo.ReasonPrivate))
	checkLocate(t, db, "::ffff:127.0.0.1", unknown(geo.ReasonLoopback))
	checkLocate(t, db, "::ffff:100.64.0.1", unknown(geo.ReasonNotGlobal))
	checkLocate(t, db, "::ffff:0.0.0.0", unknown(geo.ReasonUnspecified))
}

// TestLocateIPv4Embeddings pins down how IPv6 forms that embed an IPv4
// address are answered: 6to4 follows the embedded address through the
// database's alias, while Teredo and IPv4-compatible addresses are
// special-purpose and never borrow the IPv4 answer.
func TestLocateIPv4Embeddings(t *testing.T) {
	db := openStandard(t)
	checkLocate(t, db, "2002:0808:0808::1", known("US"))                    // 6to4 of 8.8.8.8
	checkLocate(t, db, "2001:0:0808:0808::1", unknown(geo.ReasonNotGlobal)) // Teredo via 8.8.8.8
	checkLocate(t, db, "::8.8.8.8", unknown(geo.ReasonNotGlobal))           // IPv4-compatible
}

func TestLocateZoneIgnored(t *testing.T) {
	db := openStandard(t)
	checkLocate(t, db, "fe80::1%eth0", unknown(geo.ReasonLinkLocal))
	checkLocate(t, db, "2408:8000::1%eth0", known("CN"))
}

func TestLocateInvalid(t *testing.T) {
	db := openStandard(t)
	if got := db.Locate(netip.Addr{}); !got.Equal(unknown(geo.ReasonInvalid)) {
		t.Errorf("Locate(zero Addr) = %+v, want reason %q", got, geo.ReasonInvalid)
	}
}

// TestLocateSpecialPurpose checks representative addresses of every class
// against a normal database (the exhaustive table checks are in
// special_test.go, against a database that claims every address).
func TestLocateSpecialPurpose(t *testing.T) {
	db := openStandard(t)
	tests := map[string]string{
		"10.0.0.1":        geo.ReasonPrivate,
		"172.16.5.4":      geo.ReasonPrivate,
		"172.31.255.255":  geo.ReasonPrivate,
		"192.168.1.1":     geo.ReasonPrivate,
		"fd12:3456::1":    geo.ReasonPrivate,
		"127.0.0.1":       geo.ReasonLoopback,
		"127.255.255.254": geo.ReasonLoopback,
		"::1":             geo.ReasonLoopback,
		"169.254.169.254": geo.ReasonLinkLocal,
		"fe80::1":         geo.ReasonLinkLocal,
		"0.0.0.0":         geo.ReasonUnspecified,
		"::":              geo.ReasonUnspecified,
		"224.0.0.1":       geo.ReasonMulticast,
		"239.255.255.250": geo.ReasonMulticast,
		"ff02::1":         geo.ReasonMulticast,
		"100.64.0.1":      geo.ReasonNotGlobal, // CGNAT
		"100.127.255.255": geo.ReasonNotGlobal,
		"0.1.2.3":         geo.ReasonNotGlobal, // "this network"
		"192.0.0.8":       geo.ReasonNotGlobal,
		"192.0.2.1":       geo.ReasonNotGlobal,
		"198.18.0.1":      geo.ReasonNotGlobal,
		"198.19.255.255":  geo.ReasonNotGlobal,
		"198.51.100.7":    geo.ReasonNotGlobal,
		"203.0.113.9":     geo.ReasonNotGlobal,
		"192.88.99.1":     geo.ReasonNotGlobal,
		"240.0.0.1":       geo.ReasonNotGlobal,
		"255.255.255.255": geo.ReasonNotGlobal,
		"2001:db8::1":     geo.ReasonNotGlobal,
		"3fff::1":         geo.ReasonNotGlobal,
		"2001:2::1":       geo.ReasonNotGlobal, // benchmarking
		"100::1":          geo.ReasonNotGlobal,
		"64:ff9b:1::1":    geo.ReasonNotGlobal,
		"5f00::1":         geo.ReasonNotGlobal,
		"fec0::1":         geo.ReasonNotGlobal,
	}
	for addr, reason := range tests {
		checkLocate(t, db, addr, unknown(reason))
	}
	// Neighbours of special ranges are ordinary (unlisted) addresses.
	for _, addr := range []string{"100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0",
		"198.17.255.255", "198.20.0.0", "223.255.255.255", "2001:200::1", "fbff::1"} {
		checkLocate(t, db, addr, unknown(geo.ReasonNotListed))
	}
}

// TestLocateIsoCodeCanonical: lower-case codes are folded, anything that is
// not two ASCII letters is not a country.
func TestLocateIsoCodeCanonical(t *testing.T) {
	db, err := geo.OpenBytes(geotest.Build(t, "GeoIP2-Country", []geotest.Entry{
		{Network: "8.8.8.0/24", Country: "us"},
		{Network: "8.8.9.0/24", Country: "USA"},
		{Network: "8.8.10.0/24", Country: "U1"},
		{Network: "8.8.11.0/24", Country: "Hk"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	checkLocate(t, db, "8.8.8.8", known("US"))
	checkLocate(t, db, "8.8.9.1", unknown(geo.ReasonNoCountry))
	checkLocate(t, db, "8.8.10.1", unknown(geo.ReasonNoCountry))
	checkLocate(t, db, "8.8.11.1", known("HK"))
}

// TestLocateAgreesWithGeoIP2 cross-checks the hand-written record decoder
// against geoip2-golang's generated one on every standard range.
func TestLocateAgreesWithGeoIP2(t *testing.T) {
	path := geotest.Standard(t)
	db, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := geoip2.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close() //nolint:errcheck // test
	for _, e := range geotest.StandardEntries {
		a := netip.MustParsePrefix(e.Network).Addr().Next()
		rec, err := ref.Country(a)
		if err != nil {
			t.Fatal(err)
		}
		want := known(rec.Country.ISOCode)
		switch {
		case rec.Traits.IsAnycast:
			want = unknown(geo.ReasonAnycast)
		case rec.Country.ISOCode == "":
			want = unknown(geo.ReasonNoCountry)
		}
		if got := db.Locate(a); !got.Equal(want) {
			t.Errorf("Locate(%s) = %+v; geoip2 says country %q registered %q anycast %v",
				a, got, rec.Country.ISOCode, rec.RegisteredCountry.ISOCode, rec.Traits.IsAnycast)
		}
	}
}

func TestOpenAcceptsCountryAndCityTypes(t *testing.T) {
	for _, typ := range []string{
		"GeoIP2-Country", "GeoLite2-Country", "GeoIP2-City", "GeoLite2-City",
		"GeoIP2-City-Europe", "GeoIP2-Precision-City",
		"DBIP-Country-Lite", "DBIP-Country", "DBIP-City-Lite", "DBIP-Location (compat=City)",
	} {
		t.Run(typ, func(t *testing.T) {
			db, err := geo.Open(geotest.WriteFile(t, typ, geotest.StandardEntries))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got := db.Info().Database; got != typ {
				t.Errorf("Info().Database = %q, want %q", got, typ)
			}
			checkLocate(t, db, "147.8.2.58", known("HK"))
			checkLocate(t, db, "2408:8000::1", known("CN"))
		})
	}
}

func TestOpenRejectsWrongType(t *testing.T) {
	for _, typ := range []string{
		"GeoLite2-ASN", "GeoIP2-ISP", "GeoIP2-Enterprise", "GeoIP2-Anonymous-IP",
		"DBIP-ASN-Lite (compat=GeoLite2-ASN)", "geoip2-country", "",
	} {
		t.Run(typ, func(t *testing.T) {
			path := geotest.WriteFile(t, typ, geotest.StandardEntries[:3])
			db, err := geo.Open(path)
			if !errors.Is(err, geo.ErrWrongType) {
				t.Fatalf("Open(%q db) = %v, %v; want ErrWrongType", typ, db, err)
			}
			if errors.Is(err, geo.ErrUnreadable) {
				t.Errorf("error %v also matches ErrUnreadable", err)
			}
			b, _ := os.ReadFile(path)
			if _, err := geo.OpenBytes(b); !errors.Is(err, geo.ErrWrongType) {
				t.Errorf("OpenBytes(%q db) err = %v; want ErrWrongType", typ, err)
			}
		})
	}
}

func TestOpenRejectsUnreadable(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := geotest.Build(t, "GeoIP2-Country", geotest.StandardEntries)
	cases := map[string]string{
		"missing":   filepath.Join(dir, "does-not-exist.mmdb"),
		"empty":     write("empty.mmdb", nil),
		"garbage":   write("garbage.mmdb", []byte("this is not a MaxMind database\n")),
		"truncated": write("truncated.mmdb", good[:len(good)/2]),
		"directory": dir,
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			db, err := geo.Open(path)
			if !errors.Is(err, geo.ErrUnreadable) {
				t.Fatalf("Open = %v, %v; want ErrUnreadable", db, err)
			}
			if errors.Is(err, geo.ErrWrongType) {
				t.Errorf("error %v also matches ErrWrongType", err)
			}
		})
	}
	if _, err := geo.Open(cases["missing"]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v does not match fs.ErrNotExist", err)
	}
	for name, b := range map[string][]byte{"nil": nil, "garbage": []byte("garbage"), "truncated": good[:len(good)/2]} {
		if _, err := geo.OpenBytes(b); !errors.Is(err, geo.ErrUnreadable) {
			t.Errorf("OpenBytes(%s) err = %v; want ErrUnreadable", name, err)
		}
	}
}

func TestInfo(t *testing.T) {
	db := openStandard(t)
	info := db.Info()
	if info.Database != "GeoIP2-Country" {
		t.Errorf("Database = %q", info.Database)
	}
	if !info.Build.Equal(geotest.BuildTime) || info.Build.Location().String() != "UTC" {
		t.Errorf("Build = %v, want %v in UTC", info.Build, geotest.BuildTime)
	}
}

func TestClose(t *testing.T) {
	db := openStandard(t)
	checkLocate(t, db, "8.8.8.8", known("US"))
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checkLocate(t, db, "8.8.8.8", unknown(geo.ReasonLookupError))
	// Classification needs no database and still works.
	checkLocate(t, db, "10.0.0.1", unknown(geo.ReasonPrivate))
}

// TestConcurrentLocate runs lookups from many goroutines (meaningful under
// -race) and checks every answer, including across cache collisions.
func TestConcurrentLocate(t *testing.T) {
	db := openStandard(t)
	want := map[string]geo.Location{
		"1.0.16.5": known("CN"), "8.8.8.8": known("US"), "147.8.2.58": known("HK"),
		"101.32.0.1": known("HK"), "45.112.0.1": unknown(geo.ReasonNoCountry),
		"104.16.0.1": unknown(geo.ReasonAnycast), "9.9.9.9": unknown(geo.ReasonNotListed),
		"2600:1f00::1": known("US"), "10.0.0.1": unknown(geo.ReasonPrivate),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for range 200 {
				for addr, w := range want {
					if got := db.Locate(netip.MustParseAddr(addr)); !got.Equal(w) {
						errs <- fmt.Errorf("Locate(%s) = %+v, want %+v", addr, got, w)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLocateManyRecords uses more distinct records than the record cache has
// slots, so entries collide and are replaced; every answer must stay right.
func TestLocateManyRecords(t *testing.T) {
	var entries []geotest.Entry
	want := map[netip.Addr]string{}
	for x := 'A'; x <= 'Z'; x++ {
		for y := 'A'; y <= 'Z'; y++ {
			for r := range 8 {
				i := len(entries)
				cc := string([]rune{x, y})
				// Distinct registered countries make distinct records.
				reg := string([]rune{'A' + rune(r), 'A' + rune(r)})
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{11, byte(i >> 8), byte(i), 0}), 24)
				entries = append(entries, geotest.Entry{Network: p.String(), Country: cc, Registered: reg})
				want[p.Addr().Next()] = cc
			}
		}
	}
	db, err := geo.OpenBytes(geotest.Build(t, "GeoIP2-Country", entries))
	if err != nil {
		t.Fatal(err)
	}
	for pass := range 3 {
		for a, cc := range want {
			if got := db.Locate(a); !got.Equal(known(cc)) {
				t.Fatalf("pass %d: Locate(%s) = %+v, want %s", pass, a, got, cc)
			}
		}
	}
}

// TestLocateDoesNotAllocate pins the hot-path property: once the records
// are cached, a lookup allocates nothing.
func TestLocateDoesNotAllocate(t *testing.T) {
	db := openStandard(t)
	addrs := []netip.Addr{
		netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2408:8000::1"),
		netip.MustParseAddr("::ffff:147.8.2.58"), netip.MustParseAddr("10.0.0.1"),
		netip.MustParseAddr("9.9.9.9"), netip.MustParseAddr("104.16.0.1"),
	}
	for _, a := range addrs {
		db.Locate(a) // warm the cache
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, a := range addrs {
			db.Locate(a)
		}
	})
	if allocs != 0 {
		t.Errorf("Locate allocates %.1f times per %d lookups, want 0", allocs, len(addrs))
	}
}

func TestCoarse(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1.0.16.5", "1.0.16.0/24"},
		{"203.0.113.255", "203.0.113.0/24"},
		{"::ffff:147.8.2.58", "147.8.2.0/24"},
		{"2408:8000:1234:5678:9abc::1", "2408:8000:1234::/48"},
		{"2600:1f00::1", "2600:1f00::/48"},
		{"fe80::1%eth0", "fe80::/48"},
		{"::1", "::/48"},
		// 6to4: the /48 would be the embedded 202.96.128.86 itself.
		{"2002:ca60:8056::1", "2002:ca60:8000::/40"},
		{"2002:ca60:80ff:1234::1", "2002:ca60:8000::/40"},
	}
	for _, tt := range tests {
		got := geo.Coarse(netip.MustParseAddr(tt.in))
		if got != netip.MustParsePrefix(tt.want) {
			t.Errorf("Coarse(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if got := geo.Coarse(netip.Addr{}); got.IsValid() {
		t.Errorf("Coarse(zero) = %v, want invalid prefix", got)
	}
}

func TestExplainShowsNetworkAndIgnoredRegisteredCountry(t *testing.T) {
	db, err := geo.Open(geotest.Standard(t))
	if err != nil {
		t.Fatal(err)
	}
	d := db.Explain(netip.MustParseAddr("101.33.1.1"))
	if d.Country != "HK" || d.Registered != "CN" || d.Network != netip.MustParsePrefix("101.32.0.0/14") {
		t.Errorf("Explain(101.33.1.1) = %+v, want HK located, CN registered, 101.32.0.0/14", d)
	}
	d = db.Explain(netip.MustParseAddr("10.1.2.3"))
	if d.Known || d.Reason != geo.ReasonPrivate || d.Network.IsValid() {
		t.Errorf("Explain(10.1.2.3) = %+v, want private with no network", d)
	}
	d = db.Explain(netip.MustParseAddr("::ffff:1.0.16.9"))
	if d.Country != "CN" || d.Network != netip.MustParsePrefix("1.0.16.0/20") {
		t.Errorf("Explain(::ffff:1.0.16.9) = %+v", d)
	}
}

func locatedIn(cc string, subdivisions ...string) geo.Location {
	return geo.Location{Country: cc, Known: true, Subdivisions: subdivisions}
}

// A City database locates an address in the subdivisions of its record,
// as ISO 3166-2 codes made from the located country and iso_code; nothing
// else about the answer changes.
func TestLocateSubdivisions(t *testing.T) {
	db, err := geo.Open(geotest.StandardCity(t))
	if err != nil {
		t.Fatal(err)
	}
	if !db.Info().Subdivisions || db.Info().Database != geotest.StandardCityType {
		t.Errorf("Info() = %+v, want a database that locates subdivisions", db.Info())
	}
	for addr, want := range map[string]geo.Location{
		"91.200.1.1":           locatedIn("UA", "UA-43"),
		"::ffff:91.200.1.1":    locatedIn("UA", "UA-43"),
		"91.201.255.255":       locatedIn("UA", "UA-40"),
		"91.202.0.1":           locatedIn("UA", "UA-30"),
		"91.203.0.1":           locatedIn("UA"),
		"91.204.0.1":           locatedIn("UA"), // malformed iso_code: the country only
		"91.205.0.1":           unknown(geo.ReasonNoCountry),
		"91.206.0.1":           unknown(geo.ReasonAnycast),
		"81.2.69.142":          locatedIn("GB", "GB-ENG", "GB-LND"),
		"1.0.16.5":             locatedIn("CN", "CN-BJ"),
		"147.8.2.58":           locatedIn("HK"),
		"101.32.0.1":           locatedIn("HK"),
		"10.0.0.1":             unknown(geo.ReasonPrivate),
		"91.207.0.1":           unknown(geo.ReasonNotListed),
		"2408:8000::1":         locatedIn("CN"),
		"2600:1f00::1":         locatedIn("US"),
		"fe80::1":              unknown(geo.ReasonLinkLocal),
		"2a00:1450:4001::1234": unknown(geo.ReasonNotListed),
	} {
		// Twice: the second answer comes from the record cache.
		checkLocate(t, db, addr, want)
		checkLocate(t, db, addr, want)
	}
	// Every address of the standard Country database answers the same
	// country from the City database.
	country := openStandard(t)
	for _, e := range geotest.StandardEntries {
		a := netip.MustParsePrefix(e.Network).Addr()
		if got, want := db.Locate(a), country.Locate(a); got.Country != want.Country || got.Known != want.Known || got.Reason != want.Reason {
			t.Errorf("%s: City %+v, Country %+v", a, got, want)
		}
	}
}

// A Country database never locates anyone in a subdivision, even one whose
// records carry subdivisions (a mislabelled file is still read by its
// records, but Info says what the type promises).
func TestCountryDatabasesHaveNoSubdivisions(t *testing.T) {
	db := openStandard(t)
	if db.Info().Subdivisions {
		t.Error("a Country database claims subdivisions")
	}
	emb, err := geo.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if emb.Info().Subdivisions {
		t.Error("the embedded database claims subdivisions")
	}
	for _, a := range benchAddrsForSubdivisions() {
		if loc := emb.Locate(a); len(loc.Subdivisions) > 0 {
			t.Fatalf("the embedded database locates %s in %v", a, loc.Subdivisions)
		}
	}
	for _, typ := range []string{"GeoLite2-City", "GeoIP2-City-Europe", "DBIP-City-Lite"} {
		db, err := geo.Open(geotest.WriteFile(t, typ, geotest.StandardEntries[:1]))
		if err != nil || !db.Info().Subdivisions {
			t.Errorf("%s: Subdivisions false (%v)", typ, err)
		}
	}
}

func benchAddrsForSubdivisions() []netip.Addr {
	var out []netip.Addr
	for i := range 4096 {
		out = append(out, netip.AddrFrom4([4]byte{byte(i * 61), byte(i * 7), byte(i), 1}))
	}
	return out
}

// Locating in subdivisions allocates nothing once the record is cached,
// like locating in a country.
func TestLocateSubdivisionsDoesNotAllocate(t *testing.T) {
	db, err := geo.Open(geotest.StandardCity(t))
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("81.2.69.142")
	db.Locate(a)
	if n := testing.AllocsPerRun(100, func() { db.Locate(a) }); n != 0 {
		t.Errorf("Locate allocates %v times per call", n)
	}
}
