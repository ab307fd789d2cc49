package geoscope.registry_test

# Tests for data.geoscope.registry. Each test supplies its own registry with
# `with data.authorities as` / `with data.orders as`, except
# test_loaded_registry_is_valid, which checks whatever registry is loaded:
# the example registry under `opa test engine/registry bundles/registry`.

import data.geoscope.registry

# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------

cac := {"name": "Cyberspace Administration of China", "jurisdiction": ["CN"]}

authorities := {
	"cn.cac": cac,
	"us.doj": {"name": "United States Department of Justice", "jurisdiction": ["US"], "notes": "example"},
}

# A valid order; tests break one field at a time.
order := {
	"authority": "cn.cac",
	"demands": ["end_meeting", "suspend_account"],
	"targets": {"meetings": ["june4-a"], "accounts": ["acct-us-a"]},
	"legal_basis": "test legal basis",
	"received": "2020-06-01",
}

# The violations of a registry.
violations_of(auths, ords) := vs if {
	vs := registry.violations with data.authorities as auths with data.orders as ords
}

# The violations of the fixture authorities and the one order "o1".
order_violations(o) := violations_of(authorities, {"o1": o})

# The violations of the one authority "x.a" (and no orders).
authority_violations(a) := violations_of({"x.a": a}, {})

# order with key set to value (replaced, not merged: object.union merges
# objects).
order_with(key, value) := object.union(object.remove(order, [key]), {key: value})

# order without key.
order_without(key) := object.remove(order, [key])

# order with the given targets.
order_targeting(targets) := order_with("targets", targets)

# An authority with the given jurisdiction.
authority_over(jurisdiction) := {"name": "Test Authority", "jurisdiction": jurisdiction}

v(path, message) := {"path": path, "message": message}

# A copy of the example registry (bundles/registry), so that its shape is
# tested even when the bundle is not loaded.
example_authorities := {"cn.cac": cac}

example_orders := {
	"CN-2020-0601": {
		"authority": "cn.cac",
		"demands": ["end_meeting", "suspend_account"],
		"targets": {
			"meetings": ["june4-a", "june4-b", "june4-c", "june4-d-prior"],
			"accounts": ["acct-us-a", "acct-us-b", "acct-hk-c", "acct-us-d"],
		},
		"legal_basis": "Demand to terminate June 4th commemoration meetings and shut down their host accounts (example record for the 2020 case)",
		"received": "2020-06-01",
	},
	"CN-2020-0602": {
		"authority": "cn.cac",
		"demands": ["end_meeting"],
		"targets": {"meetings": ["control-cn"]},
		"legal_basis": "Demand to terminate a meeting held entirely within mainland China (example record)",
		"received": "2020-06-02",
	},
}

# ---------------------------------------------------------------------------
# Valid registries
# ---------------------------------------------------------------------------

# The registry that is loaded: with `opa test engine/registry bundles/registry`,
# the example registry; without it, no registry at all (also valid).
test_loaded_registry_is_valid if {
	registry.valid
	count(registry.violations) == 0
}

test_example_registry_is_valid if {
	violations_of(example_authorities, example_orders) == set()
	registry.valid with data.authorities as example_authorities with data.orders as example_orders
}

test_fixture_registry_is_valid if {
	order_violations(order) == set()
}

test_empty_registry_is_valid if {
	violations_of({}, {}) == set()
}

test_authorities_without_orders_are_valid if {
	violations_of(authorities, {}) == set()
}

test_valid_is_false_with_a_violation if {
	not registry.valid with data.authorities as authorities with data.orders as {"o1": order_without("legal_basis")}
	registry.valid == false with data.authorities as authorities with data.orders as {"o1": order_without("legal_basis")}
}

test_optional_fields_may_be_left_out if {
	order_violations(order_without("received")) == set()
	order_violations(order_targeting({"meetings": ["m1"]})) == set()
	order_violations(order_targeting({"accounts": ["a1"]})) == set()
	order_violations(order_targeting({"meetings": [], "accounts": ["a1"]})) == set()
}

test_notes_are_allowed if {
	order_violations(order_with("notes", "received by fax")) == set()
	authority_violations(object.union(cac, {"notes": "example"})) == set()
}

test_every_demand_and_combination_is_valid if {
	every demands in [
		["remove_participants"], ["end_meeting"], ["suspend_account"],
		["suspend_account", "end_meeting"],
		["remove_participants", "end_meeting", "suspend_account"],
		["suspend_account", "remove_participants", "end_meeting"],
	] {
		order_violations(order_with("demands", demands)) == set()
	}
}

