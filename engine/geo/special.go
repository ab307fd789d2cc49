package geo

import "net/netip"

// special is one special-purpose address block.
type special struct {
	prefix netip.Prefix
	reason string
}

// specialPurpose lists every address block that has no geographic location,
// checked before any database lookup. Sources: the IANA IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890 and successors) plus the IPv4
// multicast and reserved space. The rule for inclusion is "not globally
// reachable as a single host": only such an address is certain to say nothing
// about where a participant is, whatever a database claims for it.
//
// Order matters: the first matching entry wins, so a more specific block must
// precede the block containing it (0.0.0.0/32 before 0.0.0.0/8, ::/128 and
// ::1/128 before ::/96).
//
// Deliberately NOT listed (left to the database, which may locate them or
// report not_listed):
//   - 64:ff9b::/96 (NAT64 well-known prefix, RFC 6052) and 2002::/16 (6to4,
//     RFC 3056): globally reachable; MaxMind-style databases alias 6to4 to
//     the embedded IPv4 address, which does locate the site.
//   - AS112 (192.31.196.0/24, 192.175.48.0/24, 2620:4f:8000::/48) and AMT
//     (192.52.193.0/24): globally reachable anycast services; if a database
//     marks them anycast they become unknown through traits.is_anycast.
//   - Unallocated IPv6 space outside 2000::/3: no database lists it, so it is
//     already not_listed; enumerating IANA's unallocated blocks here would
//     only go stale.
var specialPurpose = []special{
	// ---- IPv4 ----
	{pfx("0.0.0.0/32"), ReasonUnspecified},   // "this host on this network", RFC 1122
	{pfx("0.0.0.0/8"), ReasonNotGlobal},      // "this network", RFC 791
	{pfx("10.0.0.0/8"), ReasonPrivate},       // private-use, RFC 1918
	{pfx("100.64.0.0/10"), ReasonNotGlobal},  // shared address space (carrier-grade NAT), RFC 6598
	{pfx("127.0.0.0/8"), ReasonLoopback},     // loopback, RFC 1122
	{pfx("169.254.0.0/16"), ReasonLinkLocal}, // link-local, RFC 3927
	{pfx("172.16.0.0/12"), ReasonPrivate},    // private-use, RFC 1918
	// IETF protocol assignments, RFC 6890. IANA marks 192.0.0.9/32 (PCP) and
	// 192.0.0.10/32 (TURN) globally reachable, but both are anycast, so they
	// have no single location either.
	{pfx("192.0.0.0/24"), ReasonNotGlobal},
	{pfx("192.0.2.0/24"), ReasonNotGlobal},    // documentation TEST-NET-1, RFC 5737
	{pfx("192.88.99.0/24"), ReasonNotGlobal},  // deprecated 6to4 relay anycast, RFC 7526
	{pfx("192.168.0.0/16"), ReasonPrivate},    // private-use, RFC 1918
	{pfx("198.18.0.0/15"), ReasonNotGlobal},   // benchmarking, RFC 2544
	{pfx("198.51.100.0/24"), ReasonNotGlobal}, // documentation TEST-NET-2, RFC 5737
	{pfx("203.0.113.0/24"), ReasonNotGlobal},  // documentation TEST-NET-3, RFC 5737
	{pfx("224.0.0.0/4"), ReasonMulticast},     // multicast, RFC 5771
	// Reserved for future use, RFC 1112; includes the limited broadcast
	// address 255.255.255.255/32 (RFC 919).
	{pfx("240.0.0.0/4"), ReasonNotGlobal},

	// ---- IPv6 (IPv4-mapped ::ffff:0:0/96 never gets here: Locate unmaps) ----
	{pfx("::/128"), ReasonUnspecified}, // unspecified, RFC 4291
	{pfx("::1/128"), ReasonLoopback},   // loopback, RFC 4291
	// IPv4-compatible addresses, deprecated by RFC 4291 section 2.5.5.1.
	// mmdb files keep their IPv4 tree at ::/96, so without this entry
	// ::1.2.3.4 would be "located" as 1.2.3.4.
	{pfx("::/96"), ReasonNotGlobal},
	{pfx("64:ff9b:1::/48"), ReasonNotGlobal}, // local-use IPv4/IPv6 translation, RFC 8215
	{pfx("100::/64"), ReasonNotGlobal},       // discard-only, RFC 6666
	{pfx("100:0:0:1::/64"), ReasonNotGlobal}, // dummy prefix, RFC 9780
	// IETF protocol assignments, RFC 2928: Teredo 2001::/32 (RFC 4380),
	// benchmarking 2001:2::/48 (RFC 5180), ORCHID, and others. The blocks
	// IANA marks globally reachable (2001:1::1-3 PCP/TURN/DNS-SD anycast,
	// 2001:3::/32 AMT, 2001:4:112::/48 AS112, 2001:20::/28 ORCHIDv2,
	// 2001:30::/28 DRIP) are anycast services or cryptographic identifiers,
	// never one host's locator. Teredo matters most: mmdb files alias
	// 2001::/32 to the IPv4 tree, which would return the Teredo server's
	// country, not the client's.
	{pfx("2001::/23"), ReasonNotGlobal},
	{pfx("2001:db8::/32"), ReasonNotGlobal}, // documentation, RFC 3849
	{pfx("3fff::/20"), ReasonNotGlobal},     // documentation, RFC 9637
	{pfx("5f00::/16"), ReasonNotGlobal},     // segment routing (SRv6) SIDs, RFC 9602
	{pfx("fc00::/7"), ReasonPrivate},        // unique-local, RFC 4193
	{pfx("fe80::/10"), ReasonLinkLocal},     // link-local unicast, RFC 4291
	{pfx("fec0::/10"), ReasonNotGlobal},     // deprecated site-local, RFC 3879
	{pfx("ff00::/8"), ReasonMulticast},      // multicast, RFC 4291
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// specialIndex buckets specialPurpose by the first byte of the address (one
// array per family), preserving table order inside each bucket. A typical
// public address lands in an empty bucket and costs one array load; the
// largest bucket holds three entries. The table stays the single source of
// truth; this is only its compiled form.
var specialIndex = func() (idx [2][256][]special) {
	for _, s := range specialPurpose {
		fam := 0
		if s.prefix.Addr().Is6() {
			fam = 1
		}
		first := int(s.prefix.Addr().AsSlice()[0])
		span := 1
		if s.prefix.Bits() < 8 {
			span = 1 << (8 - s.prefix.Bits())
		}
		for b := first; b < first+span; b++ {
			idx[fam][b] = append(idx[fam][b], s)
		}
	}
	return idx
}()

// classify returns the Reason for a special-purpose address, or "" for an
// address that may be looked up. a must be valid and already unmapped.
func classify(a netip.Addr) string {
	fam := 0
	var first byte
	if a.Is4() {
		first = a.As4()[0]
	} else {
		fam = 1
		first = a.As16()[0]
	}
	for _, s := range specialIndex[fam][first] {
		if s.prefix.Contains(a) {
			return s.reason
		}
	}
	return ""
}
