package tests

import (
	"fmt"
	"strings"
	"testing"
)

// TestLoadLedger is the loopback load run of the ledger: the same requests
// against a server with --ledger off, the SQLite ledger and the PostgreSQL
// ledger. Like TestLoad it runs only with -load:
//
//	go test -count=1 -run '^TestLoadLedger$' ./tests -load -v [-load.duration 10s] [-load.concurrency 8]
func TestLoadLedger(t *testing.T) {
	if !*loadFlag {
		t.Skip("load run: go test ./tests -run TestLoadLedger -load -v")
	}
	tag := lgRandHex(3)
	var decisions, deniedAdmissions, plainAdmissions [][]byte
	for i := range 64 {
		decisions = append(decisions, lgRoster("june4-b", "acct-us-b", "US", "",
			lgPerson{fmt.Sprintf("load-%s-%d-cn1", tag, i), embeddedCN[i%len(embeddedCN)]},
			lgPerson{fmt.Sprintf("load-%s-%d-cn2", tag, i), embeddedCN[(i+1)%len(embeddedCN)]},
			lgPerson{fmt.Sprintf("load-%s-%d-cn3", tag, i), lgCN6()},
			lgPerson{fmt.Sprintf("load-%s-%d-us", tag, i), embeddedUS[i%len(embeddedUS)]}))
		deniedAdmissions = append(deniedAdmissions, lgAdmission("june4-b", "acct-us-b", "US", lgPerson{fmt.Sprintf("load-%s-%d-j", tag, i), embeddedCN[i%len(embeddedCN)]}))
		plainAdmissions = append(plainAdmissions, lgAdmission("june4-b", "acct-us-b", "US", lgPerson{fmt.Sprintf("load-%s-%d-u", tag, i), embeddedUS[i%len(embeddedUS)]}))
	}
	runs := []struct {
		name   string
		path   string
		bodies [][]byte
	}{
		{"decisions, 4 participants, 3 removals (recorded)", "/v1/decisions", decisions},
		{"admission from CN, denied (recorded)", "/v1/admission", deniedAdmissions},
		{"admission from the US, allowed (counted)", "/v1/admission", plainAdmissions},
	}
	var report strings.Builder
	fmt.Fprintf(&report, "concurrency %d, at most %s or %d requests per run\n", *loadConcurrency, *loadDuration, *loadMax)
	for _, mode := range []string{"off", "sqlite", "postgres"} {
		t.Run(mode, func(t *testing.T) {
			var base string
			switch mode {
			case "off":
				base = loadServe(t, "--ledger", "off")
			case "sqlite":
				base = loadServe(t) // SQLite in the harness's data directory (a t.TempDir())
			case "postgres":
				base = loadServe(t, "--ledger", lgPostgres(t).URL(), "--ledger-key-file", lgKeyFile(t))
			}
			for _, r := range runs {
				res := runLoad(t, loadSpec{URL: base + r.path, Bodies: r.bodies, Concurrency: *loadConcurrency, Duration: *loadDuration, Max: *loadMax})
				fmt.Fprintf(&report, "--ledger %-8s %-50s %s\n", mode, r.name, res)
				if res.Errors > 0 {
					t.Errorf("%s: %d errors, first: %s", r.name, res.Errors, res.FirstError)
				}
			}
		})
	}
	t.Log("\n" + report.String())
}
