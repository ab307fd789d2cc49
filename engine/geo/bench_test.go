package geo_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/oschwald/geoip2-golang/v2"

	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/geo/dbip"
)

// benchAddrs returns n pseudo-random addresses (fixed seed), a quarter of
// them IPv6 from the populated 2000::/4 space: a stand-in for the mix of
// participants in one request.
func benchAddrs(n int) []netip.Addr {
	rng := rand.New(rand.NewPCG(42, 42))
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		if i%4 == 3 {
			var b [16]byte
			b[0] = 0x20 | byte(rng.IntN(16))
			for j := 1; j < 8; j++ {
				b[j] = byte(rng.Uint32())
			}
			addrs[i] = netip.AddrFrom16(b)
		} else {
			addrs[i] = netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		}
	}
	return addrs
}

// BenchmarkLocate measures Locate on the embedded DB-IP database (the
// production default) over a mixed address set, and on the tiny standard
// test database, where it is dominated by classification and the cache.
func BenchmarkLocate(b *testing.B) {
	emb, err := geo.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	addrs := benchAddrs(1 << 16)
	b.Run("embedded/mixed", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			emb.Locate(addrs[i&(len(addrs)-1)])
			i++
		}
	})
	b.Run("embedded/same", func(b *testing.B) {
		a := netip.MustParseAddr("202.96.128.86")
		b.ReportAllocs()
		for b.Loop() {
			emb.Locate(a)
		}
	})
	b.Run("embedded/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				emb.Locate(addrs[i&(len(addrs)-1)])
				i++
			}
		})
	})
	std := openStandard(b)
	b.Run("standard/mixed", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			std.Locate(addrs[i&(len(addrs)-1)])
			i++
		}
	})
}

// BenchmarkGeoIP2Country is the baseline Locate was designed against: the
// same lookups through geoip2-golang's Reader.Country on the same data.
func BenchmarkGeoIP2Country(b *testing.B) {
	r, err := geoip2.OpenBytes(dbip.Database)
	if err != nil {
		b.Fatal(err)
	}
	addrs := benchAddrs(1 << 16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := r.Country(addrs[i&(len(addrs)-1)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