test_demand_lists_are_every_ordering_of_distinct_demands if {
	count(registry.demand_lists) == 15
	every list in registry.demand_lists {
		count(list) == count({d | some d in list})
		every d in list {
			d in registry.demand_vocabulary
		}
	}
}

test_same_id_as_meeting_and_account_is_valid if {
	order_violations(order_targeting({"meetings": ["x"], "accounts": ["x"]})) == set()
}

# ---------------------------------------------------------------------------
# The screen: valid records skip the detailed rules (what keeps 100,000
# orders cheap), invalid ones never do.
# ---------------------------------------------------------------------------

test_valid_records_pass_the_screen if {
	ords := {"o1": order, "o2": order_without("received"), "o3": order_with("notes", "n")}
	registry.screened_orders == {"o1", "o2", "o3"} with data.authorities as authorities with data.orders as ords
	registry.suspect_orders == {} with data.authorities as authorities with data.orders as ords
	registry.screened_authorities == {"cn.cac", "us.doj"} with data.authorities as authorities
	registry.suspect_authorities == {} with data.authorities as authorities
}

test_invalid_records_are_suspects if {
	ords := {"good": order, "bad": order_with("demands", ["shutdown"])}
	auths := object.union(authorities, {"bad.a": authority_over(["UK"])})
	registry.screened_orders == {"good"} with data.authorities as auths with data.orders as ords
	object.keys(registry.suspect_orders) == {"bad"} with data.authorities as auths with data.orders as ords
	object.keys(registry.suspect_authorities) == {"bad.a"} with data.authorities as auths
}

test_leap_day_orders_are_suspects_but_valid if {
	o := order_with("received", "2020-02-29")
	object.keys(registry.suspect_orders) == {"o1"} with data.authorities as authorities with data.orders as {"o1": o}
	order_violations(o) == set()
}

# ---------------------------------------------------------------------------
# The documents
# ---------------------------------------------------------------------------

test_authorities_must_be_an_object if {
	violations_of(["cn.cac"], {}) == {v("authorities", "must be an object keyed by id, not array")}
}

test_orders_must_be_an_object if {
	violations_of(authorities, "CN-2020-0601") == {v("orders", "must be an object keyed by id, not string")}
}

test_orders_are_checked_when_authorities_are_not_an_object if {
	violations_of([cac], {"o1": order}) == {
		v("authorities", "must be an object keyed by id, not array"),
		v("orders.o1.authority", `authority "cn.cac" is not registered in authorities`),
	}
}

test_orders_need_registered_authorities if {
	violations_of({}, {"o1": order}) == {v("orders.o1.authority", `authority "cn.cac" is not registered in authorities`)}
}

# ---------------------------------------------------------------------------
# ISO 3166-1 alpha-2
# ---------------------------------------------------------------------------

test_iso_list_has_every_assigned_code if {
	count(registry.iso3166_alpha2) == 249
	every code in registry.iso3166_alpha2 {
		regex.match(`^[A-Z]{2}$`, code)
	}
	every code in ["CN", "HK", "MO", "TW", "US", "GB", "DE", "FR", "RU", "IN", "SS", "CW", "SX", "BQ", "AX", "PS", "EH", "AQ", "UM"] {
		code in registry.iso3166_alpha2
	}
}

test_iso_list_has_no_reserved_or_withdrawn_code if {
	every code in ["XK", "EU", "UK", "UN", "EZ", "AN", "CS", "YU", "SU", "TP", "ZR", "AA", "QM", "XA", "ZZ"] {
		not code in registry.iso3166_alpha2
	}
}

test_hk_mo_tw_are_valid_codes if {
	authority_violations(authority_over(["HK", "MO", "TW"])) == set()
	authority_violations(authority_over(["CN", "HK"])) == set()
}

test_lower_case_code_is_invalid if {
	authority_violations(authority_over(["cn"])) == {v(
		"authorities.x.a.jurisdiction[0]",
		`"cn" is not an ISO 3166-1 alpha-2 code; codes are upper case: "CN"`,
	)}
}

test_uk_is_invalid if {
	authority_violations(authority_over(["UK"])) == {v(
		"authorities.x.a.jurisdiction[0]",
		`"UK" is not an assigned ISO 3166-1 alpha-2 code: the United Kingdom's code is "GB" (UK is only exceptionally reserved)`,
	)}
}

test_eu_is_invalid if {
	authority_violations(authority_over(["DE", "EU"])) == {v(
		"authorities.x.a.jurisdiction[1]",
		`"EU" is not an assigned ISO 3166-1 alpha-2 code: the European Union is not a country; list its member states`,
	)}
}

