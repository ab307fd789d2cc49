# METADATA
# title: geoscope registry validation
# description: |
#   Checks the registry bundle (data.authorities and data.orders) before it
#   is trusted: every authority has a name and a jurisdiction of officially
#   assigned ISO 3166-1 alpha-2 country codes and ISO 3166-2 subdivision
#   codes (iso3166_2.rego, generated), none inside another it lists; every
#   order names a registered authority, states a legal basis, makes known
#   demands, targets at least one meeting or account or every meeting (and
#   then demands nothing but remove_participants), and states its period of
#   validity and any revocation with well-formed dates in order.
#   docs/registry.md is the guide for the people who edit the registry.
#
#   "violations" is empty exactly when the registry is valid. Each violation
#   is {"path", "message"}; the path is the data path of the offending value
#   ("orders.CN-2020-0601.targets.meetings[2]"), so a reviewer can find the
#   line in the bundle's data.json. "warnings", of the same shape, are
#   things a valid registry may hold but a reviewer should know (a
#   subdivision in a jurisdiction acts only with a GeoIP City database).
#
#   These rules are part of the geoscope binary (embedded from this file),
#   not of the policy bundle: the engine compiles them on their own and
#   evaluates them over the registry data at every activation, whatever
#   policy bundle is loaded, so no bundle can change or remove them. A
#   policy bundle may add checks of its own by defining more "violations"
#   in this package (partial set rules merge across files); the engine
#   evaluates those with the bundle and rejects the registry on either.
#
#   Cost: the engine evaluates this once per bundle activation, with up to
#   100,000 orders. Each record is first screened by one rule, a conjunction
#   of cheap checks that passes only valid records (and nearly all of them;
#   an order received on 29 February, for one, is sent on). The records that
#   fail the screen, the suspects, go through the detailed rules that say
#   what is wrong, skipping the fields that pass the screen's checks, so a
#   suspect costs little more than its problems. No rule scans
#   the registry per record (an order's authority is a key lookup), so
#   evaluation is linear in the size of the registry, and a valid registry
#   costs one screening pass. The first screen takes only orders that state
#   no period of validity, no revocation and no service-wide target; the
#   others go through a second screen, over them alone, that parses their
#   dates. So an order that states none of these pays nothing for them,
#   and one that does pays for its own dates once. A jurisdiction code is
#   one lookup in the generated ISO 3166-2 object.
package geoscope.registry

# METADATA
# title: Violations
# description: The registry's problems, as {"path", "message"} objects.
# entrypoint: true
violations contains v if {
	some v in document_violations
}

violations contains v if {
	some v in authority_violations
}

violations contains v if {
	some v in order_violations
}

# METADATA
# title: Warnings
# description: |
#   What a valid registry holds that a reviewer should know, as
#   {"path", "message"} objects. They never reject a registry.
# entrypoint: true
warnings contains violation(authority_field(id, "jurisdiction"), msg) if {
	some id in screened_authorities
	subdivisions := [code | some code in authorities[id].jurisdiction; not code in iso3166_alpha2]
	count(subdivisions) > 0
	msg := sprintf("lists subdivisions (%s): only a GeoIP City database (GeoIP2 or GeoLite2 City, --geoip-db) locates anyone in a subdivision; with a Country database, such as the embedded one, nobody is inside them and this authority's orders act on nobody there", [concat(", ", subdivisions)])
}

# METADATA
# title: Valid
# description: True when the registry has no violations.
# entrypoint: true
default valid := false

valid if count(violations) == 0

# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

