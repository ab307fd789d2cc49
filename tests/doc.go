// Package tests holds geoscope's end-to-end tests: the 2020 founding cases
// and related situations as scenario data files (scenarios/*.yaml), run
// through the engine in-process and through the real geoscope binary, and
// the command line's error contract.
//
// A scenario file has exactly these keys:
//
//	name:        the file name without ".yaml"
//	description: what happened and what geoscope must do, in plain words
//	request:     the decision request, exactly as sent to geoscope (JSON
//	             written as YAML); addresses come only from the test GeoIP
//	             database (engine/geo/geotest StandardEntries) or are
//	             deliberately outside it
//	expect:
//	  allow_join:    true/false; present exactly when the request has "joining"
//	  order_ids:     the orders evaluated (standing orders or the preview order)
//	  actions:       every action, each with type, participant_id or
//	                 account_id, host (only when true), order_id, country
//	  refused:       every refused demand: order_id, demand, code,
//	                 affected_outside
//	  guard_blocked: codes of actions the Go guard removed (normally empty)
//
// Lists are compared as sets; reason texts, decision ids and times are not
// compared.
package tests