test_xk_is_invalid if {
	authority_violations(authority_over(["XK"])) == {v(
		"authorities.x.a.jurisdiction[0]",
		`"XK" is not an assigned ISO 3166-1 alpha-2 code: XK is user-assigned, not an officially assigned code`,
	)}
}

test_withdrawn_and_made_up_codes_are_invalid if {
	authority_violations(authority_over(["AN", "CHN", ""])) == {
		v("authorities.x.a.jurisdiction[0]", `"AN" is not an assigned ISO 3166-1 alpha-2 code`),
		v("authorities.x.a.jurisdiction[1]", `"CHN" is not an assigned ISO 3166-1 alpha-2 code`),
		v("authorities.x.a.jurisdiction[2]", `"" is not an assigned ISO 3166-1 alpha-2 code`),
	}
}

test_code_must_be_a_string if {
	authority_violations(authority_over([86])) == {v("authorities.x.a.jurisdiction[0]", "a country code must be a string, not number")}
}

# ---------------------------------------------------------------------------
# Authorities
# ---------------------------------------------------------------------------

test_authority_must_be_an_object if {
	authority_violations("Cyberspace Administration of China") == {v("authorities.x.a", "an authority must be an object, not string")}
}

test_ids_are_not_empty_or_padded if {
	violations_of({"": cac, " cn.cac ": cac}, {}) == {
		v("authorities.", "an id must not be empty"),
		v("authorities. cn.cac ", `the id " cn.cac " begins or ends with whitespace`),
	}
	violations_of(authorities, {"": order, "O2\n": order}) == {
		v("orders.", "an id must not be empty"),
		v("orders.O2\n", `the id "O2\n" begins or ends with whitespace`),
	}

	# An order that states a period goes through the second screen.
	violations_of(authorities, {" O3": object.union(order, {"effective": "2020-06-01"})}) == {v("orders. O3", `the id " O3" begins or ends with whitespace`)}
}

test_subdivisions_with_a_country_code_of_their_own_are_invalid if {
	authority_violations(authority_over(["CN", "CN-TW"])) == {v("authorities.x.a.jurisdiction[1]", `"CN-TW" has a country code of its own, TW, under which GeoIP locates everyone there (nobody is located in CN-TW): list TW`)}
	authority_violations(authority_over(["FR", "FR-GF"])) == {v("authorities.x.a.jurisdiction[1]", `"FR-GF" has a country code of its own, GF, under which GeoIP locates everyone there (nobody is located in FR-GF): list GF`)}
	authority_violations(authority_over(["US-PR"])) == {v("authorities.x.a.jurisdiction[0]", `"US-PR" has a country code of its own, PR, under which GeoIP locates everyone there (nobody is located in US-PR): list PR`)}
	authority_violations(authority_over(["CN", "TW", "FR-IDF"])) == set()
}

test_authority_name_is_required if {
	authority_violations({"jurisdiction": ["CN"]}) == {v("authorities.x.a.name", "name is required")}
}

test_authority_name_must_be_a_string if {
	authority_violations({"name": ["CAC"], "jurisdiction": ["CN"]}) == {v("authorities.x.a.name", "name must be a string, not array")}
}

test_authority_name_must_not_be_blank if {
	authority_violations({"name": "", "jurisdiction": ["CN"]}) == {v("authorities.x.a.name", "name must not be empty or only whitespace")}
	authority_violations({"name": " \t", "jurisdiction": ["CN"]}) == {v("authorities.x.a.name", "name must not be empty or only whitespace")}
}

test_jurisdiction_is_required if {
	authority_violations({"name": "CAC"}) == {v("authorities.x.a.jurisdiction", "jurisdiction is required")}
}

test_jurisdiction_must_be_an_array if {
	authority_violations(authority_over("CN")) == {v("authorities.x.a.jurisdiction", "jurisdiction must be an array of ISO 3166-1 alpha-2 and ISO 3166-2 codes, not string")}
}

test_empty_jurisdiction_is_invalid if {
	authority_violations(authority_over([])) == {v("authorities.x.a.jurisdiction", "jurisdiction must list at least one country or subdivision")}
}

test_duplicate_codes_are_invalid if {
	authority_violations(authority_over(["CN", "HK", "CN", "HK", "MO"])) == {v("authorities.x.a.jurisdiction", `lists ["CN", "HK"] more than once`)}
}

