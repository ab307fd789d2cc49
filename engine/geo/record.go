package geo

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
)

// record is the part of a GeoIP2 Country/City record that Locate needs.
// maxminddb decodes only the keys named here and skips the rest, including
// registered_country, which is deliberately never read: it is where a block
// was registered, not where the participant is. Decoding happens only on a
// cache miss (see recordCache), so its reflection cost is off the hot path.
type record struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Traits struct {
		IsAnycast bool `maxminddb:"is_anycast"`
	} `maxminddb:"traits"`
	// Subdivisions are present in City databases only, largest first;
	// iso_code is the part after the hyphen ("43" of "UA-43").
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
}

// location turns a decoded record into a Location. Anycast wins over a
// country: an anycast prefix is announced from many places and the database's
// country for it is at best the operator's home, not the participant's.
func (r *record) location() Location {
	if r.Traits.IsAnycast {
		return Location{Reason: ReasonAnycast}
	}
	cc, ok := canonicalISO(r.Country.ISOCode)
	if !ok {
		// Covers both "no country map" (registration-only records) and a
		// malformed iso_code: neither is a usable location.
		return Location{Reason: ReasonNoCountry}
	}
	loc := Location{Country: cc, Known: true}
	for _, sd := range r.Subdivisions {
		// A subdivision is always one of the located country: the code is
		// built from it, so a record cannot place anyone in another
		// country's subdivision. A malformed iso_code is dropped (the
		// person is then located in the country only, which never brings
		// them inside a subdivision's jurisdiction).
		if code, ok := subdivisionCode(cc, sd.ISOCode); ok && !slices.Contains(loc.Subdivisions, code) {
			loc.Subdivisions = append(loc.Subdivisions, code)
		}
	}
	return loc
}

// subdivisionCode makes the ISO 3166-2 code of a subdivision from the
// country and the record's subdivision iso_code: one to three ASCII letters
// or digits (upper-cased), as every ISO 3166-2 code has. A code already
// prefixed with its country ("UA-43") is accepted too.
func subdivisionCode(country, iso string) (string, bool) {
	if len(iso) > 3 && iso[2] == '-' && strings.EqualFold(iso[:2], country) {
		iso = iso[3:]
	}
	if len(iso) == 0 || len(iso) > 3 {
		return "", false
	}
	b := make([]byte, 0, 3+len(iso))
	b = append(b, country...)
	b = append(b, '-')
	for i := 0; i < len(iso); i++ {
		c := iso[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'):
		default:
			return "", false
		}
		b = append(b, c)
	}
	return string(b), true
}

// isoCodes holds every two-letter code "AA".."ZZ" back to back, so that a
// canonical country string is a substring of one constant: canonicalISO
// returns it without allocating and without retaining database memory.
var isoCodes = func() string {
	b := make([]byte, 0, 26*26*2)
	for x := byte('A'); x <= 'Z'; x++ {
		for y := byte('A'); y <= 'Z'; y++ {
			b = append(b, x, y)
		}
	}
	return string(b)
}()

// canonicalISO returns s as an upper-case ISO 3166-1 alpha-2 code if it is
// two ASCII letters. Databases are expected to store upper case already; the
// case folding only guards the comparison with jurisdiction codes.
func canonicalISO(s string) (string, bool) {
	if len(s) != 2 {
		return "", false
	}
	x, y := s[0]&^0x20, s[1]&^0x20 // ASCII upper-casing; non-letters fail below
	if x < 'A' || x > 'Z' || y < 'A' || y > 'Z' {
		return "", false
	}
	i := (int(x-'A')*26 + int(y-'A')) * 2
	return isoCodes[i : i+2], true
}

// cacheSlots is the size of the per-DB record cache. Country databases have
// a few hundred distinct records (DB-IP Country Lite: ~250), which all fit
// with room to spare; City databases have far more and simply see more
// misses. 4096 pointers cost 32 KiB per DB.
const (
	cacheBits  = 12
	cacheSlots = 1 << cacheBits
)

// recordCache maps a record's data-section offset to its decoded Location.
//
// mmdb writers deduplicate records, so every address of a country shares one
// offset, and maxminddb documents Result.Offset as a stable record identity
// for exactly this purpose. The cache is direct-mapped and lock-free: a slot
// holds an immutable entry published with an atomic pointer, a collision
// simply replaces the previous entry, and a hit costs one atomic load and a
// compare. Only misses allocate (the entry, plus whatever decoding needs).
type recordCache struct {
	slots [cacheSlots]atomic.Pointer[cacheEntry]
}

type cacheEntry struct {
	offset uintptr
	loc    Location
}

func (c *recordCache) locate(res maxminddb.Result) Location {
	off := res.Offset()
	// Fibonacci hashing spreads the (often regularly spaced) offsets.
	slot := &c.slots[(uint64(off)*0x9E3779B97F4A7C15)>>(64-cacheBits)]
	if e := slot.Load(); e != nil && e.offset == off {
		return e.loc
	}
	var r record
	if err := res.Decode(&r); err != nil {
		// Not cached: a malformed record stays an error on every lookup,
		// which keeps the failure visible in metrics.
		return Location{Reason: ReasonLookupError}
	}
	loc := r.location()
	slot.Store(&cacheEntry{offset: off, loc: loc})
	return loc
}