# The officially assigned ISO 3166-1 alpha-2 codes: all 249 of them, as
# published by the ISO 3166 Maintenance Agency (the same list as Debian's
# iso-codes and the tz database's iso3166.tab). User-assigned codes (XK, AA,
# QM-QZ, XA-XZ, ZZ), exceptionally reserved codes (UK, EU, ...) and
# withdrawn codes (AN, CS, YU, ...) are not countries a participant can be
# located in, so they are rejected.
iso3166_alpha2 := {
	"AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
	"BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ",
	"CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ",
	"DE", "DJ", "DK", "DM", "DO", "DZ",
	"EC", "EE", "EG", "EH", "ER", "ES", "ET",
	"FI", "FJ", "FK", "FM", "FO", "FR",
	"GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY",
	"HK", "HM", "HN", "HR", "HT", "HU",
	"ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT",
	"JE", "JM", "JO", "JP",
	"KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ",
	"LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY",
	"MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ",
	"NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
	"OM",
	"PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY",
	"QA",
	"RE", "RO", "RS", "RU", "RW",
	"SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ",
	"TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ",
	"UA", "UG", "UM", "US", "UY", "UZ",
	"VA", "VC", "VE", "VG", "VI", "VN", "VU",
	"WF", "WS",
	"YE", "YT",
	"ZA", "ZM", "ZW",
}

# Hints for codes that are often written by mistake.
code_hints := {
	"UK": "the United Kingdom's code is \"GB\" (UK is only exceptionally reserved)",
	"EU": "the European Union is not a country; list its member states",
	"XK": "XK is user-assigned, not an officially assigned code",
}

# The demand vocabulary (the same as data.geoscope.demands).
demand_vocabulary := {"remove_participants", "end_meeting", "suspend_account"}

# Every valid "demands" array: one to three distinct demands of the
# vocabulary, in any order (15 arrays). The screen checks an order's demands
# with one lookup in this set.
demand_lists contains [a] if some a in demand_vocabulary

demand_lists contains [a, b] if {
	some a in demand_vocabulary
	some b in demand_vocabulary
	a != b
}

demand_lists contains [a, b, c] if {
	some a in demand_vocabulary
	some b in demand_vocabulary
	some c in demand_vocabulary
	count({a, b, c}) == 3
}

authority_keys := {"name", "jurisdiction", "notes"}

order_keys := {"authority", "demands", "targets", "legal_basis", "received", "effective", "expires", "revoked", "notes"}

# The keys that bound when an order is in force.
validity_keys := {"effective", "expires", "revoked"}

plain_order_keys := order_keys - validity_keys

revocation_keys := {"date", "reason"}

# The lists of ids an order may target, and every key of "targets".
target_kinds := {"meetings", "accounts"}

target_keys := target_kinds | {"all_meetings"}

# The demands a service-wide order may not make: they act on a meeting or
# an account as a whole, and such an order names neither.
meeting_wide_demands := {"end_meeting", "suspend_account"}

# A calendar date YYYY-MM-DD other than 29 February, which valid_date
# checks against the year.
date_pattern := `^[0-9]{4}-(((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01]))|((0[469]|11)-(0[1-9]|[12][0-9]|30))|(02-(0[1-9]|1[0-9]|2[0-8])))$`

# An RFC 3339 date-time with an upper-case T, seconds, an optional
# fraction and a Z or an offset; time.parse_rfc3339_ns then checks the
# calendar and the clock.
# The offset's hours go to 23 and its minutes to 59, as RFC 3339 has them
# (Go's parser, and OPA's time.parse_rfc3339_ns, take +24:00 too).
datetime_pattern := `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`

# The instants a validity date may name: the years 1900 to 2199 (UTC), well
# inside OPA's nanosecond timestamps, and the same bounds the engine uses
# (registry.MinYear, registry.MaxYear).
earliest_ns := time.parse_rfc3339_ns("1900-01-01T00:00:00Z")

latest_ns := time.parse_rfc3339_ns("2200-01-01T00:00:00Z")

day_ns := ((24 * 60) * 60) * 1000000000

# ---------------------------------------------------------------------------
# The documents
# ---------------------------------------------------------------------------

# The registry's documents. An absent document is an empty one, and so is
# one of the wrong type (which is reported below).
default authorities := {}

authorities := data.authorities if is_object(data.authorities)

default orders := {}

orders := data.orders if is_object(data.orders)