test_authority_notes_must_be_a_string if {
	authority_violations(object.union(cac, {"notes": 1})) == {v("authorities.x.a.notes", "notes must be a string, not number")}
}

test_authority_unknown_key_is_invalid if {
	authority_violations(object.union(cac, {"country": "CN"})) == {v("authorities.x.a.country", `unknown key "country"; allowed: jurisdiction, name, notes`)}
}

test_authority_violations_are_all_reported if {
	authority_violations({"name": 1, "jurisdiction": ["cn", "cn"], "extra": true}) == {
		v("authorities.x.a.name", "name must be a string, not number"),
		v("authorities.x.a.jurisdiction[0]", `"cn" is not an ISO 3166-1 alpha-2 code; codes are upper case: "CN"`),
		v("authorities.x.a.jurisdiction[1]", `"cn" is not an ISO 3166-1 alpha-2 code; codes are upper case: "CN"`),
		v("authorities.x.a.jurisdiction", `lists ["cn"] more than once`),
		v("authorities.x.a.extra", `unknown key "extra"; allowed: jurisdiction, name, notes`),
	}
}

# ---------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------

test_order_must_be_an_object if {
	order_violations(["cn.cac"]) == {v("orders.o1", "an order must be an object, not array")}
}

test_order_authority_is_required if {
	order_violations(order_without("authority")) == {v("orders.o1.authority", "authority is required")}
}

test_order_authority_must_be_a_string if {
	order_violations(order_with("authority", {"id": "cn.cac"})) == {v("orders.o1.authority", "authority must be a string (an id from authorities), not object")}
}

test_unknown_authority_is_invalid if {
	order_violations(order_with("authority", "cn.mps")) == {v("orders.o1.authority", `authority "cn.mps" is not registered in authorities`)}
}

test_authority_names_are_not_ids if {
	order_violations(order_with("authority", "Cyberspace Administration of China")) == {v(
		"orders.o1.authority",
		`authority "Cyberspace Administration of China" is not registered in authorities`,
	)}
}

test_legal_basis_is_required if {
	order_violations(order_without("legal_basis")) == {v("orders.o1.legal_basis", "legal_basis is required")}
}

test_legal_basis_must_be_a_string if {
	order_violations(order_with("legal_basis", true)) == {v("orders.o1.legal_basis", "legal_basis must be a string, not boolean")}
}

test_whitespace_legal_basis_is_invalid if {
	every basis in ["", " ", " \t\n ", "\u00a0\u3000"] {
		order_violations(order_with("legal_basis", basis)) == {v("orders.o1.legal_basis", "legal_basis must not be empty or only whitespace")}
	}
}

test_demands_are_required if {
	order_violations(order_without("demands")) == {v("orders.o1.demands", "demands is required")}
}

test_demands_must_be_an_array if {
	order_violations(order_with("demands", "end_meeting")) == {v("orders.o1.demands", "demands must be an array, not string")}
}

test_empty_demands_are_invalid if {
	order_violations(order_with("demands", [])) == {v("orders.o1.demands", "demands must list at least one demand")}
}

test_unknown_demand_is_invalid if {
	order_violations(order_with("demands", ["end_meeting", "remove_participant"])) == {v(
		"orders.o1.demands[1]",
		`unknown demand "remove_participant"; the demands are end_meeting, remove_participants and suspend_account`,
	)}
}

test_non_string_demand_is_unknown if {
	order_violations(order_with("demands", [1])) == {v(
		"orders.o1.demands[0]",
		"unknown demand 1; the demands are end_meeting, remove_participants and suspend_account",
	)}
}

test_duplicate_demand_is_invalid if {
	order_violations(order_with("demands", ["end_meeting", "suspend_account", "end_meeting"])) == {v("orders.o1.demands", `lists ["end_meeting"] more than once`)}
}

test_targets_are_required if {
	order_violations(order_without("targets")) == {v("orders.o1.targets", "targets is required")}
}

test_targets_must_be_an_object if {
	order_violations(order_targeting(["june4-a"])) == {v("orders.o1.targets", "targets must be an object with meetings and/or accounts, not array")}
}

test_empty_targets_are_invalid if {
	every targets in [{}, {"meetings": []}, {"accounts": []}, {"meetings": [], "accounts": []}] {
		order_violations(order_targeting(targets)) == {v("orders.o1.targets", "targets must name at least one meeting or account")}
	}
}

test_target_lists_must_be_arrays if {
	order_violations(order_targeting({"meetings": "june4-a", "accounts": ["a1"]})) == {v("orders.o1.targets.meetings", "meetings must be an array of ids, not string")}
	order_violations(order_targeting({"meetings": ["m1"], "accounts": null})) == {v("orders.o1.targets.accounts", "accounts must be an array of ids, not null")}
}

