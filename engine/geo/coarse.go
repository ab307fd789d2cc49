package geo

import "net/netip"

// Coarse returns the privacy-safe network of a for audit records: the /24
// for IPv4 and the /48 for IPv6. Audit trails must show which network a
// decision concerned without storing a personal address; a /24 or /48 is the
// usual granularity of a site and is what geolocation data resolves anyway.
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
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits) // cannot fail: bits is within range for the family
	return p
}
