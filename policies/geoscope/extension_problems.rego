package geoscope

# METADATA
# title: Extension problems
# description: |
#   What is wrong with the entries the extension rules returned for the
#   current input, one message each; empty when they are well formed. A
#   malformed entry fails safe where it can (an operator refusal with a bad
#   code still withholds its demand), but an entry that names no order
#   withholds nothing, so extension tests should assert that this set is
#   empty for their inputs. Nothing on the decision path reads it.
extension_problems contains sprintf("exempt: %s is not a participant id (a string)", [quoted_entry(id)]) if {
	some id in exempt_ids
	not is_string(id)
}

extension_problems contains entry_problem(kind, entry, "must be an object") if {
	some [kind, entry] in extension_entries
	not is_object(entry)
}

extension_problems contains entry_problem(kind, entry, text) if {
	some [kind, entry] in extension_entries
	is_object(entry)
	some key, _ in entry
	not key in entry_keys[kind]
	text := sprintf("unknown key %q; allowed: %s", [key, concat(", ", sort(entry_keys[kind]))])
}

extension_problems contains entry_problem(kind, entry, "order_id must be a non-empty string") if {
	some [kind, entry] in extension_entries
	is_object(entry)
	not non_blank(object.get(entry, "order_id", null))
}

extension_problems contains entry_problem(kind, entry, text) if {
	some [kind, entry] in extension_entries
	is_object(entry)
	d := object.get(entry, "demand", null)
	d != null
	not d in demands
	text := sprintf("demand must be one of %s", [concat(", ", sort(demands))])
}

extension_problems contains entry_problem(kind, entry, "reason must be a non-empty string") if {
	some [kind, entry] in extension_entries
	is_object(entry)
	not non_blank(object.get(entry, "reason", null))
}

extension_problems contains entry_problem("refusals", entry, text) if {
	some entry in operator_refusals
	is_object(entry)
	not valid_operator_code(object.get(entry, "code", null))
	text := "code must be lower_snake_case, at most 64 bytes, and not a built-in code (the demand is withheld under code \"withheld\")"
}

extension_entries contains ["withheld", entry] if some entry in withheld_entries

extension_entries contains ["refusals", entry] if some entry in operator_refusals

entry_keys := {
	"withheld": {"order_id", "demand", "reason"},
	"refusals": {"order_id", "demand", "code", "reason"},
}

entry_problem(kind, entry, text) := sprintf("%s %s: %s", [kind, quoted_entry(entry), text])

# An entry as a problem quotes it: its JSON, cut to its first 64
# characters. A rule may return much more than it meant to (an entry that
# holds input.meeting holds the whole roster), and each problem is one
# line of geoscope decide's warnings.
quoted_entry(entry) := text if {
	text := json.marshal(entry)
	count(text) <= 64
} else := concat("", [substring(json.marshal(entry), 0, 64), "…"])

non_blank(s) if {
	is_string(s)
	trim_space(s) != ""
}