test_empty_target_id_is_invalid if {
	order_violations(order_targeting({"meetings": ["m1", ""]})) == {v("orders.o1.targets.meetings[1]", `a target id must be a non-empty string, not ""`)}
	order_violations(order_targeting({"accounts": [" "]})) == {v("orders.o1.targets.accounts[0]", `a target id must be a non-empty string, not " "`)}
}

test_target_id_must_be_a_string if {
	order_violations(order_targeting({"meetings": [42]})) == {v("orders.o1.targets.meetings[0]", "a target id must be a non-empty string, not 42")}
}

test_duplicate_targets_are_invalid if {
	order_violations(order_targeting({"meetings": ["m1", "m2", "m1"], "accounts": ["a1", "a1"]})) == {
		v("orders.o1.targets.meetings", `lists ["m1"] more than once`),
		v("orders.o1.targets.accounts", `lists ["a1"] more than once`),
	}
}

test_unknown_target_key_is_invalid if {
	order_violations(order_targeting({"meeting": ["m1"], "accounts": ["a1"]})) == {v("orders.o1.targets.meeting", `unknown key "meeting"; allowed: accounts, all_meetings, meetings`)}
}

test_received_must_be_a_string if {
	order_violations(order_with("received", 20200601)) == {v("orders.o1.received", "received must be a date string YYYY-MM-DD, not number")}
}

test_bad_dates_are_invalid if {
	every received in [
		"", "2020-6-1", "2020/06/01", "01-06-2020", "June 1, 2020", "2020-06-01T00:00:00Z", " 2020-06-01",
		"2020-00-10", "2020-13-01", "2020-06-00", "2020-06-31", "2020-04-31", "2020-02-30",
		"2021-02-29", "1900-02-29", "2100-02-29",
	] {
		order_violations(order_with("received", received)) == {v("orders.o1.received", sprintf("received %q is not a date YYYY-MM-DD", [received]))}
	}
}

test_good_dates_are_valid if {
	every received in ["2020-06-01", "2020-01-31", "2020-12-31", "2020-02-28", "2020-02-29", "2000-02-29", "2024-02-29", "0000-02-29", "1999-11-30"] {
		order_violations(order_with("received", received)) == set()
	}
}

test_order_notes_must_be_a_string if {
	order_violations(order_with("notes", {"text": "n"})) == {v("orders.o1.notes", "notes must be a string, not object")}
}

test_order_unknown_key_is_invalid if {
	order_violations(order_with("jurisdiction", ["US"])) == {v(
		"orders.o1.jurisdiction",
		`unknown key "jurisdiction"; allowed: authority, demands, effective, expires, legal_basis, notes, received, revoked, targets`,
	)}
}

test_misspelt_key_is_reported_with_the_missing_one if {
	o := object.union(order_without("received"), {"recieved": "2020-06-01"})
	order_violations(o) == {v(
		"orders.o1.recieved",
		`unknown key "recieved"; allowed: authority, demands, effective, expires, legal_basis, notes, received, revoked, targets`,
	)}
}

test_order_violations_are_all_reported if {
	o := {"authority": "nope", "demands": ["end_meeting", "end_meeting"], "targets": {}, "legal_basis": " ", "received": "2020-02-30", "x": 1}
	order_violations(o) == {
		v("orders.o1.authority", `authority "nope" is not registered in authorities`),
		v("orders.o1.demands", `lists ["end_meeting"] more than once`),
		v("orders.o1.targets", "targets must name at least one meeting or account"),
		v("orders.o1.legal_basis", "legal_basis must not be empty or only whitespace"),
		v("orders.o1.received", `received "2020-02-30" is not a date YYYY-MM-DD`),
		v("orders.o1.x", `unknown key "x"; allowed: authority, demands, effective, expires, legal_basis, notes, received, revoked, targets`),
	}
}

test_only_the_invalid_order_is_reported if {
	ords := {"CN-2020-0601": order, "CN-2020-0602": order_with("demands", ["end"]), "CN-2020-0603": order}
	violations_of(authorities, ords) == {v(
		"orders.CN-2020-0602.demands[0]",
		`unknown demand "end"; the demands are end_meeting, remove_participants and suspend_account`,
	)}
}

# ---------------------------------------------------------------------------
# ISO 3166-2 subdivisions in a jurisdiction
# ---------------------------------------------------------------------------