document_violations contains violation(root, sprintf("must be an object keyed by id, not %s", [type_name(doc)])) if {
	some root in ["authorities", "orders"]
	doc := data[root]
	not is_object(doc)
}

# ---------------------------------------------------------------------------
# Authorities
# ---------------------------------------------------------------------------

# The ids of the authorities that pass the screen: exactly the valid ones.
screened_authorities contains id if {
	some id, a in authorities
	valid_id(id)
	is_object(a)
	count(object.keys(a) - authority_keys) == 0
	non_blank_string(a.name)
	valid_jurisdiction(a.jurisdiction)
	is_string(object.get(a, "notes", ""))
}

suspect_authorities := {id: authorities[id] | some id in (object.keys(authorities) - screened_authorities)}

authority_violations contains violation(authority_path(id), id_problem(id)) if {
	some id, _ in suspect_authorities
	not valid_id(id)
}

authority_violations contains violation(authority_path(id), sprintf("an authority must be an object, not %s", [type_name(a)])) if {
	some id, a in suspect_authorities
	not is_object(a)
}

authority_violations contains violation(authority_field(id, "name"), msg) if {
	some id, a in suspect_authorities
	is_object(a)
	not non_blank_string(object.get(a, "name", null))
	msg := text_problem(a, "name")
}

authority_violations contains violation(authority_field(id, "jurisdiction"), msg) if {
	some id, a in suspect_authorities
	is_object(a)
	not valid_jurisdiction(object.get(a, "jurisdiction", null))
	msg := jurisdiction_problem(a)
}

authority_violations contains violation(sprintf("authorities.%s.jurisdiction[%d]", [id, i]), code_problem(code)) if {
	some id, a in suspect_authorities
	is_array(a.jurisdiction)
	not valid_jurisdiction(a.jurisdiction)
	some i, code in a.jurisdiction
	not jurisdiction_code(code)
}

authority_violations contains violation(sprintf("authorities.%s.jurisdiction[%d]", [id, i]), msg) if {
	some id, a in suspect_authorities
	is_array(a.jurisdiction)
	not valid_jurisdiction(a.jurisdiction)
	listed := {code | some code in a.jurisdiction}
	some i, code in a.jurisdiction
	outer := enclosing_code(code, listed)
	msg := sprintf("%q lies in %s, which the jurisdiction lists as well: list %s or the subdivisions of it that are meant, not both", [code, outer, outer])
}

authority_violations contains violation(authority_field(id, "jurisdiction"), sprintf("lists %v more than once", [dups])) if {
	some id, a in suspect_authorities
	is_array(a.jurisdiction)
	not valid_jurisdiction(a.jurisdiction)
	dups := duplicates(a.jurisdiction)
}

authority_violations contains violation(authority_field(id, "notes"), notes_problem(notes)) if {
	some id, a in suspect_authorities
	notes := a.notes
	not is_string(notes)
}

authority_violations contains violation(authority_field(id, key), unknown_key(key, authority_keys)) if {
	some id, a in suspect_authorities
	is_object(a)
	some key, _ in a
	not key in authority_keys
}

authority_path(id) := sprintf("authorities.%s", [id])

authority_field(id, key) := sprintf("authorities.%s.%s", [id, key])

# A non-empty array of distinct, assigned ISO 3166-1 alpha-2 codes. Codes
# outside the list drop out of the intersection and duplicates collapse, so
# the sizes match only for distinct assigned codes.
valid_jurisdiction(codes) if {
	is_array(codes)
	count(codes) > 0
	count({code | some code in codes} & iso3166_alpha2) == count(codes)
}

# Or one that also lists ISO 3166-2 subdivision codes, none of which lies
# in a country or a subdivision the jurisdiction lists as well (it would
# be covered twice, and a reviewer could not tell which was meant).
valid_jurisdiction(codes) if {
	is_array(codes)
	count(codes) > 0
	listed := {code | some code in codes}
	count(listed) == count(codes)
	count(listed & iso3166_alpha2) < count(codes)
	every code in codes {
		jurisdiction_code(code)
	}
	not nested_code(listed)
}

