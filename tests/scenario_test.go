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
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// scenario is one tests/scenarios/*.yaml file.
type scenario struct {
	Name        string          `yaml:"name"`
	Description string          `yaml:"description"`
	Options     scenarioOptions `yaml:"options"`
	Request     map[string]any  `yaml:"request"`
	Expect      expectation     `yaml:"expect"`

	file string
	// policyDir is the policy bundle of a scenario with extensions.
	policyDir string
	reqJSON   []byte         // Request as JSON, exactly what every run is fed
	req       *input.Request // reqJSON decoded and validated by package input
}

// scenarioOptions are the server options a scenario is decided with.
type scenarioOptions struct {
	// LocatePhoneNumbers is --locate-phone-numbers.
	LocatePhoneNumbers bool `yaml:"locate_phone_numbers"`
	// Extensions are worked examples (docs/extensions/NAME) installed in
	// the policy bundle next to the default policy, as an operator
	// installs them; every run then loads that policy bundle from its
	// directory (the embedded policy has no extension).
	Extensions []string `yaml:"extensions"`
	// Registry names a registry bundle under tests/scenarios/registries/
	// used instead of the example registry (the policy is then loaded
	// from ../policies by every runner).
	Registry string `yaml:"registry"`
	// GeoIP is the test database: "country" (the default,
	// geotest.Standard) or "city" (geotest.StandardCity, with subdivisions).
	GeoIP string `yaml:"geoip"`
	// Time is when the scenario is decided, RFC 3339 (decide --at);
	// without it, now. A server decides now, so the server runs leave out
	// the scenarios that set it.
	Time string `yaml:"time"`

	at time.Time // Time parsed
}

const (
	geoCountry = "country"
	geoCity    = "city"
)

type expectation struct {
	AllowJoin        *bool            `yaml:"allow_join"`
	OrderIDs         *[]string        `yaml:"order_ids"`
	OrdersNotInForce *[]expNotInForce `yaml:"orders_not_in_force"`
	Actions          *[]expAction     `yaml:"actions"`
	Refused          *[]expRefusal    `yaml:"refused"`
	GuardBlocked     *[]string        `yaml:"guard_blocked"`
}

// expNotInForce is an order that targets the meeting but is not in force
// at the scenario's time.
type expNotInForce struct {
	OrderID string `yaml:"order_id"`
	Status  string `yaml:"status"`
}

func (o expNotInForce) String() string {
	return fmt.Sprintf("{order_id: %s, status: %s}", o.OrderID, o.Status)
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
	// Subdivisions are the located subdivisions, comma-separated in the
	// order the action states them ("GB-ENG,GB-LND"), empty for none.
	Subdivisions string `yaml:"subdivisions"`
}