test_iso3166_2_list_is_generated_and_nested if {
	count(registry.iso3166_2) > 5000
	every code, ancestors in registry.iso3166_2 {
		regex.match(`^[A-Z]{2}-[A-Z0-9]{1,3}$`, code)
		substring(code, 0, 2) in registry.iso3166_alpha2
		every a in ancestors {
			registry.iso3166_2[a]
			substring(a, 0, 2) == substring(code, 0, 2)
		}
	}
	registry.iso3166_2["UA-43"] == []
	registry.iso3166_2["GB-LND"] == ["GB-ENG"]
	registry.iso3166_2["AZ-BAB"] == ["AZ-NX"]
}

test_subdivision_codes_are_valid if {
	authority_violations(authority_over(["UA-43"])) == set()
	authority_violations(authority_over(["UA-43", "UA-40"])) == set()
	authority_violations(authority_over(["CN", "UA-43"])) == set()
	authority_violations(authority_over(["GB-SCT", "GB-LND"])) == set()
}

test_valid_subdivision_jurisdictions_pass_the_screen if {
	auths := {"ua": authority_over(["UA-43", "UA-40"]), "mixed": authority_over(["CN", "UA-43"])}
	registry.screened_authorities == {"ua", "mixed"} with data.authorities as auths
}

test_unassigned_subdivision_is_invalid if {
	authority_violations(authority_over(["UA-99"])) == {v(
		"authorities.x.a.jurisdiction[0]",
		`"UA-99" is not an assigned ISO 3166-2 subdivision code of UA`,
	)}
	authority_violations(authority_over(["CN", "XX-1"])) == {v(
		"authorities.x.a.jurisdiction[1]",
		`"XX-1" is neither an assigned ISO 3166-1 alpha-2 country code nor an ISO 3166-2 subdivision code`,
	)}
	authority_violations(authority_over(["UA-"])) == {v(
		"authorities.x.a.jurisdiction[0]",
		`"UA-" is neither an assigned ISO 3166-1 alpha-2 country code nor an ISO 3166-2 subdivision code`,
	)}
}

test_lower_case_subdivision_is_invalid if {
	authority_violations(authority_over(["ua-43"])) == {v(
		"authorities.x.a.jurisdiction[0]",
		`"ua-43" is not an ISO 3166-2 subdivision code; codes are upper case: "UA-43"`,
	)}
}

test_subdivision_of_a_listed_country_is_invalid if {
	authority_violations(authority_over(["UA", "UA-43"])) == {v(
		"authorities.x.a.jurisdiction[1]",
		`"UA-43" lies in UA, which the jurisdiction lists as well: list UA or the subdivisions of it that are meant, not both`,
	)}
}

test_subdivision_of_a_listed_subdivision_is_invalid if {
	authority_violations(authority_over(["GB-LND", "GB-ENG"])) == {v(
		"authorities.x.a.jurisdiction[0]",
		`"GB-LND" lies in GB-ENG, which the jurisdiction lists as well: list GB-ENG or the subdivisions of it that are meant, not both`,
	)}
}

test_duplicate_subdivisions_are_invalid if {
	authority_violations(authority_over(["UA-43", "UA-43"])) == {v("authorities.x.a.jurisdiction", `lists ["UA-43"] more than once`)}
}

test_subdivisions_warn if {
	auths := {"cn.cac": cac, "ua.crimea": authority_over(["UA-43", "UA-40"]), "mixed": authority_over(["CN", "GB-LND"])}
	registry.warnings == {
		v("authorities.ua.crimea.jurisdiction", "lists subdivisions (UA-43, UA-40): only a GeoIP City database (GeoIP2 or GeoLite2 City, --geoip-db) locates anyone in a subdivision; with a Country database, such as the embedded one, nobody is inside them and this authority's orders act on nobody there"),
		v("authorities.mixed.jurisdiction", "lists subdivisions (GB-LND): only a GeoIP City database (GeoIP2 or GeoLite2 City, --geoip-db) locates anyone in a subdivision; with a Country database, such as the embedded one, nobody is inside them and this authority's orders act on nobody there"),
	} with data.authorities as auths with data.orders as {}
	registry.warnings == set() with data.authorities as authorities with data.orders as {}
	registry.valid with data.authorities as auths with data.orders as {}
}

# An invalid authority is reported as a violation, not warned about.
test_invalid_authorities_do_not_warn if {
	registry.warnings == set() with data.authorities as {"x": authority_over(["UA", "UA-43"])} with data.orders as {}
}

# ---------------------------------------------------------------------------
# Service-wide orders
# ---------------------------------------------------------------------------