jurisdiction_code(code) if code in iso3166_alpha2

jurisdiction_code(code) if {
	iso3166_2[code]
	not own_country_code[code]
}

# ISO 3166-2 subdivisions that also have an ISO 3166-1 code of their own.
# GeoIP databases locate everyone there under that code (TW, not CN with
# subdivision CN-TW), so a jurisdiction listing the subdivision would
# reach nobody: it must list the country code instead.
own_country_code := {
	"CN-HK": "HK", "CN-MO": "MO", "CN-TW": "TW",
	"FI-01": "AX",
	"FR-971": "GP", "FR-972": "MQ", "FR-973": "GF", "FR-974": "RE", "FR-976": "YT",
	"FR-BL": "BL", "FR-GF": "GF", "FR-GP": "GP", "FR-MF": "MF", "FR-MQ": "MQ", "FR-NC": "NC",
	"FR-PF": "PF", "FR-PM": "PM", "FR-RE": "RE", "FR-TF": "TF", "FR-WF": "WF", "FR-YT": "YT",
	"NL-AW": "AW", "NL-BQ1": "BQ", "NL-BQ2": "BQ", "NL-BQ3": "BQ", "NL-CW": "CW", "NL-SX": "SX",
	"NO-21": "SJ", "NO-22": "SJ",
	"US-AS": "AS", "US-GU": "GU", "US-MP": "MP", "US-PR": "PR", "US-UM": "UM", "US-VI": "VI",
}

nested_code(listed) if {
	some code in listed
	enclosing_code(code, listed)
}

# enclosing_code(code, listed) is the country or subdivision of listed that
# code lies in, when there is one.
enclosing_code(code, listed) := country if {
	iso3166_2[code]
	not own_country_code[code]
	country := substring(code, 0, 2)
	country in listed
} else := parent if {
	some parent in iso3166_2[code]
	parent in listed
}

jurisdiction_problem(a) := "jurisdiction is required" if {
	not has_key(a, "jurisdiction")
} else := sprintf("jurisdiction must be an array of ISO 3166-1 alpha-2 and ISO 3166-2 codes, not %s", [type_name(a.jurisdiction)]) if {
	not is_array(a.jurisdiction)
} else := "jurisdiction must list at least one country or subdivision" if {
	count(a.jurisdiction) == 0
}

code_problem(code) := sprintf("a country code must be a string, not %s", [type_name(code)]) if {
	not is_string(code)
} else := sprintf("%q has a country code of its own, %s, under which GeoIP locates everyone there (nobody is located in %s): list %s", [code, own, code, own]) if {
	own := own_country_code[code]
} else := sprintf("%q is not an ISO 3166-1 alpha-2 code; codes are upper case: %q", [code, upper(code)]) if {
	upper(code) in iso3166_alpha2
} else := sprintf("%q is not an ISO 3166-2 subdivision code; codes are upper case: %q", [code, upper(code)]) if {
	iso3166_2[upper(code)]
} else := sprintf("%q is not an assigned ISO 3166-1 alpha-2 code: %s", [code, code_hints[code]]) if {
	code_hints[code]
} else := sprintf("%q is not an assigned ISO 3166-2 subdivision code of %s", [code, substring(code, 0, 2)]) if {
	regex.match(`^[A-Z]{2}-[A-Z0-9]{1,3}$`, code)
	substring(code, 0, 2) in iso3166_alpha2
} else := sprintf("%q is neither an assigned ISO 3166-1 alpha-2 country code nor an ISO 3166-2 subdivision code", [code]) if {
	contains(code, "-")
} else := sprintf("%q is not an assigned ISO 3166-1 alpha-2 code", [code])

# ---------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------

