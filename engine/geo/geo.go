// Package geo locates IP addresses by country for policy decisions.
//
// geoscope enforces a government demand only on participants located inside
// the demanding authority's jurisdiction, so this package answers exactly one
// question: in which country (and, with a City database, in which of its
// subdivisions) is this address located? Three rules follow from that
// purpose and shape the whole API:
//
//   - The answer is the located country (the MaxMind DB field
//     country.iso_code), never registered_country. The registered country is
//     where the ISP registered the block; it is frequently a different
//     jurisdiction (a Hong Kong user on a block registered in mainland China,
//     a European user on a US-registered cloud block) and must never be used
//     to bring a participant into scope.
//   - When the answer is not reliable the result is explicitly unknown
//     (Location.Known is false) with a machine-readable Reason, rather than a
//     guess. Special-purpose addresses (private, loopback, documentation,
//     CGNAT, ...) have no geographic location at all, and anycast addresses
//     have many, so both are unknown by construction.
//   - Lookups are cheap and never fail loudly: Locate is on the request hot
//     path (a single request may locate 100k addresses), so it returns a
//     value, allocates nothing in the steady state, and reports database
//     problems through Reason instead of an error.
//
// Databases are MaxMind DB (mmdb) files of the GeoIP2/GeoLite2/DB-IP Country
// or City kind. [Embedded] returns the DB-IP "IP to Country Lite" database that
// ships inside the binary (see package dbip); [Open] and [OpenBytes] load an
// operator-supplied one.
package geo

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Reasons reported in [Location.Reason] when a location is unknown. They are
// stable identifiers meant for audit records and metrics labels, so they are
// short, lower-case and never change meaning.
const (
	// ReasonInvalid: the address is the zero netip.Addr.
	ReasonInvalid = "invalid"
	// ReasonPrivate: RFC 1918 IPv4 private space or IPv6 unique-local
	// (fc00::/7). Such an address is meaningful only inside one network.
	ReasonPrivate = "private"
	// ReasonLoopback: 127.0.0.0/8 or ::1.
	ReasonLoopback = "loopback"
	// ReasonLinkLocal: 169.254.0.0/16 or fe80::/10.
	ReasonLinkLocal = "link_local"
	// ReasonUnspecified: 0.0.0.0 or ::.
	ReasonUnspecified = "unspecified"
	// ReasonMulticast: 224.0.0.0/4 or ff00::/8; a group, not a host.
	ReasonMulticast = "multicast"
	// ReasonNotGlobal: any other special-purpose range that is not globally
	// routable to a single host (CGNAT, documentation, benchmarking,
	// reserved, ...). The exact list is the specialPurpose table.
	ReasonNotGlobal = "not_global"
	// ReasonNotListed: the database has no record for the address.
	ReasonNotListed = "not_listed"
	// ReasonNoCountry: the database has a record but no located country,
	// typically a block known only by its registration (registered_country),
	// which must not be used as a location.
	ReasonNoCountry = "no_country"
	// ReasonAnycast: the database marks the network as anycast
	// (traits.is_anycast); the same address is served from many countries,
	// so it has no single location.
	ReasonAnycast = "anycast"
	// ReasonLookupError: the database could not answer, because it was closed
	// or the record is malformed. Treated as unknown rather than guessed.
	ReasonLookupError = "lookup_error"
)

// Location is the answer to "where is this address?".
//
// The zero value is an unknown location without a reason; Locate never
// returns it.
type Location struct {
	// Country is the ISO 3166-1 alpha-2 code (upper case, e.g. "HK") of the
	// country the address is located in, taken from the database's
	// country.iso_code. It is empty when Known is false. It is never derived
	// from registered_country.
	Country string
	// Subdivisions are the ISO 3166-2 codes ("UA-43", "GB-ENG") of the
	// subdivisions the address is located in, the largest first, built
	// from the database's subdivisions[].iso_code and the located country.
	// Only City databases have subdivisions; with a Country database (the
	// embedded one) this is always empty, so nobody is ever located in a
	// subdivision. Empty when Known is false. The slice is shared by every
	// address of the record: do not modify it.
	Subdivisions []string
	// Known reports whether Country is set.
	Known bool
	// Reason explains an unknown location with one of the Reason* constants;
	// it is empty when Known is true.
	Reason string
}