service_wide := order_with("targets", {"all_meetings": true})

# The first screen sends a service-wide order on; the second passes a
# valid one, and sends an invalid one on to the detailed rules.
test_service_wide_order_passes_the_second_screen if {
	o := object.union(service_wide, {"demands": ["remove_participants"]})
	order_violations(o) == set()
	registry.screened_orders == set() with data.authorities as authorities with data.orders as {"o1": o}
	registry.rescreened_orders == {"o1"} with data.authorities as authorities with data.orders as {"o1": o}
	registry.suspect_orders == {} with data.authorities as authorities with data.orders as {"o1": o}
	object.keys(registry.suspect_orders) == {"o1"} with data.authorities as authorities with data.orders as {"o1": service_wide}
}

test_service_wide_order_may_not_end_meetings_or_suspend_accounts if {
	order_violations(service_wide) == {
		v("orders.o1.demands[0]", "a service-wide order (targets.all_meetings) may demand only remove_participants: end_meeting would act on meetings and accounts as a whole, and the order names none"),
		v("orders.o1.demands[1]", "a service-wide order (targets.all_meetings) may demand only remove_participants: suspend_account would act on meetings and accounts as a whole, and the order names none"),
	}
	order_violations(object.union(service_wide, {"demands": ["remove_participants", "end_meeting"]})) == {v(
		"orders.o1.demands[1]",
		"a service-wide order (targets.all_meetings) may demand only remove_participants: end_meeting would act on meetings and accounts as a whole, and the order names none",
	)}
}

test_all_meetings_must_be_true if {
	o := object.union(order_targeting({"all_meetings": false}), {"demands": ["remove_participants"]})
	order_violations(o) == {
		v("orders.o1.targets.all_meetings", "all_meetings must be true to apply the order to every meeting (leave it out to name meetings and accounts), not false"),
		v("orders.o1.targets", "targets must name at least one meeting or account"),
	}
	order_violations(object.union(o, {"targets": {"all_meetings": "yes"}})) == {
		v("orders.o1.targets.all_meetings", `all_meetings must be true to apply the order to every meeting (leave it out to name meetings and accounts), not "yes"`),
		v("orders.o1.targets", "targets must name at least one meeting or account"),
	}
}

test_service_wide_order_names_nothing_else if {
	o := object.union(order_targeting({"all_meetings": true, "meetings": ["m1"], "accounts": []}), {"demands": ["remove_participants"]})
	order_violations(o) == {v("orders.o1.targets", "a service-wide order (all_meetings) applies to every meeting and names no accounts or meetings besides")}
}

# ---------------------------------------------------------------------------
# Validity: effective, expires, revoked
# ---------------------------------------------------------------------------

test_validity_is_optional_and_valid_when_well_formed if {
	every o in [
		order_with("effective", "2026-01-01"),
		order_with("expires", "2026-12-31"),
		object.union(order, {"effective": "2026-01-01", "expires": "2026-12-31"}),
		object.union(order, {"effective": "2026-01-01", "expires": "2026-01-01"}), # in force for one day
		object.union(order, {"effective": "2026-01-01T09:00:00+02:00", "expires": "2026-01-01T07:00:01Z"}),
		object.union(order, {"effective": "2026-01-01T00:00:00.5Z", "expires": "2026-01-01"}),
		order_with("effective", "2024-02-29"),
		order_with("revoked", {"date": "2026-03-01", "reason": "withdrawn by the authority (letter 2026/4)"}),
		order_with("revoked", {"date": "2026-03-01T12:00:00Z", "reason": "set aside by the court"}),
		object.union(order, {"effective": "1900-01-01", "expires": "2199-12-31"}),
	] {
		order_violations(o) == set()
	}
}

# Orders that state a period of validity or a revocation pass the second
# screen; the first screen takes only the orders that state neither, so
# that those (nearly all) pay nothing for the date checks.
test_orders_with_validity_pass_the_second_screen if {
	ords := {
		"o1": object.union(order, {"effective": "2026-01-01", "expires": "2026-12-31"}),
		"o2": order_with("revoked", {"date": "2026-03-01", "reason": "r"}),
		"o3": order,
		"o4": order_with("expires", "2026-02-30"),
	}
	registry.screened_orders == {"o3"} with data.authorities as authorities with data.orders as ords
	registry.rescreened_orders == {"o1", "o2"} with data.authorities as authorities with data.orders as ords
	object.keys(registry.suspect_orders) == {"o4"} with data.authorities as authorities with data.orders as ords
}