# The ids of the orders that pass the screen: only valid ones, and nearly
# all of them. With 100,000 orders this is the rule that costs, so it stays
# a flat list of builtin checks and two small predicates, and it takes only
# orders with the keys every order may have: an order that states a period
# of validity or a revocation, or a service-wide one, is sent on to the
# second screen, so that the orders that state neither (nearly all of
# them) pay nothing for those checks.
screened_orders contains id if {
	some id, o in orders
	is_object(o)
	count(object.keys(o) - plain_order_keys) == 0
	valid_id(id)

	# Authority ids are strings, so this also checks the type.
	authorities[o.authority]
	non_blank_string(o.legal_basis)
	o.demands in demand_lists
	valid_target_lists(o.targets)
	received := object.get(o, "received", "2000-01-01")
	is_string(received)
	regex.match(date_pattern, received)
	is_string(object.get(o, "notes", ""))
}

# The second screen takes what the first sent on and passes the valid ones
# of the orders that state a period of validity, a revocation, or all
# meetings. It costs in proportion to those, not to the registry.
rescreened_orders contains id if {
	some id, o in unscreened_orders
	valid_id(id)
	is_object(o)
	count(object.keys(o) - order_keys) == 0
	authorities[o.authority]
	non_blank_string(o.legal_basis)
	o.demands in demand_lists
	valid_targets(o.targets)
	demands_fit_targets(o)
	received := object.get(o, "received", "2000-01-01")
	is_string(received)
	regex.match(date_pattern, received)
	is_string(object.get(o, "notes", ""))
	valid_validity(o)
}

unscreened_orders := {id: orders[id] | some id in (object.keys(orders) - screened_orders)}

suspect_orders := {id: o | some id, o in unscreened_orders; not rescreened_orders[id]}

order_violations contains violation(order_path(id), id_problem(id)) if {
	some id, _ in suspect_orders
	not valid_id(id)
}

order_violations contains violation(order_path(id), sprintf("an order must be an object, not %s", [type_name(o)])) if {
	some id, o in suspect_orders
	not is_object(o)
}

order_violations contains violation(order_field(id, "authority"), msg) if {
	some id, o in suspect_orders
	is_object(o)
	not authorities[object.get(o, "authority", null)]
	msg := authority_problem(o)
}

order_violations contains violation(order_field(id, "legal_basis"), msg) if {
	some id, o in suspect_orders
	is_object(o)
	not non_blank_string(object.get(o, "legal_basis", null))
	msg := text_problem(o, "legal_basis")
}

order_violations contains violation(order_field(id, "demands"), msg) if {
	some id, o in suspect_orders
	is_object(o)
	not object.get(o, "demands", null) in demand_lists
	msg := demands_problem(o)
}

order_violations contains violation(sprintf("orders.%s.demands[%d]", [id, i]), demand_problem(d)) if {
	some id, o in suspect_orders
	is_array(o.demands)
	not o.demands in demand_lists
	some i, d in o.demands
	not d in demand_vocabulary
}

order_violations contains violation(order_field(id, "demands"), sprintf("lists %v more than once", [dups])) if {
	some id, o in suspect_orders
	is_array(o.demands)
	not o.demands in demand_lists
	dups := duplicates(o.demands)
}

order_violations contains violation(order_field(id, "targets"), msg) if {
	some id, o in suspect_orders
	is_object(o)
	not valid_targets(object.get(o, "targets", null))
	msg := targets_problem(o)
}

order_violations contains violation(sprintf("orders.%s.targets.%s", [id, kind]), msg) if {
	some id, o in suspect_orders
	is_object(o.targets)
	not valid_targets(o.targets)
	some kind in target_kinds
	ids := o.targets[kind]
	not is_array(ids)
	msg := sprintf("%s must be an array of ids, not %s", [kind, type_name(ids)])
}

order_violations contains violation(sprintf("orders.%s.targets.%s[%d]", [id, kind, i]), msg) if {
	some id, o in suspect_orders
	is_object(o.targets)
	not valid_targets(o.targets)
	some kind, ids in target_lists(o)
	some i, target in ids
	not non_blank_string(target)
	msg := sprintf("a target id must be a non-empty string, not %s", [json.marshal(target)])
}

