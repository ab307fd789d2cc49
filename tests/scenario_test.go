package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"go.yaml.in/yaml/v3"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/engine/sources"
)

// Bundle directories as given on the command line, relative to tests/.
var bundleDirs = []string{"../policies", "../bundles/registry"}

// scenario is one tests/scenarios/*.yaml file.
type scenario struct {
	Name        string          `yaml:"name"`
	Description string          `yaml:"description"`
	Options     scenarioOptions `yaml:"options"`
	Request     map[string]any  `yaml:"request"`
	Expect      expectation     `yaml:"expect"`

	file    string
	reqJSON []byte         // Request as JSON, exactly what every run is fed
	req     *input.Request // reqJSON decoded and validated by package input
}

// scenarioOptions are the server options a scenario is decided with.
type scenarioOptions struct {
	// LocatePhoneNumbers is --locate-phone-numbers.
	LocatePhoneNumbers bool `yaml:"locate_phone_numbers"`
	// Extensions are worked examples (docs/extensions/NAME) installed in
	// the policy bundle next to the default policy, as an operator
	// installs them. Such a scenario is decided with bundle directories
	// only: the embedded policy has no extension.
	Extensions []string `yaml:"extensions"`
}

// bundles are the bundle paths (relative to tests/) the scenario is decided
// with when bundles are loaded from directories.
func (sc *scenario) bundles(t *testing.T) []string {
	if len(sc.Options.Extensions) == 0 {
		return bundleDirs
	}
	return []string{extendedPolicyBundle(t, sc.Options.Extensions), "../bundles/registry"}
}

var extendedBundles sync.Map // strings.Join(names, ",") → directory

// extendedPolicyBundle is a policy bundle directory holding the default
// policy and the extension examples names, installed as their READMEs say:
// the default policy's tree copied unchanged, each extension's geoscope/
// tree added to it. It is built once per set of names.
func extendedPolicyBundle(t *testing.T, names []string) string {
	t.Helper()
	key := strings.Join(names, ",")
	if dir, ok := extendedBundles.Load(key); ok {
		return dir.(string)
	}
	parent, err := os.MkdirTemp(scratchDir, "extended-")
	if err != nil {
		t.Fatal(err)
	}
	// Named like the default policy bundle, which decisions report it as.
	dir := filepath.Join(parent, "policies")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile("../policies/.manifest")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".manifest"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	copyTree(t, "../policies/geoscope", filepath.Join(dir, "geoscope"))
	for _, name := range names {
		src := filepath.Join("../docs/extensions", name, "geoscope")
		if _, err := os.Stat(src); err != nil {
			t.Fatalf("extension %q: %v", name, err)
		}
		copyTree(t, src, filepath.Join(dir, "geoscope"))
	}
	actual, _ := extendedBundles.LoadOrStore(key, dir)
	return actual.(string)
}

type expectation struct {
	AllowJoin    *bool         `yaml:"allow_join"`
	OrderIDs     *[]string     `yaml:"order_ids"`
	Actions      *[]expAction  `yaml:"actions"`
	Refused      *[]expRefusal `yaml:"refused"`
	GuardBlocked *[]string     `yaml:"guard_blocked"`
}

// expAction is the part of a decision.Action a scenario pins down. An
// action on a person located by address may leave located_by out: "ip" is
// implied (see loadScenario).
type expAction struct {
	Type          string `yaml:"type"`
	ParticipantID string `yaml:"participant_id"`
	AccountID     string `yaml:"account_id"`
	Host          bool   `yaml:"host"`
	OrderID       string `yaml:"order_id"`
	Country       string `yaml:"country"`
	LocatedBy     string `yaml:"located_by"`
}

func gotAction(a decision.Action) expAction {
	return expAction{
		Type: a.Type, ParticipantID: a.ParticipantID, AccountID: a.AccountID,
		Host: a.Host, OrderID: a.OrderID, Country: a.Country, LocatedBy: a.LocatedBy,
	}
}