// Equal reports whether l and o are the same answer.
func (l Location) Equal(o Location) bool {
	return l.Country == o.Country && l.Known == o.Known && l.Reason == o.Reason && slices.Equal(l.Subdivisions, o.Subdivisions)
}

// Info describes the database a DB was opened from, for audit records: a
// decision must be traceable to the data it was made with.
type Info struct {
	// Database is the database_type from the mmdb metadata, e.g.
	// "GeoIP2-Country" or "DBIP-Country-Lite".
	Database string
	// Build is the database's build_epoch as a UTC time.
	Build time.Time
	// Subdivisions reports whether the database is of a kind that
	// locates addresses in subdivisions (a City database). A Country
	// database never does: an authority whose jurisdiction lists
	// subdivisions then acts on nobody there.
	Subdivisions bool
}

// Sentinel errors returned (wrapped) by Open and OpenBytes. Match them with
// errors.Is; the wrapped message carries the details.
var (
	// ErrUnreadable means the input is not a readable MaxMind DB: missing,
	// empty, not a regular file, truncated, or not mmdb at all.
	ErrUnreadable = errors.New("not a readable MaxMind DB")
	// ErrWrongType means the input is a valid MaxMind DB whose
	// database_type is not a Country or City database (e.g. an ASN
	// database), so it has no located country to offer.
	ErrWrongType = errors.New("not a Country or City database")
)

// supportedTypes lists the database_type values whose records carry the
// GeoIP2 Country shape (country.iso_code, registered_country, traits).
// It mirrors the Country/City types that geoip2-golang v2 allows Country()
// lookups on, minus the Enterprise/ISP types: those are different products
// and accepting them silently would hide a deployment mistake. Matching is
// exact because type strings are the only contract the file format gives us.
var supportedTypes = map[string]bool{
	"GeoIP2-Country":              true,
	"GeoLite2-Country":            true,
	"GeoIP2-City":                 true,
	"GeoLite2-City":               true,
	"GeoIP2-City-Africa":          true,
	"GeoIP2-City-Asia-Pacific":    true,
	"GeoIP2-City-Europe":          true,
	"GeoIP2-City-North-America":   true,
	"GeoIP2-City-South-America":   true,
	"GeoIP2-Precision-City":       true,
	"GeoIP-City-Redacted-US":      true,
	"DBIP-Country-Lite":           true,
	"DBIP-Country":                true,
	"DBIP-City-Lite":              true,
	"DBIP-Location (compat=City)": true,
}

// cityTypes are the supportedTypes whose records may carry subdivisions.
var cityTypes = map[string]struct{}{
	"GeoIP2-City":                 {},
	"GeoLite2-City":               {},
	"GeoIP2-City-Africa":          {},
	"GeoIP2-City-Asia-Pacific":    {},
	"GeoIP2-City-Europe":          {},
	"GeoIP2-City-North-America":   {},
	"GeoIP2-City-South-America":   {},
	"GeoIP2-Precision-City":       {},
	"GeoIP-City-Redacted-US":      {},
	"DBIP-City-Lite":              {},
	"DBIP-Location (compat=City)": {},
}

// DB is an opened geolocation database. Its data is immutable after opening
// (the only internal state is a lock-free cache of decoded records), so it is
// safe for concurrent use by any number of goroutines. Do not copy a DB.
type DB struct {
	reader *maxminddb.Reader
	// full decodes whole GeoIP2 records for Explain, an operator's
	// inspection path; it reads the same bytes as reader.
	full *geoip2.Reader
	info Info
	// ipv4Only is set for ip_version 4 databases, which cannot be asked
	// about IPv6 addresses at all (the reader returns an error).
	ipv4Only bool
	// shared marks the process-wide embedded database, whose Close must be
	// a no-op because every caller of Embedded holds the same *DB.
	shared bool
	closed atomic.Bool
	cache  recordCache
}

// Open reads the database at path into memory and validates it.
//
// The file is read rather than memory-mapped on purpose: an operator
// replacing or truncating the file in place while it is mapped would crash the
// process (SIGBUS), and Close could not be made safe against concurrent
// lookups. Country databases are a few megabytes, so the copy is cheap.
//
// Errors wrap ErrUnreadable or ErrWrongType; a missing file also matches
// fs.ErrNotExist.
func Open(path string) (*DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("geo: open %s: %w: %w", path, ErrUnreadable, withoutPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("geo: open %s: %w: not a regular file", path, ErrUnreadable)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("geo: open %s: %w: %w", path, ErrUnreadable, withoutPath(err))
	}
	db, err := open(b)
	if err != nil {
		return nil, fmt.Errorf("geo: open %s: %w", path, err)
	}
	return db, nil
}