order_violations contains violation(sprintf("orders.%s.targets.%s", [id, kind]), sprintf("lists %v more than once", [dups])) if {
	some id, o in suspect_orders
	is_object(o.targets)
	not valid_targets(o.targets)
	some kind, ids in target_lists(o)
	dups := duplicates(ids)
}

order_violations contains violation(sprintf("orders.%s.targets.%s", [id, key]), unknown_key(key, target_keys)) if {
	some id, o in suspect_orders
	is_object(o.targets)
	not valid_targets(o.targets)
	some key, _ in o.targets
	not key in target_keys
}

order_violations contains violation(sprintf("orders.%s.targets.all_meetings", [id]), msg) if {
	some id, o in suspect_orders
	is_object(o.targets)
	not valid_targets(o.targets)
	all := o.targets.all_meetings
	all != true
	msg := sprintf("all_meetings must be true to apply the order to every meeting (leave it out to name meetings and accounts), not %s", [json.marshal(all)])
}

order_violations contains violation(order_field(id, "targets"), msg) if {
	some id, o in suspect_orders
	is_object(o.targets)
	not valid_targets(o.targets)
	o.targets.all_meetings == true
	named := [kind | some kind in target_kinds; has_key(o.targets, kind)]
	count(named) > 0
	msg := sprintf("a service-wide order (all_meetings) applies to every meeting and names no %s besides", [concat(" or ", sort(named))])
}

order_violations contains violation(sprintf("orders.%s.demands[%d]", [id, i]), msg) if {
	some id, o in suspect_orders
	o.targets.all_meetings == true
	some i, d in o.demands
	d in meeting_wide_demands
	msg := sprintf("a service-wide order (targets.all_meetings) may demand only remove_participants: %s would act on meetings and accounts as a whole, and the order names none", [d])
}

order_violations contains violation(order_field(id, "received"), msg) if {
	some id, o in suspect_orders
	received := o.received
	msg := received_problem(received)
}

order_violations contains violation(order_field(id, "notes"), notes_problem(notes)) if {
	some id, o in suspect_orders
	notes := o.notes
	not is_string(notes)
}

order_violations contains violation(order_field(id, key), msg) if {
	some id, o in suspect_orders
	some key in ["effective", "expires"]
	value := o[key]
	msg := instant_problem(key, value)
}

order_violations contains violation(order_field(id, "expires"), msg) if {
	some id, o in suspect_orders
	valid_instant(o.effective)
	valid_instant(o.expires)
	not window_in_order(o)
	msg := sprintf("expires (%s) is not after effective (%s): the order would never be in force", [o.expires, o.effective])
}

order_violations contains violation(order_field(id, "revoked"), msg) if {
	some id, o in suspect_orders
	r := o.revoked
	not is_object(r)
	msg := sprintf("revoked must be an object {\"date\", \"reason\"}, not %s", [type_name(r)])
}

order_violations contains violation(sprintf("orders.%s.revoked.date", [id]), msg) if {
	some id, o in suspect_orders
	is_object(o.revoked)
	msg := revocation_date_problem(o.revoked)
}

order_violations contains violation(sprintf("orders.%s.revoked.reason", [id]), msg) if {
	some id, o in suspect_orders
	is_object(o.revoked)
	not non_blank_string(object.get(o.revoked, "reason", null))
	msg := sprintf("a revocation must state its reason: %s", [text_problem(o.revoked, "reason")])
}

order_violations contains violation(sprintf("orders.%s.revoked.%s", [id, key]), unknown_key(key, revocation_keys)) if {
	some id, o in suspect_orders
	is_object(o.revoked)
	some key, _ in o.revoked
	not key in revocation_keys
}

order_violations contains violation(order_field(id, key), unknown_key(key, order_keys)) if {
	some id, o in suspect_orders
	is_object(o)
	some key, _ in o
	not key in order_keys
}

order_path(id) := sprintf("orders.%s", [id])

order_field(id, key) := sprintf("orders.%s.%s", [id, key])