func (a expAction) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{type: %s", a.Type)
	if a.ParticipantID != "" {
		fmt.Fprintf(&b, ", participant_id: %s", a.ParticipantID)
	}
	if a.AccountID != "" {
		fmt.Fprintf(&b, ", account_id: %s", a.AccountID)
	}
	if a.Host {
		b.WriteString(", host: true")
	}
	fmt.Fprintf(&b, ", order_id: %s", a.OrderID)
	if a.Country != "" {
		fmt.Fprintf(&b, ", country: %s", a.Country)
	}
	if a.LocatedBy != "" {
		fmt.Fprintf(&b, ", located_by: %s", a.LocatedBy)
	}
	b.WriteString("}")
	return b.String()
}

// expRefusal is the part of a decision.Refusal a scenario pins down.
type expRefusal struct {
	OrderID         string `yaml:"order_id"`
	Demand          string `yaml:"demand"`
	Code            string `yaml:"code"`
	AffectedOutside int    `yaml:"affected_outside"`
}

func (r expRefusal) String() string {
	return fmt.Sprintf("{order_id: %s, demand: %s, code: %s, affected_outside: %d}", r.OrderID, r.Demand, r.Code, r.AffectedOutside)
}

// loadScenarios reads every scenario file strictly: unknown keys, missing
// expectation lists, a second YAML document or an invalid request fail the
// test.
func loadScenarios(t *testing.T) []*scenario {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("scenarios", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenario files in tests/scenarios")
	}
	var out []*scenario
	names := map[string]string{}
	for _, file := range files {
		sc, err := loadScenario(file)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if prev, dup := names[sc.Name]; dup {
			t.Errorf("%s: name %q is already used by %s", file, sc.Name, prev)
			continue
		}
		names[sc.Name] = file
		out = append(out, sc)
	}
	if t.Failed() {
		t.FailNow()
	}
	return out
}

func loadScenario(file string) (*scenario, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var sc scenario
	if err := dec.Decode(&sc); err != nil {
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more than one YAML document (or trailing garbage: %v)", err)
	}
	sc.file = file
	want := strings.TrimSuffix(filepath.Base(file), ".yaml")
	switch {
	case sc.Name != want:
		return nil, fmt.Errorf("name is %q; it must be the file name without .yaml, %q", sc.Name, want)
	case strings.TrimSpace(sc.Description) == "":
		return nil, errors.New("description is required")
	case sc.Request == nil:
		return nil, errors.New("request is required")
	case sc.Expect.OrderIDs == nil:
		return nil, errors.New("expect.order_ids is required (use [] for none)")
	case sc.Expect.Actions == nil:
		return nil, errors.New("expect.actions is required (use [] for none)")
	case sc.Expect.Refused == nil:
		return nil, errors.New("expect.refused is required (use [] for none)")
	case sc.Expect.GuardBlocked == nil:
		return nil, errors.New("expect.guard_blocked is required (use [] for none)")
	}
	if sc.reqJSON, err = json.Marshal(sc.Request); err != nil {
		return nil, fmt.Errorf("request: %v", err)
	}
	if sc.req, err = input.Decode(sc.reqJSON, input.Limits{}); err != nil {
		return nil, fmt.Errorf("request is not a valid decision request: %v", err)
	}
	if joining := sc.req.Joining != nil; joining != (sc.Expect.AllowJoin != nil) {
		return nil, fmt.Errorf("expect.allow_join must be given exactly when the request has joining (joining given: %v)", joining)
	}
	for i, a := range *sc.Expect.Actions {
		if !decision.KnownActionType(a.Type) {
			return nil, fmt.Errorf("expect.actions[%d].type: %q is not an action type", i, a.Type)
		}
		if a.OrderID == "" {
			return nil, fmt.Errorf("expect.actions[%d].order_id is required", i)
		}
		if (a.Type == decision.RemoveParticipant || a.Type == decision.DenyJoin) && a.LocatedBy == "" {
			(*sc.Expect.Actions)[i].LocatedBy = decision.LocatedByIP
		}
	}
	return &sc, nil
}

// scenarioEngine is an in-process engine loaded as `geoscope serve` loads
// one (engine/sources): the bundles at paths (none: the embedded policy
// and example registry) and the GeoIP database at dbPath.
func scenarioEngine(t *testing.T, dbPath string, paths []string, opts ...engine.Option) *engine.Engine {
	t.Helper()
	e := engine.New(opts...)
	src := sources.New(sources.Config{Bundles: paths, GeoIPDB: dbPath, Logger: slog.New(slog.DiscardHandler)}, e)
	if err := src.Load(context.Background()); err != nil {
		t.Fatalf("loading the bundles %v and the GeoIP database %s: %v", paths, dbPath, err)
	}
	return e
}