// withoutPath drops the path from an *fs.PathError, which Open already
// names, keeping the underlying error (so fs.ErrNotExist still matches).
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// OpenBytes opens a database held in memory. The DB keeps using b, which the
// caller must not modify afterwards. Errors wrap ErrUnreadable or
// ErrWrongType.
func OpenBytes(b []byte) (*DB, error) {
	db, err := open(b)
	if err != nil {
		return nil, fmt.Errorf("geo: open bytes: %w", err)
	}
	return db, nil
}

func open(b []byte) (*DB, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrUnreadable)
	}
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	md := r.Metadata
	if md.IPVersion != 4 && md.IPVersion != 6 {
		return nil, fmt.Errorf("%w: ip_version %d", ErrUnreadable, md.IPVersion)
	}
	if !supportedTypes[md.DatabaseType] {
		return nil, fmt.Errorf("%w: database_type %q (want a GeoIP2, GeoLite2 or DB-IP Country or City database)",
			ErrWrongType, md.DatabaseType)
	}
	// City-kind types carry subdivisions; Country types never do. (A City
	// database may still lack them for an address; that person is then
	// located in the country only.)
	_, city := cityTypes[md.DatabaseType]
	full, err := geoip2.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	return &DB{
		reader:   r,
		full:     full,
		ipv4Only: md.IPVersion == 4,
		info: Info{
			Database:     md.DatabaseType,
			Build:        time.Unix(int64(md.BuildEpoch), 0).UTC(), //nolint:gosec // epoch seconds fit in int64
			Subdivisions: city,
		},
	}, nil
}

// Info returns the database's type and build time.
func (db *DB) Info() Info { return db.info }

// Close marks the database closed; later Locate calls report
// ReasonLookupError. It is safe to call concurrently with Locate and more than
// once. The memory is released once the DB is unreachable. Closing the shared
// database returned by Embedded is a no-op, since other callers still use it.
func (db *DB) Close() error {
	if !db.shared {
		db.closed.Store(true)
	}
	return nil
}

// Locate returns the located country of a.
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are unmapped first, so they get
// exactly the answer of the IPv4 address; any zone is ignored. Special-purpose
// addresses are classified before the database is consulted, so a database
// that (wrongly) lists e.g. 10.0.0.0/8 can never give a private address a
// country. A record is Known only if it has a well-formed country.iso_code and
// is not marked anycast.
//
// Locate does not allocate once the records it meets are cached (see
// recordCache), which is what makes 100k lookups per request affordable.
func (db *DB) Locate(a netip.Addr) Location {
	if !a.IsValid() {
		return Location{Reason: ReasonInvalid}
	}
	// Prefix.Contains never matches a zoned address, so drop the zone
	// before classifying (fe80::1%eth0 is still link-local).
	a = a.Unmap().WithZone("")
	if reason := classify(a); reason != "" {
		return Location{Reason: reason}
	}
	if db.closed.Load() {
		return Location{Reason: ReasonLookupError}
	}
	if db.ipv4Only && a.Is6() {
		return Location{Reason: ReasonNotListed}
	}
	res := db.reader.Lookup(a)
	if res.Err() != nil {
		return Location{Reason: ReasonLookupError}
	}
	if !res.Found() {
		return Location{Reason: ReasonNotListed}
	}
	return db.cache.locate(res)
}

// Details is Locate's answer with the evidence behind it, for operators
// inspecting a database (geoscope geoip lookup). It is not used to decide.
type Details struct {
	Location
	// Network is the database network that holds the address (invalid when
	// the address was classified before the lookup or is not listed).
	Network netip.Prefix
	// Registered is the registered_country.iso_code, shown to explain why
	// it is ignored; it never influences Location.
	Registered string
}

// Explain returns the location of a and the record it came from.
func (db *DB) Explain(a netip.Addr) Details {
	d := Details{Location: db.Locate(a)}
	a = a.Unmap().WithZone("")
	if !a.IsValid() || classify(a) != "" || db.closed.Load() || (db.ipv4Only && a.Is6()) {
		return d
	}
	if c, err := db.full.Country(a); err == nil && c.HasData() {
		d.Network = c.Traits.Network
		d.Registered = c.RegisteredCountry.ISOCode
	}
	return d
}
