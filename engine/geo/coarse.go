package geo

import "net/netip"

// Coarse returns the privacy-safe network of a for audit records: the /24
// for IPv4 and the /48 for IPv6. Audit trails must show which network a
// decision concerned without storing a personal address; a /24 or /48 is the
// usual granularity of a site and is what geolocation data resolves anyway.
//
// A 6to4 address (2002::/16) is cut to the /40 that holds the /24 of the
// IPv4 address it embeds: its /48 would be that whole address.
//
// IPv4-mapped IPv6 addresses are unmapped first, so ::ffff:1.2.3.4 and
// 1.2.3.4 give the same 1.2.3.0/24, and any zone is dropped. The zero Addr
// gives the zero Prefix.
func Coarse(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 48
	switch {
	case a.Is4():
		bits = 24
	case sixToFour.Contains(a):
		// A 6to4 address carries its site's IPv4 address in bits 16 to
		// 47: its /48 is that one IPv4 address. It is cut where the
		// embedded address's /24 ends instead.
		bits = 16 + 24
	}
	p, _ := a.Prefix(bits) // cannot fail: bits is within range for the family
	return p
}

// sixToFour is the 6to4 block, RFC 3056.
var sixToFour = netip.MustParsePrefix("2002::/16")