// runner produces a decision for a scenario one way or another.
type runner struct {
	name string
	// embedded runners decide with the embedded bundles; the others with
	// the scenario's bundle directories.
	embedded bool
	run      func(t *testing.T, sc *scenario, bundles []string) (*decision.Decision, rawDecision)
}

// scenarioEngines are in-process engines by bundle paths and phone
// location, loaded once and shared by the scenarios.
type scenarioEngines struct {
	dbPath string
	mu     sync.Mutex
	byKey  map[string]*engine.Engine
}

func (se *scenarioEngines) get(t *testing.T, paths []string, phones bool) *engine.Engine {
	se.mu.Lock()
	defer se.mu.Unlock()
	key := fmt.Sprint(paths, phones)
	if e, ok := se.byKey[key]; ok {
		return e
	}
	if se.byKey == nil {
		se.byKey = map[string]*engine.Engine{}
	}
	e := scenarioEngine(t, se.dbPath, paths, engine.WithPhoneLocation(phones))
	se.byKey[key] = e
	return e
}

// rawDecision is the decision as top-level JSON fields, for checks on the
// wire shape (nil for in-process runs).
type rawDecision map[string]json.RawMessage

func TestScenarios(t *testing.T) {
	scenarios := loadScenarios(t)
	dbPath := geotest.Standard(t)
	ctx := context.Background()

	engines := &scenarioEngines{dbPath: dbPath}
	inProcess := func(t *testing.T, sc *scenario, bundles []string) (*decision.Decision, rawDecision) {
		req, err := input.Decode(sc.reqJSON, input.Limits{})
		if err != nil {
			t.Fatalf("input.Decode: %v", err)
		}
		d, err := engines.get(t, bundles, sc.Options.LocatePhoneNumbers).Decide(ctx, req)
		if err != nil {
			t.Fatalf("Decide: %v", err)
		}
		return d, nil
	}
	viaCLI := func(stdin bool) func(*testing.T, *scenario, []string) (*decision.Decision, rawDecision) {
		return func(t *testing.T, sc *scenario, bundles []string) (*decision.Decision, rawDecision) {
			args := []string{"decide", "--geoip-db", dbPath}
			for _, b := range bundles {
				args = append(args, "--bundle", b)
			}
			if sc.Options.LocatePhoneNumbers {
				args = append(args, "--locate-phone-numbers")
			}
			var in []byte
			if stdin {
				in = sc.reqJSON
			} else {
				args = append(args, "--input", writeTemp(t, "request.json", sc.reqJSON))
			}
			res := runCLI(t, in, args...)
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("geoscope %s: want exit 0 and nothing on stderr, got %v", strings.Join(args, " "), res)
			}
			return decodeCLIDecision(t, res.stdout)
		}
	}

	runners := []runner{
		{"engine/embedded", true, inProcess},
		{"engine/bundle-dirs", false, inProcess},
		{"cli/embedded/input-file", true, viaCLI(false)},
		{"cli/embedded/stdin", true, viaCLI(true)},
		{"cli/bundle-dirs/input-file", false, viaCLI(false)},
		{"cli/bundle-dirs/stdin", false, viaCLI(true)},
	}
	reg := loadRegistryFiles(t)

	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			// The same bundle content has the same revision however it was
			// loaded (embedded or from the directories).
			var revisions map[string]string
			var revisionsFrom string
			bundles := sc.bundles(t)
			for _, r := range runners {
				var paths []string
				if !r.embedded {
					paths = bundles
				} else if len(sc.Options.Extensions) > 0 {
					continue
				}
				t.Run(r.name, func(t *testing.T) {
					d, raw := r.run(t, sc, paths)
					checkDecision(t, sc, d, raw)
					checkInvariants(t, sc, reg, d)
					if revisions == nil {
						revisions, revisionsFrom = d.Bundles, r.name
					} else if !maps.Equal(revisions, d.Bundles) {
						t.Errorf("bundle revisions %v differ from %v (%s)", d.Bundles, revisions, revisionsFrom)
					}
				})
			}
		})
	}
}