test_expires_before_effective_is_invalid if {
	order_violations(object.union(order, {"effective": "2026-02-01", "expires": "2026-01-31"})) == {v(
		"orders.o1.expires",
		"expires (2026-01-31) is not after effective (2026-02-01): the order would never be in force",
	)}
	order_violations(object.union(order, {"effective": "2026-02-01T00:00:00Z", "expires": "2026-02-01T00:00:00Z"})) == {v(
		"orders.o1.expires",
		"expires (2026-02-01T00:00:00Z) is not after effective (2026-02-01T00:00:00Z): the order would never be in force",
	)}

	# 2026-01-02T00:00+02:00 is 2026-01-01T22:00Z, before the start of the
	# effective day.
	order_violations(object.union(order, {"effective": "2026-01-02", "expires": "2026-01-02T00:00:00+02:00"})) == {v(
		"orders.o1.expires",
		"expires (2026-01-02T00:00:00+02:00) is not after effective (2026-01-02): the order would never be in force",
	)}
}

test_malformed_validity_dates_are_invalid if {
	every bad in [
		"", "2026-1-1", "2026/01/01", "01-01-2026", "2026-02-30", "2025-02-29", "2026-01-01T00:00Z",
		"2026-01-01t00:00:00z", "2026-01-01T00:00:00", "2026-01-01 00:00:00Z", "2026-01-01T24:00:00Z",
		"2026-01-01T00:00:00+2:00", "tomorrow", " 2026-01-01",
	] {
		every key in ["effective", "expires"] {
			order_violations(order_with(key, bad)) == {v(
				sprintf("orders.o1.%s", [key]),
				sprintf("%s %q is neither a date YYYY-MM-DD nor an RFC 3339 date-time (2026-01-01T00:00:00Z, 2026-01-01T09:00:00+02:00)", [key, bad]),
			)}
		}
	}
}

test_validity_dates_out_of_range_are_invalid if {
	order_violations(order_with("effective", "1899-12-31")) == {v("orders.o1.effective", `effective "1899-12-31" is outside the years 1900 to 2199`)}
	order_violations(order_with("expires", "2200-01-01")) == {v("orders.o1.expires", `expires "2200-01-01" is outside the years 1900 to 2199`)}
	order_violations(order_with("effective", "1900-01-01T00:30:00+01:00")) == {v("orders.o1.effective", `effective "1900-01-01T00:30:00+01:00" is outside the years 1900 to 2199`)}
}

test_validity_dates_must_be_strings if {
	order_violations(order_with("effective", 20260101)) == {v("orders.o1.effective", "effective must be a date YYYY-MM-DD or an RFC 3339 date-time, not number")}
	order_violations(order_with("expires", null)) == {v("orders.o1.expires", "expires must be a date YYYY-MM-DD or an RFC 3339 date-time, not null")}
}

test_revocation_needs_a_reason if {
	order_violations(order_with("revoked", {"date": "2026-03-01"})) == {v("orders.o1.revoked.reason", "a revocation must state its reason: reason is required")}
	order_violations(order_with("revoked", {"date": "2026-03-01", "reason": "  "})) == {v("orders.o1.revoked.reason", "a revocation must state its reason: reason must not be empty or only whitespace")}
	order_violations(order_with("revoked", {"date": "2026-03-01", "reason": 1})) == {v("orders.o1.revoked.reason", "a revocation must state its reason: reason must be a string, not number")}
}

test_revocation_needs_a_date if {
	order_violations(order_with("revoked", {"reason": "withdrawn"})) == {v("orders.o1.revoked.date", "a revocation must state its date")}
	order_violations(order_with("revoked", {"date": "2026-02-30", "reason": "withdrawn"})) == {v(
		"orders.o1.revoked.date",
		`date "2026-02-30" is neither a date YYYY-MM-DD nor an RFC 3339 date-time (2026-01-01T00:00:00Z, 2026-01-01T09:00:00+02:00)`,
	)}
}

test_revocation_must_be_an_object_with_known_keys if {
	order_violations(order_with("revoked", true)) == {v("orders.o1.revoked", `revoked must be an object {"date", "reason"}, not boolean`)}
	order_violations(order_with("revoked", {"date": "2026-03-01", "reason": "r", "by": "court"})) == {v(
		"orders.o1.revoked.by",
		`unknown key "by"; allowed: date, reason`,
	)}
}

test_revocation_may_precede_effective if {
	order_violations(object.union(order, {"effective": "2026-06-01", "revoked": {"date": "2026-05-01", "reason": "withdrawn before it took effect"}})) == set()
}
