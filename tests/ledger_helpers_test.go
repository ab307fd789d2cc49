package tests

// Helpers of the ledger end-to-end tests (ledger_*_test.go): a ready
// geoscope server (server_helpers_test.go's serverProc, which the tests
// kill and restart on the same ledger), request builders with addresses
// from the embedded GeoIP database, and the PostgreSQL server from
// internal/pgtest.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geoscope/geoscope/internal/pgtest"
)

// lgPostgres starts a private PostgreSQL server for a test of the
// PostgreSQL ledger.
func lgPostgres(t *testing.T) *pgtest.Server {
	t.Helper()
	return pgtest.New(t)
}

// lgStart starts `geoscope serve` with args (which must choose the ledger:
// --data-dir, and --ledger for PostgreSQL) and waits until it is ready.
// The ledger tests kill it (stop(syscall.SIGKILL)) and restart it on the
// same ledger.
func lgStart(t *testing.T, args ...string) *serverProc {
	t.Helper()
	return startServe(t, serveOpts{args: args, ready: true})
}

// lgAnswer is the part of a decision or admission answer the ledger tests
// look at.
type lgAnswer struct {
	DecisionID   string            `json:"decision_id"`
	Allow        *bool             `json:"allow"`
	Actions      []json.RawMessage `json:"actions"`
	Refused      []json.RawMessage `json:"refused"`
	GuardBlocked []json.RawMessage `json:"guard_blocked"`
	Code         string            `json:"code"` // errors
}

func lgDecode(t *testing.T, raw []byte) lgAnswer {
	t.Helper()
	var a lgAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, raw)
	}
	return a
}

// durable reports whether the answer is stored as its own ledger entry
// (anything to do, refuse or block, or a denied admission).
func (a lgAnswer) durable() bool {
	return len(a.Actions) > 0 || len(a.Refused) > 0 || len(a.GuardBlocked) > 0 || (a.Allow != nil && !*a.Allow)
}

// lgPerson is a participant (or the connected host) and its address.
type lgPerson struct{ ID, IP string }

// lgRoster is a decision request for meeting with the host account
// (connected from hostIP unless empty) and participants.
func lgRoster(meeting, account, accountCountry, hostIP string, participants ...lgPerson) []byte {
	host := map[string]any{"account_id": account, "account_country": accountCountry}
	if hostIP != "" {
		host["ip"] = hostIP
	}
	ps := make([]map[string]string, len(participants))
	for i, p := range participants {
		ps[i] = map[string]string{"id": p.ID, "ip": p.IP}
	}
	raw, _ := json.Marshal(map[string]any{"meeting": map[string]any{"id": meeting, "host": host, "participants": ps}})
	return raw
}

// lgAdmission is an admission request.
func lgAdmission(meeting, account, accountCountry string, p lgPerson) []byte {
	raw, _ := json.Marshal(map[string]any{
		"meeting":     map[string]any{"id": meeting, "host": map[string]any{"account_id": account, "account_country": accountCountry}},
		"participant": map[string]string{"id": p.ID, "ip": p.IP},
	})
	return raw
}

func lgRandInt(n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		panic(err)
	}
	return v.Int64()
}

func lgRandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Random addresses inside ranges of the embedded DB-IP database (checked
// by TestLedgerAddressesLocate). Host parts stay above 100, so an address
// is never a substring of its /24 or of another address.

// lgCN4 is in 202.96.0.0/12 (CN).
func lgCN4() string {
	return fmt.Sprintf("202.%d.%d.%d", 96+lgRandInt(16), 100+lgRandInt(155), 100+lgRandInt(155))
}

// lgCN6 is in 240e::/21 (CN).
func lgCN6() string {
	return fmt.Sprintf("240e:%x:%s", 0x100+lgRandInt(0x6ff), lgGroups(6))
}

// lgUS4 is in 8.8.0.0/17 (US).
func lgUS4() string { return fmt.Sprintf("8.8.%d.%d", 10+lgRandInt(117), 100+lgRandInt(155)) }

// lgHK4 is in 147.8.0.0/16 (HK).
func lgHK4() string { return fmt.Sprintf("147.8.%d.%d", 10+lgRandInt(245), 100+lgRandInt(155)) }

// lgCA6 is in 2001:4860:4840::/42 (CA).
func lgCA6() string { return "2001:4860:4860:" + lgGroups(5) }

// lgGroups is n random four-digit IPv6 groups.
func lgGroups(n int) string {
	g := make([]string, n)
	for i := range g {
		g[i] = fmt.Sprintf("%x", 0x1000+lgRandInt(0xefff))
	}
	return strings.Join(g, ":")
}

func TestLedgerAddressesLocate(t *testing.T) {
	for _, c := range []struct {
		gen     func() string
		country string
	}{{lgCN4, "CN"}, {lgCN6, "CN"}, {lgUS4, "US"}, {lgHK4, "HK"}, {lgCA6, "CA"}} {
		ip := c.gen()
		res := runCLI(t, nil, "geoip", "lookup", ip)
		var got struct {
			Country string `json:"country"`
		}
		if res.code != 0 || json.Unmarshal([]byte(res.stdout), &got) != nil || got.Country != c.country {
			t.Errorf("geoip lookup %s: want %s\n%s", ip, c.country, res)
		}
	}
}

// lgSQLiteDSN is a database/sql DSN for the SQLite file at path, with
// options (e.g. "mode=ro").
func lgSQLiteDSN(path, options string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + options
}

// lgExport runs `geoscope ledger export` on a ledger and returns the
// decision ids it lists.
func lgExport(t *testing.T, ledgerArgs ...string) map[string]bool {
	t.Helper()
	res := runBounded(t, 2*time.Minute, append([]string{"ledger", "export", "--format", "jsonl"}, ledgerArgs...)...)
	if res.code != 0 {
		t.Fatalf("geoscope ledger export %s: %s", strings.Join(ledgerArgs, " "), res)
	}
	ids := map[string]bool{}
	dec := json.NewDecoder(strings.NewReader(res.stdout))
	for dec.More() {
		var e struct {
			DecisionID string `json:"decision_id"`
		}
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("export output: %v", err)
		}
		ids[e.DecisionID] = true
	}
	return ids
}

// lgCheckRecorded checks, through GET /v1/ledger/{id}, that every id is in
// the ledger, and returns how many are.
func lgCheckRecorded(t *testing.T, s *serverProc, ids []string) int {
	t.Helper()
	var (
		mu      sync.Mutex
		found   int
		missing []string
		wg      sync.WaitGroup
		work    = make(chan string)
	)
	for range 8 {
		wg.Go(func() {
			for id := range work {
				r, err := s.do(http.MethodGet, "/v1/ledger/"+id, "", "", nil)
				mu.Lock()
				if err == nil && r.status == http.StatusOK && strings.Contains(string(r.body), id) {
					found++
				} else {
					missing = append(missing, fmt.Sprintf("%s (HTTP %d, %v: %.200s)", id, r.status, err, r.body))
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	if len(missing) > 0 {
		t.Errorf("%d of %d answered decisions are not in the ledger, e.g. %s", len(missing), len(ids), strings.Join(missing[:min(5, len(missing))], "; "))
	}
	return found
}

// lgKeyFile writes a ledger key for a test: a PostgreSQL ledger shared by
// replicas needs one given explicitly (none is generated).
func lgKeyFile(t *testing.T) string {
	t.Helper()
	return writeTemp(t, "ledger.key", []byte(strings.Repeat("0123456789abcdef", 4)))
}