// decodeCLIDecision checks that stdout is exactly one JSON object with only
// the decision's fields and decodes it.
func decodeCLIDecision(t *testing.T, stdout string) (*decision.Decision, rawDecision) {
	t.Helper()
	obj := singleJSONObject(t, stdout)
	var raw rawDecision
	if err := json.Unmarshal(obj, &raw); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.DisallowUnknownFields()
	var d decision.Decision
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("decision JSON does not match the decision contract: %v\n%s", err, stdout)
	}
	return &d, raw
}

// checkDecision compares a decision with the scenario's expectation and
// checks the fields every decision must carry.
func checkDecision(t *testing.T, sc *scenario, d *decision.Decision, raw rawDecision) {
	t.Helper()
	exp := sc.Expect

	// Identity and provenance.
	if id, err := uuid.Parse(d.DecisionID); err != nil || id.String() != d.DecisionID {
		t.Errorf("decision_id %q is not a UUID in canonical form (%v)", d.DecisionID, err)
	}
	if d.Time.IsZero() {
		t.Error("time is zero")
	}
	if d.MeetingID != sc.req.Meeting.ID {
		t.Errorf("meeting_id = %q, want %q", d.MeetingID, sc.req.Meeting.ID)
	}
	if d.Geo.Database != geotest.StandardType {
		t.Errorf("geo.database = %q, want %q", d.Geo.Database, geotest.StandardType)
	}
	if !d.Geo.Build.Equal(geotest.BuildTime) {
		t.Errorf("geo.build = %v, want %v", d.Geo.Build, geotest.BuildTime)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range d.Bundles {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(names, []string{policy.EmbeddedPolicyName, policy.EmbeddedRegistryName}) {
		t.Errorf("bundles = %v, want exactly %q and %q", d.Bundles, policy.EmbeddedPolicyName, policy.EmbeddedRegistryName)
	}
	for name, rev := range d.Bundles {
		if strings.TrimSpace(rev) == "" {
			t.Errorf("bundles[%q] has an empty revision", name)
		}
	}

	// Wire shape: lists are arrays (never null); allow_join only when asked.
	if raw != nil {
		for _, k := range []string{"actions", "refused", "guard_blocked", "order_ids"} {
			if v, ok := raw[k]; !ok || !bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) {
				t.Errorf("%s is %s in the JSON output, want an array", k, orMissing(v, ok))
			}
		}
		if _, ok := raw["allow_join"]; ok != (sc.req.Joining != nil) {
			t.Errorf("allow_join present = %v, want %v (joining given: %v)", ok, sc.req.Joining != nil, sc.req.Joining != nil)
		}
	} else if d.Actions == nil || d.Refused == nil || d.GuardBlocked == nil || d.OrderIDs == nil {
		t.Errorf("a list is nil (would be null in JSON): actions %v, refused %v, guard_blocked %v, order_ids %v",
			d.Actions == nil, d.Refused == nil, d.GuardBlocked == nil, d.OrderIDs == nil)
	}

	// The outcome.
	switch {
	case exp.AllowJoin == nil && d.AllowJoin != nil:
		t.Errorf("allow_join = %v, want absent", *d.AllowJoin)
	case exp.AllowJoin != nil && d.AllowJoin == nil:
		t.Errorf("allow_join absent, want %v", *exp.AllowJoin)
	case exp.AllowJoin != nil && *exp.AllowJoin != *d.AllowJoin:
		t.Errorf("allow_join = %v, want %v", *d.AllowJoin, *exp.AllowJoin)
	}
	if !slices.IsSorted(d.OrderIDs) {
		t.Errorf("order_ids %v are not sorted", d.OrderIDs)
	}
	compareSets(t, "order_ids", *exp.OrderIDs, d.OrderIDs, strings.Compare)

	gotActions := make([]expAction, len(d.Actions))
	for i, a := range d.Actions {
		gotActions[i] = gotAction(a)
		if a.MeetingID != sc.req.Meeting.ID {
			t.Errorf("actions[%d] %v names meeting %q, want %q", i, gotActions[i], a.MeetingID, sc.req.Meeting.ID)
		}
		if len(a.Jurisdiction) == 0 || strings.TrimSpace(a.Reason) == "" {
			t.Errorf("actions[%d] %v lacks a jurisdiction (%v) or a reason (%q)", i, gotActions[i], a.Jurisdiction, a.Reason)
		}
	}
	compareSets(t, "actions", *exp.Actions, gotActions, compareString[expAction])

	gotRefused := make([]expRefusal, len(d.Refused))
	for i, r := range d.Refused {
		gotRefused[i] = expRefusal{OrderID: r.OrderID, Demand: r.Demand, Code: r.Code, AffectedOutside: r.AffectedOutside}
		if strings.TrimSpace(r.Reason) == "" {
			t.Errorf("refused[%d] %v has no reason", i, gotRefused[i])
		}
	}
	compareSets(t, "refused", *exp.Refused, gotRefused, compareString[expRefusal])

	gotBlocked := make([]string, len(d.GuardBlocked))
	for i, b := range d.GuardBlocked {
		gotBlocked[i] = b.Code
	}
	compareSets(t, "guard_blocked", *exp.GuardBlocked, gotBlocked, strings.Compare)
}

func orMissing(v json.RawMessage, ok bool) string {
	if !ok {
		return "missing"
	}
	return string(v)
}

func compareString[T fmt.Stringer](a, b T) int { return strings.Compare(a.String(), b.String()) }

// compareSets compares two lists as multisets and reports the difference.
func compareSets[T comparable](t *testing.T, what string, want, got []T, order func(a, b T) int) {
	t.Helper()
	w, g := slices.SortedFunc(slices.Values(want), order), slices.SortedFunc(slices.Values(got), order)
	if slices.Equal(w, g) {
		return
	}
	var missing, unexpected []T
	for _, x := range w {
		if i := slices.Index(g, x); i >= 0 {
			g = slices.Delete(g, i, i+1)
		} else {
			missing = append(missing, x)
		}
	}
	unexpected = g
	var b strings.Builder
	fmt.Fprintf(&b, "%s differ (want %d, got %d)", what, len(want), len(got))
	for _, x := range missing {
		fmt.Fprintf(&b, "\n  missing:    %v", x)
	}
	for _, x := range unexpected {
		fmt.Fprintf(&b, "\n  unexpected: %v", x)
	}
	t.Error(b.String())
}

// ---------------------------------------------------------------------------
// Invariants, checked against an oracle that does not use the engine: the
// located country comes straight from geotest.StandardEntries and the
// jurisdictions straight from the registry bundle's JSON files.
// ---------------------------------------------------------------------------

type oracleAuthority struct {
	Jurisdiction []string `json:"jurisdiction"`
}

type oracleOrder struct {
	Authority string `json:"authority"`
}

type oracleRegistry struct {
	authorities map[string]oracleAuthority
	orders      map[string]oracleOrder
}

func loadRegistryFiles(t *testing.T) *oracleRegistry {
	t.Helper()
	r := &oracleRegistry{}
	for _, f := range []struct {
		path string
		dst  any
	}{
		{"../bundles/registry/authorities/data.json", &r.authorities},
		{"../bundles/registry/orders/data.json", &r.orders},
	} {
		data, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, f.dst); err != nil {
			t.Fatalf("%s: %v", f.path, err)
		}
	}
	return r
}

