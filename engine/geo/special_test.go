package geo

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// lastAddr returns the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// naiveClassify is the table read literally: first match wins.
func naiveClassify(a netip.Addr) string {
	for _, s := range specialPurpose {
		if s.prefix.Contains(a) {
			return s.reason
		}
	}
	return ""
}

func TestSpecialTableWellFormed(t *testing.T) {
	for i, s := range specialPurpose {
		if s.prefix != s.prefix.Masked() {
			t.Errorf("%v has host bits set", s.prefix)
		}
		if s.reason == "" {
			t.Errorf("%v has no reason", s.prefix)
		}
		// An entry contained in an earlier one could never match.
		for _, earlier := range specialPurpose[:i] {
			if earlier.prefix.Bits() <= s.prefix.Bits() && earlier.prefix.Contains(s.prefix.Addr()) {
				t.Errorf("%v is shadowed by earlier entry %v", s.prefix, earlier.prefix)
			}
		}
	}
}

// TestSpecialAgreesWithNetip: where the standard library has a predicate for
// a class, it must agree with our table at both ends of every block.
func TestSpecialAgreesWithNetip(t *testing.T) {
	pred := map[string]func(netip.Addr) bool{
		ReasonPrivate:     netip.Addr.IsPrivate,
		ReasonLoopback:    netip.Addr.IsLoopback,
		ReasonLinkLocal:   netip.Addr.IsLinkLocalUnicast,
		ReasonMulticast:   netip.Addr.IsMulticast,
		ReasonUnspecified: netip.Addr.IsUnspecified,
	}
	for _, s := range specialPurpose {
		for _, a := range []netip.Addr{s.prefix.Addr(), lastAddr(s.prefix)} {
			// The first address may belong to a more specific earlier
			// entry (0.0.0.0 in 0.0.0.0/8), so ask the table, not s.
			got := naiveClassify(a)
			for reason, is := range pred {
				if is(a) != (got == reason) {
					t.Errorf("%s (in %v, %q): netip says %s=%v", a, s.prefix, got, reason, is(a))
				}
			}
		}
	}
	// The stdlib predicates hold on well-known addresses of each class too.
	for addr, want := range map[string]string{
		"10.255.255.255": ReasonPrivate, "fdff::1": ReasonPrivate, "127.1.2.3": ReasonLoopback,
		"169.254.0.0": ReasonLinkLocal, "febf::1": ReasonLinkLocal, "ff0e::1": ReasonMulticast,
	} {
		if got := classify(netip.MustParseAddr(addr)); got != want {
			t.Errorf("classify(%s) = %q, want %q", addr, got, want)
		}
	}
}

// TestClassifyMatchesTable checks the first-byte index against the literal
// table at every block boundary (inside and just outside) and on random
// addresses of both families.
func TestClassifyMatchesTable(t *testing.T) {
	var addrs []netip.Addr
	for _, s := range specialPurpose {
		first, last := s.prefix.Addr(), lastAddr(s.prefix)
		addrs = append(addrs, first, last, first.Prev(), last.Next())
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b4 [4]byte
		var b16 [16]byte
		for i := range b4 {
			b4[i] = byte(rng.Uint32())
		}
		for i := range b16 {
			b16[i] = byte(rng.Uint32())
		}
		// Bias IPv6 toward the populated low and high ends of the space.
		switch rng.IntN(4) {
		case 0:
			clear(b16[:12])
		case 1:
			b16[0] = 0xff - byte(rng.IntN(4))
		case 2:
			b16[0], b16[1] = 0x20, 0x01
		}
		addrs = append(addrs, netip.AddrFrom4(b4), netip.AddrFrom16(b16))
	}
	for _, a := range addrs {
		if !a.IsValid() || a.Is4In6() {
			continue
		}
		if got, want := classify(a), naiveClassify(a); got != want {
			t.Errorf("classify(%s) = %q, table says %q", a, got, want)
		}
	}
}

// TestSpecialBeatsDatabase opens a database that claims every IPv4 and IPv6
// address, reserved ones included, for "US". Every special-purpose block must
// still be unknown with its own reason at both ends, which proves each table
// entry is effective and that classification precedes the lookup.
func TestSpecialBeatsDatabase(t *testing.T) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoIP2-Country",
		IncludeReservedNetworks: true,
		DisableIPv4Aliasing:     true,
		RecordSize:              24,
	})
	if err != nil {
		t.Fatal(err)
	}
	us := mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("US")}}
	for _, cidr := range []string{"::/0", "0.0.0.0/0"} {
		_, n, _ := net.ParseCIDR(cidr)
		if err := tree.Insert(n, us); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	db, err := OpenBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specialPurpose {
		for _, a := range []netip.Addr{s.prefix.Addr(), lastAddr(s.prefix)} {
			want := s.reason
			if a == s.prefix.Addr() {
				want = naiveClassify(a) // may be a more specific earlier entry
			}
			if got := db.Locate(a); !got.Equal(Location{Reason: want}) {
				t.Errorf("Locate(%s) in %v = %+v, want reason %q", a, s.prefix, got, want)
			}
		}
	}
	// And the database is really consulted for everything else.
	for _, addr := range []string{"8.8.8.8", "100.63.255.255", "2a00::1", "2001:200::1", "fbff::1"} {
		if got := db.Locate(netip.MustParseAddr(addr)); !got.Equal(Location{Country: "US", Known: true}) {
			t.Errorf("Locate(%s) = %+v, want US", addr, got)
		}
	}
}

// TestIPv4OnlyDatabase: an ip_version 4 database cannot be asked about IPv6;
// such addresses are simply not listed.
func TestIPv4OnlyDatabase(t *testing.T) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", IPVersion: 4, RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	_, n, _ := net.ParseCIDR("81.2.69.0/24")
	if err := tree.Insert(n, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("GB")}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	db, err := OpenBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]Location{
		"81.2.69.142":        {Country: "GB", Known: true},
		"::ffff:81.2.69.142": {Country: "GB", Known: true},
		"2a02:8010::1":       {Reason: ReasonNotListed},
		"9.9.9.9":            {Reason: ReasonNotListed},
		"fd00::1":            {Reason: ReasonPrivate},
	} {
		if got := db.Locate(netip.MustParseAddr(addr)); !got.Equal(want) {
			t.Errorf("Locate(%s) = %+v, want %+v", addr, got, want)
		}
	}
}

func TestCanonicalISO(t *testing.T) {
	for in, want := range map[string]string{"US": "US", "us": "US", "hK": "HK", "ZZ": "ZZ", "AA": "AA"} {
		if got, ok := canonicalISO(in); !ok || got != want {
			t.Errorf("canonicalISO(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "U", "USA", "U1", "@A", "[A", "`a", "{a", "é", "\x00\x00"} {
		if got, ok := canonicalISO(in); ok {
			t.Errorf("canonicalISO(%q) = %q, true; want rejected", in, got)
		}
	}
}
