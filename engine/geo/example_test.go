package geo_test

import (
	"fmt"
	"net/netip"

	"github.com/geoscope/geoscope/engine/geo"
)

func ExampleDB_Locate() {
	db, err := geo.Embedded()
	if err != nil {
		panic(err)
	}
	for _, s := range []string{"147.8.2.58", "::ffff:202.96.128.86", "192.168.1.10", "100.64.0.1"} {
		a := netip.MustParseAddr(s)
		loc := db.Locate(a)
		if loc.Known {
			fmt.Printf("%s (%s): located in %s\n", s, geo.Coarse(a), loc.Country)
		} else {
			fmt.Printf("%s (%s): unknown, %s\n", s, geo.Coarse(a), loc.Reason)
		}
	}
	// Output:
	// 147.8.2.58 (147.8.2.0/24): located in HK
	// ::ffff:202.96.128.86 (202.96.128.0/24): located in CN
	// 192.168.1.10 (192.168.1.0/24): unknown, private
	// 100.64.0.1 (100.64.0.0/24): unknown, not_global
}