func gotAction(a decision.Action) expAction {
	return expAction{
		Type: a.Type, ParticipantID: a.ParticipantID, AccountID: a.AccountID,
		Host: a.Host, OrderID: a.OrderID, Country: a.Country, LocatedBy: a.LocatedBy,
		Subdivisions: strings.Join(a.Subdivisions, ","),
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
	if a.Subdivisions != "" {
		fmt.Fprintf(&b, ", subdivisions: %s", a.Subdivisions)
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
		if len(sc.Options.Extensions) > 0 {
			sc.policyDir = extendedPolicyBundle(t, sc.Options.Extensions)
		}
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
	case sc.Expect.OrdersNotInForce == nil:
		return nil, errors.New("expect.orders_not_in_force is required (use [] for none)")
	case sc.Expect.Actions == nil:
		return nil, errors.New("expect.actions is required (use [] for none)")
	case sc.Expect.Refused == nil:
		return nil, errors.New("expect.refused is required (use [] for none)")
	case sc.Expect.GuardBlocked == nil:
		return nil, errors.New("expect.guard_blocked is required (use [] for none)")
	}
	switch sc.Options.GeoIP {
	case "":
		sc.Options.GeoIP = geoCountry
	case geoCountry, geoCity:
	default:
		return nil, fmt.Errorf("options.geoip: %q is not %q or %q", sc.Options.GeoIP, geoCountry, geoCity)
	}
	if sc.Options.Registry != "" {
		if fi, err := os.Stat(sc.registryDir()); err != nil || !fi.IsDir() || strings.ContainsAny(sc.Options.Registry, `/\.`) {
			return nil, fmt.Errorf("options.registry: %q is not a directory under scenarios/registries", sc.Options.Registry)
		}
	}
	if sc.Options.Time != "" {
		if sc.Options.at, err = time.Parse(time.RFC3339, sc.Options.Time); err != nil {
			return nil, fmt.Errorf("options.time: %v", err)
		}
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

// registryDir is the registry bundle the scenario is decided with.
func (sc *scenario) registryDir() string {
	if sc.Options.Registry == "" {
		return registryDir
	}
	return filepath.Join("scenarios", "registries", sc.Options.Registry)
}

// bundles are the bundle paths of a run: for the "embedded" runs none (the
// embedded policy and example registry) unless the scenario names a
// registry of its own.
func (sc *scenario) bundles(embedded bool) []string {
	if embedded && sc.Options.Registry == "" && len(sc.Options.Extensions) == 0 {
		return nil
	}
	policy := "../policies"
	if sc.policyDir != "" {
		policy = sc.policyDir
	}
	return []string{policy, sc.registryDir()}
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

// scenarioDBs are the test GeoIP databases, by options.geoip.
type scenarioDBs map[string]string

func newScenarioDBs(t *testing.T) scenarioDBs {
	return scenarioDBs{geoCountry: geotest.Standard(t), geoCity: geotest.StandardCity(t)}
}

// scenarioEngines builds in-process engines for scenarios, one per set of
// options, on first use.
type scenarioEngines struct {
	dbs scenarioDBs
	mu  sync.Mutex
	m   map[string]*engine.Engine
}

// get is the engine for sc, with the embedded bundles or the directories.
func (es *scenarioEngines) get(t *testing.T, sc *scenario, embedded bool) *engine.Engine {
	t.Helper()
	key := fmt.Sprint(sc.bundles(embedded), sc.Options.GeoIP, sc.Options.LocatePhoneNumbers, sc.Options.Time)
	es.mu.Lock()
	defer es.mu.Unlock()
	if e, ok := es.m[key]; ok {
		return e
	}
	opts := []engine.Option{engine.WithPhoneLocation(sc.Options.LocatePhoneNumbers)}
	if at := sc.Options.at; !at.IsZero() {
		opts = append(opts, engine.WithClock(func() time.Time { return at }))
	}
	e := scenarioEngine(t, es.dbs[sc.Options.GeoIP], sc.bundles(embedded), opts...)
	if es.m == nil {
		es.m = map[string]*engine.Engine{}
	}
	es.m[key] = e
	return e
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
	run  func(t *testing.T, sc *scenario) (*decision.Decision, rawDecision)
}

// rawDecision is the decision as top-level JSON fields, for checks on the
// wire shape (nil for in-process runs).
type rawDecision map[string]json.RawMessage

func TestScenarios(t *testing.T) {
	scenarios := loadScenarios(t)
	dbs := newScenarioDBs(t)
	engines := &scenarioEngines{dbs: dbs}
	ctx := context.Background()

	inProcess := func(embedded bool) func(*testing.T, *scenario) (*decision.Decision, rawDecision) {
		return func(t *testing.T, sc *scenario) (*decision.Decision, rawDecision) {
			req, err := input.Decode(sc.reqJSON, input.Limits{})
			if err != nil {
				t.Fatalf("input.Decode: %v", err)
			}
			d, err := engines.get(t, sc, embedded).Decide(ctx, req)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			return d, nil
		}
	}
	viaCLI := func(stdin, embedded bool) func(*testing.T, *scenario) (*decision.Decision, rawDecision) {
		return func(t *testing.T, sc *scenario) (*decision.Decision, rawDecision) {
			args := []string{"decide", "--geoip-db", dbs[sc.Options.GeoIP]}
			for _, b := range sc.bundles(embedded) {
				args = append(args, "--bundle", b)
			}
			if sc.Options.LocatePhoneNumbers {
				args = append(args, "--locate-phone-numbers")
			}
			if sc.Options.Time != "" {
				args = append(args, "--at", sc.Options.Time)
			}
			var in []byte
			if stdin {
				in = sc.reqJSON
			} else {
				args = append(args, "--input", writeTemp(t, "request.json", sc.reqJSON))
			}
			res := runCLI(t, in, args...)
			if res.code != 0 || !expectedStderr(t, sc, res.stderr) {
				t.Fatalf("geoscope %s: want exit 0 and nothing on stderr, got %v", strings.Join(args, " "), res)
			}
			return decodeCLIDecision(t, res.stdout)
		}
	}

	runners := []runner{
		{"engine/embedded", inProcess(true)},
		{"engine/bundle-dirs", inProcess(false)},
		{"cli/embedded/input-file", viaCLI(false, true)},
		{"cli/embedded/stdin", viaCLI(true, true)},
		{"cli/bundle-dirs/input-file", viaCLI(false, false)},
		{"cli/bundle-dirs/stdin", viaCLI(true, false)},
	}

	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			// The same bundle content has the same revision however it was
			// loaded (embedded or from the directories).
			var revisions map[string]string
			var revisionsFrom string
			for _, r := range runners {
				t.Run(r.name, func(t *testing.T) {
					d, raw := r.run(t, sc)
					checkDecision(t, sc, d, raw)
					checkInvariants(t, sc, d)
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

// expectedStderr reports whether decide's stderr is what the scenario
// leads to: nothing, or the one warning that the registry's subdivision
// jurisdictions act on nobody with a Country database.
func expectedStderr(t *testing.T, sc *scenario, stderr string) bool {
	t.Helper()
	if stderr == "" {
		return true
	}
	if sc.Options.GeoIP != geoCountry || !loadRegistryFiles(t, sc.registryDir()).hasSubdivisions() {
		return false
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	var rec struct{ Level, Msg string }
	return len(lines) == 1 && json.Unmarshal([]byte(lines[0]), &rec) == nil && rec.Level == "WARN" &&
		strings.Contains(rec.Msg, "is a Country database, which locates nobody in a subdivision")
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
	if at := sc.Options.at; !at.IsZero() && !d.Time.Equal(at) {
		t.Errorf("time = %s, want the scenario's %s", d.Time, at)
	}
	if d.MeetingID != sc.req.Meeting.ID {
		t.Errorf("meeting_id = %q, want %q", d.MeetingID, sc.req.Meeting.ID)
	}
	if want := map[string]string{geoCountry: geotest.StandardType, geoCity: geotest.StandardCityType}[sc.Options.GeoIP]; d.Geo.Database != want {
		t.Errorf("geo.database = %q, want %q", d.Geo.Database, want)
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
	// A bundle is named after its directory; a scenario's own registry
	// after its name.
	want := []string{policy.EmbeddedPolicyName, policy.EmbeddedRegistryName}
	if sc.Options.Registry != "" {
		want = slices.Sorted(slices.Values([]string{policy.EmbeddedPolicyName, sc.Options.Registry}))
	}
	if !slices.Equal(names, want) {
		t.Errorf("bundles = %v, want exactly %q", d.Bundles, want)
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
	gotNotInForce := make([]expNotInForce, len(d.OrdersNotInForce))
	for i, o := range d.OrdersNotInForce {
		gotNotInForce[i] = expNotInForce{OrderID: o.OrderID, Status: o.Status}
		if i > 0 && d.OrdersNotInForce[i-1].OrderID >= o.OrderID {
			t.Errorf("orders_not_in_force %v are not sorted by id", d.OrdersNotInForce)
		}
	}
	compareSets(t, "orders_not_in_force", *exp.OrdersNotInForce, gotNotInForce, compareString[expNotInForce])
	if raw != nil {
		if v, ok := raw["orders_not_in_force"]; ok == (len(*exp.OrdersNotInForce) == 0) {
			t.Errorf("orders_not_in_force is %s in the JSON output; want it exactly when an order is not in force", orMissing(v, ok))
		}
	}

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
// located country (and subdivisions) come straight from the geotest
// tables, the jurisdictions and the orders straight from the registry
// bundle's JSON files, and whether an order is in force from the dates
// they state, read here by the rules docs/registry.md gives (date-only
// values are UTC days: effective from the start of its day, expires
// through the end of its day, revoked from the start of its day).
// ---------------------------------------------------------------------------

type oracleAuthority struct {
	Jurisdiction []string `json:"jurisdiction"`
}

type oracleOrder struct {
	Authority string `json:"authority"`
	Targets   struct {
		Meetings    []string `json:"meetings"`
		Accounts    []string `json:"accounts"`
		AllMeetings bool     `json:"all_meetings"`
	} `json:"targets"`
	Effective string `json:"effective"`
	Expires   string `json:"expires"`
	Revoked   *struct {
		Date string `json:"date"`
	} `json:"revoked"`
}

type oracleRegistry struct {
	authorities map[string]oracleAuthority
	orders      map[string]oracleOrder
}

var oracleRegistries sync.Map // directory → *oracleRegistry

// loadRegistryFiles reads the registry bundle in dir.
func loadRegistryFiles(t *testing.T, dir string) *oracleRegistry {
	t.Helper()
	if r, ok := oracleRegistries.Load(dir); ok {
		return r.(*oracleRegistry)
	}
	r := &oracleRegistry{}
	for _, f := range []struct {
		path string
		dst  any
	}{
		{filepath.Join(dir, "authorities", "data.json"), &r.authorities},
		{filepath.Join(dir, "orders", "data.json"), &r.orders},
	} {
		data, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, f.dst); err != nil {
			t.Fatalf("%s: %v", f.path, err)
		}
	}
	oracleRegistries.Store(dir, r)
	return r
}

func (r *oracleRegistry) hasSubdivisions() bool {
	for _, a := range r.authorities {
		for _, code := range a.Jurisdiction {
			if strings.Contains(code, "-") {
				return true
			}
		}
	}
	return false
}

// oracleInstant is the instant a validity date names: the start of a
// date-only day (or, with end, the start of the next day), or the RFC
// 3339 instant.
func oracleInstant(s string, end bool) time.Time {
	if d, err := time.Parse("2006-01-02", s); err == nil {
		if end {
			return d.AddDate(0, 0, 1)
		}
		return d
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(fmt.Sprintf("the oracle cannot read the date %q: %v", s, err))
	}
	return t
}

// status is the order's status at t.
func (o oracleOrder) status(t time.Time) string {
	switch {
	case o.Revoked != nil && !t.Before(oracleInstant(o.Revoked.Date, false)):
		return "revoked"
	case o.Effective != "" && t.Before(oracleInstant(o.Effective, false)):
		return "not_yet_effective"
	case o.Expires != "" && !t.Before(oracleInstant(o.Expires, true)):
		return "expired"
	}
	return "in_force"
}

func (o oracleOrder) targets(meeting, account string) bool {
	return o.Targets.AllMeetings || slices.Contains(o.Targets.Meetings, meeting) || (account != "" && slices.Contains(o.Targets.Accounts, account))
}

// previewOracle is the submitted preview order in the oracle's shape.
func previewOracle(o *input.Order) oracleOrder {
	var po oracleOrder
	po.Authority = o.Authority
	po.Targets.Meetings, po.Targets.Accounts, po.Targets.AllMeetings = o.Targets.Meetings, o.Targets.Accounts, o.Targets.AllMeetings
	po.Effective, po.Expires = o.Effective, o.Expires
	if o.Revoked != nil {
		po.Revoked = &struct {
			Date string `json:"date"`
		}{o.Revoked.Date}
	}
	return po
}

// underEvaluation are the orders the decision must have evaluated (in
// force at t) and those it must report not in force, by id: the preview
// order, or the registry's orders targeting the meeting, its account or
// every meeting.
func (r *oracleRegistry) underEvaluation(req *input.Request, t time.Time) (inForce map[string]oracleOrder, notInForce map[string]string) {
	inForce, notInForce = map[string]oracleOrder{}, map[string]string{}
	orders := r.orders
	if req.Order != nil {
		orders = map[string]oracleOrder{req.Order.ID: previewOracle(req.Order)}
	}
	for id, o := range orders {
		if req.Order == nil && !o.targets(req.Meeting.ID, req.Meeting.Host.AccountID) {
			continue
		}
		if st := o.status(t); st != "in_force" {
			notInForce[id] = st
		} else {
			inForce[id] = o
		}
	}
	return inForce, notInForce
}

// oraclePlace is where a person is located.
type oraclePlace struct {
	country      string
	subdivisions []string
}

func (p oraclePlace) String() string {
	if len(p.subdivisions) == 0 {
		return fmt.Sprintf("%q", p.country)
	}
	return fmt.Sprintf("%q (%s)", p.country, strings.Join(p.subdivisions, ", "))
}

// inside: located in a country of the jurisdiction or one of its
// subdivisions; never at an unknown location.
func (p oraclePlace) inside(j []string) bool {
	if p.country == "" {
		return false
	}
	if slices.Contains(j, p.country) {
		return true
	}
	return slices.ContainsFunc(p.subdivisions, func(s string) bool { return slices.Contains(j, s) })
}

var oracleISOSuffix = regexp.MustCompile(`^[A-Za-z0-9]{1,3}$`)

// oracleEntries is the geotest table of a database kind.
func oracleEntries(geoip string) []geotest.Entry {
	if geoip == geoCity {
		return geotest.StandardCityEntries
	}
	return geotest.StandardEntries
}

// oracleLocate is where an address is located according to the table:
// nowhere for unlisted addresses, records without a located country, and
// anycast networks; subdivisions are the country and each well-formed
// iso_code of the record.
func oracleLocate(ip, geoip string) oraclePlace {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return oraclePlace{}
	}
	a = a.Unmap()
	for _, e := range oracleEntries(geoip) {
		if netip.MustParsePrefix(e.Network).Contains(a) {
			if e.Anycast || e.Country == "" {
				return oraclePlace{}
			}
			p := oraclePlace{country: e.Country}
			for _, iso := range e.Subdivisions {
				if oracleISOSuffix.MatchString(iso) {
					p.subdivisions = append(p.subdivisions, e.Country+"-"+strings.ToUpper(iso))
				}
			}
			return p
		}
	}
	return oraclePlace{}
}

// oraclePhoneCountries maps the country calling codes the scenarios use to
// their country, independently of the phone number library: a +86 number
// is mainland China, +852 Hong Kong, +853 Macao, +886 Taiwan, +1 the
// numbers the scenarios use in the United States.
var oraclePhoneCountries = []struct{ prefix, country string }{
	{"+852", "HK"}, {"+853", "MO"}, {"+886", "TW"}, {"+86", "CN"}, {"+1202", "US"}, {"+44", "GB"},
}

// oracleLocation is where a person with this address or calling number is
// located: by the table, by the calling code (a country, never a
// subdivision) when phone numbers are located, and nowhere otherwise.
func oracleLocation(ip, phone string, phones bool, geoip string) oraclePlace {
	if ip != "" {
		return oracleLocate(ip, geoip)
	}
	if phone == "" || !phones {
		return oraclePlace{}
	}
	for _, p := range oraclePhoneCountries {
		if strings.HasPrefix(phone, p.prefix) {
			return oraclePlace{country: p.country}
		}
	}
	return oraclePlace{}
}

// checkInvariants fails t for every invariant violation in d.
func checkInvariants(t *testing.T, sc *scenario, d *decision.Decision) {
	t.Helper()
	for _, v := range invariantViolations(sc, loadRegistryFiles(t, sc.registryDir()), d, true) {
		t.Error("INVARIANT: " + v)
	}
}

// when is the scenario's decision time: options.time, or the decision's
// own for a scenario decided now (d.Time is checked against the clock
// elsewhere).
func (sc *scenario) when(d *decision.Decision) time.Time {
	if !sc.Options.at.IsZero() {
		return sc.Options.at
	}
	return d.Time
}

// invariantViolations: the orders evaluated are exactly those in force
// that target the meeting, and the others are reported (withNotInForce:
// the answer carries that list); every action cites an order in force; no
// action names anyone located outside the jurisdiction of the order it
// cites; no meeting-wide or account action is ever taken when anyone it
// would affect is outside, or through a service-wide order.
func invariantViolations(sc *scenario, reg *oracleRegistry, d *decision.Decision, withNotInForce bool) []string {
	var out []string
	errorf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	req, phones, geoip := sc.req, sc.Options.LocatePhoneNumbers, sc.Options.GeoIP
	m := req.Meeting
	at := sc.when(d)

	inForce, notInForce := reg.underEvaluation(req, at)
	if !sameSet(d.OrderIDs, slices.Collect(maps.Keys(inForce))) {
		errorf("order_ids %v; the orders in force at %s targeting the meeting are %v", d.OrderIDs, at.Format(time.RFC3339Nano), slices.Sorted(maps.Keys(inForce)))
	}
	if withNotInForce {
		got := map[string]string{}
		for _, o := range d.OrdersNotInForce {
			got[o.OrderID] = o.Status
		}
		if !maps.Equal(got, notInForce) {
			errorf("orders_not_in_force %v; at %s the orders targeting the meeting but not in force are %v", got, at.Format(time.RFC3339Nano), notInForce)
		}
	}

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
		o, ok := inForce[a.OrderID]
		if !ok {
			errorf("actions[%d] (%s) cites order %q, which is not an order in force at %s targeting the meeting", i, a.Type, a.OrderID, at.Format(time.RFC3339))
			continue
		}
		auth, ok := reg.authorities[o.Authority]
		if !ok || len(auth.Jurisdiction) == 0 {
			errorf("actions[%d] (%s) cites order %q, which has no registered authority with a jurisdiction", i, a.Type, a.OrderID)
			continue
		}
		j := auth.Jurisdiction
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
			place := oracleLocation(who.ip, who.phone, phones, geoip)
			if !place.inside(j) {
				errorf("actions[%d] %s names %q at %s, located in %s, outside %v", i, a.Type, a.ParticipantID, where(who), place, j)
			}
			if a.Country != place.country {
				errorf("actions[%d] %s states %q is located in %q; the oracle says %q", i, a.Type, a.ParticipantID, a.Country, place.country)
			}
			if !slices.Equal(a.Subdivisions, place.subdivisions) {
				errorf("actions[%d] %s states %q is located in subdivisions %v; the oracle says %v", i, a.Type, a.ParticipantID, a.Subdivisions, place.subdivisions)
			}
			if by := map[bool]string{true: decision.LocatedByPhone, false: decision.LocatedByIP}[who.phone != ""]; a.LocatedBy != by {
				errorf("actions[%d] %s states %q was located by %q, want %q", i, a.Type, a.ParticipantID, a.LocatedBy, by)
			}
		case decision.EndMeeting, decision.SuspendAccount:
			if o.Targets.AllMeetings {
				errorf("actions[%d] is %s, citing the service-wide order %s", i, a.Type, a.OrderID)
			}
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
				if place := oracleLocation(p.ip, p.phone, phones, geoip); !place.inside(j) {
					errorf("actions[%d] %s although %s at %s is located in %s, outside %v", i, a.Type, p.id, where(p), place, j)
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
// address the scenarios use, the oracle and the engine's geo stage agree,
// with either database. If they ever disagree, either the oracle or
// package geo is wrong, and the invariants above would be checking the
// wrong thing.
func TestOracleMatchesDatabase(t *testing.T) {
	dbs := newScenarioDBs(t)
	for kind, path := range dbs {
		db, err := geo.Open(path)
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
				want := oracleLocate(ip, kind)
				if got := db.Locate(netip.MustParseAddr(ip)); got.Country != want.country || !slices.Equal(got.Subdivisions, want.subdivisions) {
					t.Errorf("%s (%s database): %s: geo.Locate says %q %v, the table says %s", sc.Name, kind, ip, got.Country, got.Subdivisions, want)
				}
			}
		}
	}
}

// TestOracleReadsValidityAsTheEngineDoes: for every order of every
// scenario registry, at the instants around its dates, the oracle and the
// engine agree on its status.
func TestOracleReadsValidityAsTheEngineDoes(t *testing.T) {
	dirs := []string{registryDir}
	entries, err := os.ReadDir(filepath.Join("scenarios", "registries"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		dirs = append(dirs, filepath.Join("scenarios", "registries", e.Name()))
	}
	checked := 0
	for _, dir := range dirs {
		snap, err := policy.LoadSnapshot(context.Background(), []string{"../policies", dir}, policy.LoadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for id, o := range loadRegistryFiles(t, dir).orders {
			var instants []time.Time
			for _, s := range []string{o.Effective, o.Expires} {
				if s != "" {
					instants = append(instants, oracleInstant(s, false), oracleInstant(s, true))
				}
			}
			if o.Revoked != nil {
				instants = append(instants, oracleInstant(o.Revoked.Date, false))
			}
			for _, at := range instants {
				for _, t2 := range []time.Time{at.Add(-time.Nanosecond), at, at.Add(time.Nanosecond)} {
					checked++
					if got, want := snap.Registry().Status(id, t2), o.status(t2); got != want {
						t.Errorf("%s %s at %s: the engine says %s, the oracle %s", dir, id, t2.Format(time.RFC3339Nano), got, want)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no scenario registry states a period of validity")
	}
}

// TestInvariantCheckerCatchesViolations makes sure the invariant check is
// not vacuous: decisions that break it, built by hand, are reported, and a
// correct one is not.
func TestInvariantCheckerCatchesViolations(t *testing.T) {
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
	crimea := load("service-wide-crimea-participants-removed")
	forum := load("subdivision-end-meeting-everyone-in-crimea")
	lastDay := load("validity-in-force-through-the-last-day")
	dayAfter := load("validity-expired-the-day-after")
	cn := []string{"CN"}
	ua := []string{"UA-43", "UA-40"}
	remove := func(order, id, country string, host bool) decision.Action {
		return decision.Action{Type: decision.RemoveParticipant, ParticipantID: id, Host: host, OrderID: order, Jurisdiction: cn, Country: country}
	}
	removeUA := func(order, id string, subdivisions ...string) decision.Action {
		return decision.Action{Type: decision.RemoveParticipant, ParticipantID: id, OrderID: order, Jurisdiction: ua, Country: "UA", Subdivisions: subdivisions}
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
		{"cite an order not in the registry", caseB, remove("CN-2020-0601-X", "cn-01", "CN", false), false},
		{"end a meeting with people outside", caseB, decision.Action{Type: decision.EndMeeting, OrderID: "CN-2020-0601", Jurisdiction: cn}, false},
		{"end a meeting with an unlocated participant", anycast, decision.Action{Type: decision.EndMeeting, OrderID: "CN-2020-0602", Jurisdiction: cn}, false},
		{"suspend a HK account", caseC, decision.Action{Type: decision.SuspendAccount, AccountID: "acct-hk-c", OrderID: "CN-2020-0601", Jurisdiction: cn, Country: "HK"}, false},

		{"remove a participant located in Crimea", crimea, removeUA("UA-2022-0301", "p-crimea", "UA-43"), true},
		{"remove a participant located in Kyiv", crimea, removeUA("UA-2022-0301", "p-kyiv", "UA-30"), false},
		{"remove a participant located in Ukraine, no subdivision", crimea, removeUA("UA-2022-0301", "p-ua"), false},
		{"misstate a subdivision", crimea, removeUA("UA-2022-0301", "p-kyiv", "UA-43"), false},
		{"leave out a subdivision", crimea, removeUA("UA-2022-0301", "p-crimea"), false},
		{"end a meeting through a service-wide order", forum, decision.Action{Type: decision.EndMeeting, OrderID: "UA-2022-0301", Jurisdiction: ua}, false},
		{"end a meeting entirely in Crimea", forum, decision.Action{Type: decision.EndMeeting, OrderID: "UA-2026-0415", Jurisdiction: ua}, true},
		{"act on an order on its last day", lastDay, remove("CN-2026-0101", "cn-01", "CN", false), true},
		{"act on an order the day after it expired", dayAfter, remove("CN-2026-0101", "cn-01", "CN", false), false},
	} {
		if tc.a.Type == decision.RemoveParticipant && tc.a.LocatedBy == "" {
			tc.a.LocatedBy = decision.LocatedByIP
		}
		reg := loadRegistryFiles(t, tc.sc.registryDir())
		inForce, _ := reg.underEvaluation(tc.sc.req, tc.sc.when(&decision.Decision{Time: time.Now()}))
		d := &decision.Decision{Actions: []decision.Action{tc.a}, OrderIDs: slices.Collect(maps.Keys(inForce)), Time: time.Now()}
		v := invariantViolations(tc.sc, reg, d, false)
		if tc.ok && len(v) > 0 {
			t.Errorf("%s: reported %q for a correct action", tc.name, v)
		}
		if !tc.ok && len(v) == 0 {
			t.Errorf("%s: violation not reported", tc.name)
		}
	}

	// The orders a decision evaluates, and those it reports not in force,
	// are checked too.
	d := &decision.Decision{Time: dayAfter.Options.at, OrderIDs: []string{"CN-2026-0101", "CN-2026-0701", "UA-2022-0301"}}
	if v := invariantViolations(dayAfter, loadRegistryFiles(t, dayAfter.registryDir()), d, true); len(v) != 2 {
		t.Errorf("an expired order evaluated, and not reported not in force: %q", v)
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
	engines := &scenarioEngines{dbs: newScenarioDBs(t)}

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
			d, err := engines.get(t, sc, true).Admit(ctx, req)
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
			checkInvariants(t, sc, d)
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