// oracleCountry is the located country of an address according to the
// StandardEntries table: empty for unlisted addresses, records without a
// located country, and anycast networks.
func oracleCountry(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	for _, e := range geotest.StandardEntries {
		if netip.MustParsePrefix(e.Network).Contains(a) {
			if e.Anycast {
				return ""
			}
			return e.Country
		}
	}
	return ""
}

// jurisdiction is the registry jurisdiction of the authority behind orderID
// (the preview order's authority when one was submitted), and whether that
// authority is registered at all.
func (r *oracleRegistry) jurisdiction(req *input.Request, orderID string) ([]string, bool) {
	var authority string
	switch {
	case req.Order != nil && req.Order.ID == orderID:
		authority = req.Order.Authority
	case req.Order == nil:
		o, ok := r.orders[orderID]
		if !ok {
			return nil, false
		}
		authority = o.Authority
	default:
		return nil, false
	}
	a, ok := r.authorities[authority]
	return a.Jurisdiction, ok && len(a.Jurisdiction) > 0
}

// oraclePhoneCountries maps the country calling codes the scenarios use to
// their country, independently of the phone number library: a +86 number
// is mainland China, +852 Hong Kong, +853 Macao, +886 Taiwan, +1 the
// numbers the scenarios use in the United States.
var oraclePhoneCountries = []struct{ prefix, country string }{
	{"+852", "HK"}, {"+853", "MO"}, {"+886", "TW"}, {"+86", "CN"}, {"+1202", "US"}, {"+44", "GB"},
}