# An order's authority must be registered: the registry is the only source
# of a jurisdiction.
authority_problem(o) := "authority is required" if {
	not has_key(o, "authority")
} else := sprintf("authority must be a string (an id from authorities), not %s", [type_name(o.authority)]) if {
	not is_string(o.authority)
} else := sprintf("authority %q is not registered in authorities", [o.authority]) if {
	not has_key(authorities, o.authority)
}

demands_problem(o) := "demands is required" if {
	not has_key(o, "demands")
} else := sprintf("demands must be an array, not %s", [type_name(o.demands)]) if {
	not is_array(o.demands)
} else := "demands must list at least one demand" if {
	count(o.demands) == 0
}

demand_problem(d) := sprintf("unknown demand %s; the demands are end_meeting, remove_participants and suspend_account", [json.marshal(d)])

targets_problem(o) := "targets is required" if {
	not has_key(o, "targets")
} else := sprintf("targets must be an object with meetings and/or accounts, not %s", [type_name(o.targets)]) if {
	not is_object(o.targets)
} else := "targets must name at least one meeting or account" if {
	count_targets(o.targets) == 0
}

# At least one meeting or account, in arrays of distinct non-empty ids, or
# every meeting: {"all_meetings": true} and nothing else.
valid_targets(targets) if valid_target_lists(targets)

valid_targets(targets) if targets == service_wide_targets

service_wide_targets := {"all_meetings": true}

# At least one meeting or account, in arrays of distinct non-empty ids.
# Blank or non-string ids drop out of the set and duplicates collapse, so
# the sizes match only for distinct non-empty ids. (An id used both as a
# meeting and as an account fails this too; the detailed rules then find
# nothing wrong with it.)
valid_target_lists(targets) if {
	is_object(targets)
	count(object.keys(targets) - target_kinds) == 0
	meetings := object.get(targets, "meetings", [])
	accounts := object.get(targets, "accounts", [])
	is_array(meetings)
	is_array(accounts)
	ids := array.concat(meetings, accounts)
	count(ids) > 0
	count({x | some x in ids; is_string(x); trim_space(x) != ""}) == count(ids)
}

# A service-wide order demands participant actions only. (The screen has
# already checked that demands is one of demand_lists.)
demands_fit_targets(o) if not o.targets.all_meetings

demands_fit_targets(o) if o.demands == ["remove_participants"]

# An order's period of validity and revocation, when it states either:
# well-formed dates in the years 1900 to 2199, expires after effective, a
# revocation with a date and a reason and nothing else.
valid_validity(o) if {
	valid_instant(object.get(o, "effective", "2000-01-01"))
	valid_instant(object.get(o, "expires", "2000-01-01"))
	window_in_order(o)
	valid_revocation(object.get(o, "revoked", {"date": "2000-01-01", "reason": "none"}))
}

valid_revocation(r) if {
	is_object(r)
	count(object.keys(r) - revocation_keys) == 0
	valid_instant(r.date)
	non_blank_string(r.reason)
}

# expires is after effective: effective from the start of its day (or its
# instant), expires through the end of its day (or until its instant).
# True when either is absent; undefined when either is malformed, which
# the rules on each field report.
window_in_order(o) if not has_key(o, "effective")

window_in_order(o) if not has_key(o, "expires")

window_in_order(o) if start_ns(o.effective) < end_ns(o.expires)

# The first instant of a date (its day's start) or of a date-time, in
# nanoseconds since the epoch; undefined when malformed or out of range.
start_ns(s) := ns if {
	valid_date(s)
	ns := time.parse_ns("2006-01-02", s)
	in_range(ns)
}

start_ns(s) := ns if {
	is_string(s)
	regex.match(datetime_pattern, s)
	ns := time.parse_rfc3339_ns(s)
	in_range(ns)
}

# The first instant after a date (the next day's start), or a date-time's.
end_ns(s) := start_ns(s) + day_ns if valid_date(s)

end_ns(s) := start_ns(s) if regex.match(datetime_pattern, s)

in_range(ns) if {
	ns >= earliest_ns
	ns < latest_ns
}

valid_instant(s) if start_ns(s)

instant_problem(key, value) := sprintf("%s must be a date YYYY-MM-DD or an RFC 3339 date-time, not %s", [key, type_name(value)]) if {
	not is_string(value)
} else := sprintf("%s %q is outside the years 1900 to 2199", [key, value]) if {
	well_formed_instant(value)
	not valid_instant(value)
} else := sprintf("%s %q is neither a date YYYY-MM-DD nor an RFC 3339 date-time (2026-01-01T00:00:00Z, 2026-01-01T09:00:00+02:00)", [key, value]) if {
	not valid_instant(value)
}

well_formed_instant(s) if valid_date(s)

well_formed_instant(s) if {
	regex.match(datetime_pattern, s)
	time.parse_rfc3339_ns(s)
}

revocation_date_problem(r) := "a revocation must state its date" if {
	not has_key(r, "date")
} else := msg if {
	msg := instant_problem("date", r.date)
}

# The target lists that are arrays, by kind.
target_lists(o) := {kind: ids |
	some kind in target_kinds
	ids := o.targets[kind]
	is_array(ids)
}

count_targets(targets) := sum([count(ids) |
	some kind in target_kinds
	ids := targets[kind]
	is_array(ids)
])

received_problem(received) := sprintf("received must be a date string YYYY-MM-DD, not %s", [type_name(received)]) if {
	not is_string(received)
} else := sprintf("received %q is not a date YYYY-MM-DD", [received]) if {
	not valid_date(received)
}

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

violation(path, message) := {"path": path, "message": message}

# has_key(obj, key) is true when obj has key, whatever its value (even false
# or null).
has_key(obj, key) if {
	_ = obj[key]
}

# An id is what decisions, the ledger, its filters and the report name an
# entry by: not empty (an empty filter means none), and without spaces at
# either end (" O2 " and "O2" read alike wherever they are shown).
# (An id with a control character inside is refused by the engine, in
# Go: a regular expression here cost a tenth of a large registry's
# activation.)
valid_id(id) if {
	id != ""
	trim_space(id) == id
}

id_problem(id) := "an id must not be empty" if {
	id == ""
} else := sprintf("the id %q begins or ends with whitespace", [id])

non_blank_string(s) if {
	is_string(s)
	trim_space(s) != ""
}

text_problem(obj, key) := sprintf("%s is required", [key]) if {
	not has_key(obj, key)
} else := sprintf("%s must be a string, not %s", [key, type_name(obj[key])]) if {
	not is_string(obj[key])
} else := sprintf("%s must not be empty or only whitespace", [key]) if {
	trim_space(obj[key]) == ""
}

notes_problem(notes) := sprintf("notes must be a string, not %s", [type_name(notes)])

unknown_key(key, allowed) := sprintf("unknown key %q; allowed: %s", [key, concat(", ", sort(allowed))])

# The values that occur more than once in arr, sorted; undefined when there
# are none. Sorting makes this O(n log n) rather than a pairwise scan.
duplicates(arr) := dups if {
	count({x | some x in arr}) != count(arr)
	sorted := sort(arr)
	dups := sort({x | some i, x in sorted; i > 0; x == sorted[i - 1]})
}

# valid_date(s) is true for a calendar date written YYYY-MM-DD (proleptic
# Gregorian calendar). String checks only: no builtin errors, and no range
# limit of a nanosecond timestamp.
valid_date(s) if regex.match(date_pattern, s)

valid_date(s) if {
	regex.match(`^[0-9]{4}-02-29$`, s)
	leap_year(substring(s, 0, 4))
}

# leap_year(year) for a four-digit year string. The leading "1" keeps
# to_number away from leading zeros, which it rejects; adding 10000 changes
# no remainder by 4, 100 or 400.
leap_year(year) if {
	n := to_number(concat("", ["1", year]))
	n % 4 == 0
	n % 100 != 0
}

leap_year(year) if to_number(concat("", ["1", year])) % 400 == 0