// oracleLocation is where a person with this address or calling number is
// located: by the StandardEntries table, by the calling code when phone
// numbers are located, and nowhere otherwise.
func oracleLocation(ip, phone string, phones bool) string {
	if ip != "" {
		return oracleCountry(ip)
	}
	if phone == "" || !phones {
		return ""
	}
	for _, p := range oraclePhoneCountries {
		if strings.HasPrefix(phone, p.prefix) {
			return p.country
		}
	}
	return ""
}

// checkInvariants fails t for every invariant violation in d.
func checkInvariants(t *testing.T, sc *scenario, reg *oracleRegistry, d *decision.Decision) {
	t.Helper()
	for _, v := range invariantViolations(sc.req, sc.Options.LocatePhoneNumbers, reg, d) {
		t.Error("INVARIANT: " + v)
	}
}

// invariantViolations: no action names anyone located outside the
// jurisdiction of the order it cites, and no meeting-wide or account action
// is ever taken when anyone it would affect is outside.
func invariantViolations(req *input.Request, phones bool, reg *oracleRegistry, d *decision.Decision) []string {
	var out []string
	errorf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	m := req.Meeting

	// Everyone a meeting-wide or account action would reach.
	type person struct{ id, ip, phone string }
	where := func(p person) string {
		if p.phone != "" {
			return "a calling number"
		}
		return p.ip
	}
	var affected []person
	for _, p := range m.Participants {
		affected = append(affected, person{p.ID, p.IP, p.Phone})
	}
	if m.Host.IP != "" || m.Host.Phone != "" {
		affected = append(affected, person{"host " + m.Host.AccountID, m.Host.IP, m.Host.Phone})
	}
	if req.Joining != nil {
		affected = append(affected, person{"joining " + req.Joining.ID, req.Joining.IP, req.Joining.Phone})
	}

	for i, a := range d.Actions {
		j, ok := reg.jurisdiction(req, a.OrderID)
		if !ok {
			errorf("actions[%d] (%s) cites order %q, which has no registered authority with a jurisdiction", i, a.Type, a.OrderID)
			continue
		}
		if !sameSet(a.Jurisdiction, j) {
			errorf("actions[%d] (%s) states jurisdiction %v; the registry gives %v", i, a.Type, a.Jurisdiction, j)
		}
		switch a.Type {
		case decision.RemoveParticipant, decision.DenyJoin:
			var who person
			found := false
			switch {
			case a.Type == decision.DenyJoin:
				if req.Joining != nil && req.Joining.ID == a.ParticipantID {
					who, found = person{a.ParticipantID, req.Joining.IP, req.Joining.Phone}, true
				}
			case a.Host:
				if m.Host.Connected() && m.Host.AccountID == a.ParticipantID {
					who, found = person{a.ParticipantID, m.Host.IP, m.Host.Phone}, true
				}
			default:
				for _, p := range m.Participants {
					if p.ID == a.ParticipantID {
						who, found = person{p.ID, p.IP, p.Phone}, true
					}
				}
			}
			if !found {
				errorf("actions[%d] %s names %q (host %v), who is not in the request", i, a.Type, a.ParticipantID, a.Host)
				continue
			}
			c := oracleLocation(who.ip, who.phone, phones)
			if c == "" || !slices.Contains(j, c) {
				errorf("actions[%d] %s names %q at %s, located in %q, outside %v", i, a.Type, a.ParticipantID, where(who), c, j)
			}
			if a.Country != c {
				errorf("actions[%d] %s states %q is located in %q; the oracle says %q", i, a.Type, a.ParticipantID, a.Country, c)
			}
			if by := map[bool]string{true: decision.LocatedByPhone, false: decision.LocatedByIP}[who.phone != ""]; a.LocatedBy != by {
				errorf("actions[%d] %s states %q was located by %q, want %q", i, a.Type, a.ParticipantID, a.LocatedBy, by)
			}
		case decision.EndMeeting, decision.SuspendAccount:
			if a.Type == decision.EndMeeting && len(m.Participants) == 0 {
				errorf("actions[%d] ends a meeting that has no participants", i)
			}
			if a.Type == decision.SuspendAccount {
				if a.AccountID != m.Host.AccountID {
					errorf("actions[%d] suspends %q, the host account is %q", i, a.AccountID, m.Host.AccountID)
				}
				if !slices.Contains(j, m.Host.AccountCountry) {
					errorf("actions[%d] suspends an account registered in %q, outside %v", i, m.Host.AccountCountry, j)
				}
			}
			for _, p := range affected {
				if c := oracleLocation(p.ip, p.phone, phones); c == "" || !slices.Contains(j, c) {
					errorf("actions[%d] %s although %s at %s is located in %q, outside %v", i, a.Type, p.id, where(p), c, j)
				}
			}
		default:
			errorf("actions[%d] has unknown type %q", i, a.Type)
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	x, y := slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// TestOracleMatchesDatabase keeps the invariant oracle honest: for every
// address the scenarios use, the oracle and the engine's geo stage agree.
// If they ever disagree, either the oracle or package geo is wrong, and the
// invariants above would be checking the wrong thing.
func TestOracleMatchesDatabase(t *testing.T) {
	db, err := geo.Open(geotest.Standard(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range loadScenarios(t) {
		m := sc.req.Meeting
		ips := []string{m.Host.IP}
		for _, p := range m.Participants {
			ips = append(ips, p.IP)
		}
		if sc.req.Joining != nil {
			ips = append(ips, sc.req.Joining.IP)
		}
		for _, ip := range ips {
			if ip == "" {
				continue
			}
			want := oracleCountry(ip)
			if got := db.Locate(netip.MustParseAddr(ip)).Country; got != want {
				t.Errorf("%s: %s: geo.Locate says %q, the StandardEntries table says %q", sc.Name, ip, got, want)
			}
		}
	}
}

// TestInvariantCheckerCatchesViolations makes sure the invariant check is
// not vacuous: decisions that break it, built by hand, are reported, and a
// correct one is not.
func TestInvariantCheckerCatchesViolations(t *testing.T) {
	reg := loadRegistryFiles(t)
	load := func(name string) *scenario {
		sc, err := loadScenario(filepath.Join("scenarios", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	caseB := load("case2-meeting-b-us-host-many-in-cn")
	caseC := load("case3-meeting-c-hk-host")
	anycast := load("case6-anycast")
	control := load("case5-control-all-in-cn-end-meeting-granted")
	cn := []string{"CN"}
	remove := func(order, id, country string, host bool) decision.Action {
		return decision.Action{Type: decision.RemoveParticipant, ParticipantID: id, Host: host, OrderID: order, Jurisdiction: cn, Country: country}
	}

	for _, tc := range []struct {
		name string
		sc   *scenario
		a    decision.Action
		ok   bool
	}{
		{"remove a CN participant", caseB, remove("CN-2020-0601", "cn-01", "CN", false), true},
		{"end an all-CN meeting", control, decision.Action{Type: decision.EndMeeting, OrderID: "CN-2020-0602", Jurisdiction: cn}, true},
		{"remove a HK participant", caseB, remove("CN-2020-0601", "hk-01", "CN", false), false},
		{"remove the HK host", caseC, remove("CN-2020-0601", "acct-hk-c", "HK", true), false},
		{"remove an anycast participant", anycast, remove("CN-2020-0602", "anycast-relay", "", false), false},
		{"remove someone not in the meeting", caseB, remove("CN-2020-0601", "nobody", "CN", false), false},
		{"misstate the jurisdiction", caseB, decision.Action{Type: decision.RemoveParticipant, ParticipantID: "cn-01", OrderID: "CN-2020-0601", Jurisdiction: []string{"CN", "HK"}, Country: "CN"}, false},
		{"cite an order not in the registry", caseB, remove("CN-9999", "cn-01", "CN", false), false},
		{"end a meeting with people outside", caseB, decision.Action{Type: decision.EndMeeting, OrderID: "CN-2020-0601", Jurisdiction: cn}, false},
		{"end a meeting with an unlocated participant", anycast, decision.Action{Type: decision.EndMeeting, OrderID: "CN-2020-0602", Jurisdiction: cn}, false},
		{"suspend a HK account", caseC, decision.Action{Type: decision.SuspendAccount, AccountID: "acct-hk-c", OrderID: "CN-2020-0601", Jurisdiction: cn, Country: "HK"}, false},
	} {
		if tc.a.Type == decision.RemoveParticipant && tc.a.LocatedBy == "" {
			tc.a.LocatedBy = decision.LocatedByIP
		}
		d := &decision.Decision{Actions: []decision.Action{tc.a}}
		v := invariantViolations(tc.sc.req, tc.sc.Options.LocatePhoneNumbers, reg, d)
		if tc.ok && len(v) > 0 {
			t.Errorf("%s: reported %q for a correct action", tc.name, v)
		}
		if !tc.ok && len(v) == 0 {
			t.Errorf("%s: violation not reported", tc.name)
		}
	}
}

// admissionQuestion is the join-time question of scenario sc as a POST
// /v1/admission body, or nil when sc is not one (a participant joining a
// meeting with nobody connected yet, no host address and no preview order).
func admissionQuestion(t *testing.T, sc *scenario) []byte {
	t.Helper()
	r := sc.req
	if r.Joining == nil || len(r.Meeting.Participants) > 0 || r.Order != nil || r.Meeting.Host.Connected() {
		return nil
	}
	body, err := json.Marshal(input.Admission{
		Meeting: input.AdmissionMeeting{
			ID:   r.Meeting.ID,
			Host: input.AdmissionHost{AccountID: r.Meeting.Host.AccountID, AccountCountry: r.Meeting.Host.AccountCountry},
		},
		Participant: *r.Joining,
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestScenariosAdmission asks the join-time question of every scenario that
// is one (a participant joining a meeting with nobody connected yet and no
// preview order) through the engine's admission path, which carries no
// roster: the joiner must get the same answer as from the full decision,
// with the same deny_join actions and nothing about the meeting as a whole.
func TestScenariosAdmission(t *testing.T) {
	ctx := context.Background()
	engines := &scenarioEngines{dbPath: geotest.Standard(t)}
	reg := loadRegistryFiles(t)

	n := 0
	for _, sc := range loadScenarios(t) {
		body := admissionQuestion(t, sc)
		if body == nil {
			continue
		}
		n++
		t.Run(sc.Name, func(t *testing.T) {
			req, err := input.DecodeAdmission(body)
			if err != nil {
				t.Fatalf("DecodeAdmission: %v", err)
			}
			var paths []string
			if len(sc.Options.Extensions) > 0 {
				paths = sc.bundles(t)
			}
			d, err := engines.get(t, paths, sc.Options.LocatePhoneNumbers).Admit(ctx, req)
			if err != nil {
				t.Fatalf("Admit: %v", err)
			}
			if d.AllowJoin == nil || *d.AllowJoin != *sc.Expect.AllowJoin {
				t.Errorf("allow_join = %v, want %v", fmtBoolPtr(d.AllowJoin), *sc.Expect.AllowJoin)
			}
			var want []expAction
			for _, a := range *sc.Expect.Actions {
				if a.Type == decision.DenyJoin {
					want = append(want, a)
				}
			}
			got := make([]expAction, len(d.Actions))
			for i, a := range d.Actions {
				got[i] = gotAction(a)
			}
			compareSets(t, "admission actions", want, got, compareString[expAction])
			if len(d.Refused) != 0 || len(d.GuardBlocked) != 0 {
				t.Errorf("admission refused %+v, guard_blocked %+v; want neither", d.Refused, d.GuardBlocked)
			}
			compareSets(t, "order_ids", *sc.Expect.OrderIDs, d.OrderIDs, strings.Compare)
			for _, v := range invariantViolations(sc.req, sc.Options.LocatePhoneNumbers, reg, d) {
				t.Error("INVARIANT: " + v)
			}
		})
	}
	if n == 0 {
		t.Fatal("no scenario asks a join-time question without a roster")
	}
}

func fmtBoolPtr(b *bool) string {
	if b == nil {
		return "absent"
	}
	return fmt.Sprint(*b)
}
