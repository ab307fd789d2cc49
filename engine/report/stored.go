package report

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/registry"
)

// A report reads every entry of its period, and decoding them was most of
// its build: each entry whole, into an Entry of its own, every string and
// slice allocated anew. The reader below decodes only the fields the
// report counts (stored and the types after it: ledger.Entry's fields by
// the same JSON names, which TestStoredNamesEntryFields holds them to)
// into one Entry, reused from entry to entry. The entry's free text (the
// reasons), its ids (decision, meeting, account, network) and the legal
// bases are skipped, not decoded. The aggregator keeps nothing of an
// entry but its strings and what it counted: no slice, map or pointer of
// it outlives the call.
//
// So a skipped field of another type than the ledger writes (a reason
// that is an array) does not fail a build, where the ledger's own reads
// (Scan, List, export) refuse the entry: the report counts nothing from
// it, and such an entry was altered after it was recorded, which ledger
// verify finds. The reuse relies on the v2 decoder's default of zeroing
// a reused slice element before decoding into it (not its legacy merge):
// TestBuildCountsAsEntriesDecodedWhole fails if a field absent from one
// entry keeps the value of the one before.

// stored is what the report reads of a stored entry.
type stored struct {
	Time             time.Time         `json:"time"`
	Kind             string            `json:"kind"`
	AllowJoin        *bool             `json:"allow_join"`
	Preview          bool              `json:"preview"`
	Orders           []storedOrder     `json:"orders"`
	OrdersNotInForce []storedOrder     `json:"orders_not_in_force"`
	Actions          []storedAction    `json:"actions"`
	Refused          []storedRefusal   `json:"refused"`
	GuardBlocked     []storedBlock     `json:"guard_blocked"`
	Bundles          map[string]string `json:"bundles"`
	Geo              decision.Geo      `json:"geo"`
	Request          string            `json:"request"`
}

// storedOrder is ledger.Order without its legal basis.
type storedOrder struct {
	OrderID       string               `json:"order_id"`
	Authority     string               `json:"authority"`
	AuthorityName string               `json:"authority_name"`
	Jurisdiction  []string             `json:"jurisdiction"`
	Demands       []string             `json:"demands"`
	Received      string               `json:"received"`
	Effective     string               `json:"effective"`
	Expires       string               `json:"expires"`
	Revoked       *registry.Revocation `json:"revoked"`
	Status        string               `json:"status"`
}

// storedAction is ledger.Action without its reason, network and how its
// country was located.
type storedAction struct {
	Type         string         `json:"type"`
	OrderID      string         `json:"order_id"`
	Subject      string         `json:"subject"`
	Host         bool           `json:"host"`
	Country      string         `json:"country"`
	Subdivisions []string       `json:"subdivisions"`
	Jurisdiction []string       `json:"jurisdiction"`
	Reached      map[string]int `json:"reached"`
}

// storedRefusal is ledger.Refusal without its reason.
type storedRefusal struct {
	OrderID         string `json:"order_id"`
	Demand          string `json:"demand"`
	Code            string `json:"code"`
	AffectedOutside int    `json:"affected_outside"`
}

// storedBlock is ledger.Blocked without its reason and claimed country.
type storedBlock struct {
	Code    string `json:"code"`
	Type    string `json:"type"`
	OrderID string `json:"order_id"`
	Subject string `json:"subject"`
}

// storedCitation is what the report reads of an entry after the period
// that cites an order (laterOrders): when it was decided, and its orders.
type storedCitation struct {
	DecisionID string        `json:"decision_id"`
	Time       time.Time     `json:"time"`
	Preview    bool          `json:"preview"`
	Orders     []storedOrder `json:"orders"`
}

// reader decodes stored entries for the aggregator.
type reader struct {
	s stored
	e ledger.Entry
}

// scan calls fn for every entry matching q, oldest first, with the fields
// of it the report reads. The entry is fn's until it returns only.
func (r *reader) scan(ctx context.Context, l *ledger.Ledger, q ledger.Query, fn func(*ledger.Entry) error) error {
	return l.ScanText(ctx, q, func(text []byte) error {
		if err := r.decode(text); err != nil {
			return ledger.DecodeError(err)
		}
		return fn(&r.e)
	})
}

// laterOrders tells a, in the order a reading of every entry after the
// period would (laterOrder), of the orders entries after the period
// state in force that no entry of the period stated: an order received
// in the period may first be enforced after it. Each is read from its
// first such entry, found through the ledger's index of cited orders,
// instead of every entry after the period being read for them: a report
// of a past period read the whole ledger since, and took the longer the
// longer the ledger grew (BenchmarkBuildPastPeriod). A preview's entry,
// and one that states the order as not in force, is passed over for the
// next, as the reading of every entry passed them over.
func laterOrders(ctx context.Context, l *ledger.Ledger, a *aggregator) error {
	ids, err := l.OrdersCitedSince(ctx, a.period.Until)
	if err != nil {
		return err
	}
	type citation struct {
		at       time.Time
		decision string
		place    int // among the entry's orders
		order    ledger.Order
	}
	unknown := slices.DeleteFunc(ids, func(id string) bool {
		_, known := a.orders[id]
		return known
	})
	var firsts []citation
	err = l.ScanCitingText(ctx, unknown, a.period.Until, func(id string, text []byte) (bool, error) {
		var c storedCitation
		if err := jsonv2.Unmarshal(text, &c); err != nil {
			return false, ledger.DecodeError(err)
		}
		i := slices.IndexFunc(c.Orders, func(o storedOrder) bool { return o.OrderID == id })
		if c.Preview || i < 0 {
			return false, nil
		}
		firsts = append(firsts, citation{c.Time, c.DecisionID, i, appendOrders(nil, c.Orders[i:i+1])[0]})
		return true, nil
	})
	if err != nil {
		return err
	}
	// Entries in the ledger's order (time, then id), and an entry's
	// orders in its own: the first to name an authority names its group.
	slices.SortFunc(firsts, func(x, y citation) int {
		return cmp.Or(x.at.Compare(y.at), strings.Compare(x.decision, y.decision), cmp.Compare(x.place, y.place))
	})
	for _, c := range firsts {
		a.laterOrder(c.order)
	}
	return nil
}

// decode reads text into r.e, reusing the memory of the entry before.
func (r *reader) decode(text []byte) error {
	s := &r.s
	// Slices keep their memory (the decoder zeroes what it reuses); a
	// field the text lacks must be as a fresh decode leaves it.
	bundles := s.Bundles
	clear(bundles)
	*s = stored{
		Orders: s.Orders[:0], OrdersNotInForce: s.OrdersNotInForce[:0], Actions: s.Actions[:0],
		Refused: s.Refused[:0], GuardBlocked: s.GuardBlocked[:0], Bundles: bundles,
	}
	if err := jsonv2.Unmarshal(text, s); err != nil {
		return err
	}
	e := &r.e
	*e = ledger.Entry{
		Time: s.Time, Kind: s.Kind, AllowJoin: s.AllowJoin, Preview: s.Preview,
		Orders: appendOrders(e.Orders[:0], s.Orders), OrdersNotInForce: appendOrders(e.OrdersNotInForce[:0], s.OrdersNotInForce),
		Actions: e.Actions[:0], Refused: e.Refused[:0], GuardBlocked: e.GuardBlocked[:0],
		Bundles: s.Bundles, Geo: s.Geo, Request: s.Request,
	}
	for _, a := range s.Actions {
		e.Actions = append(e.Actions, ledger.Action{
			Type: a.Type, OrderID: a.OrderID, Subject: a.Subject, Host: a.Host, Country: a.Country,
			Subdivisions: a.Subdivisions, Jurisdiction: a.Jurisdiction, Reached: a.Reached,
		})
	}
	for _, x := range s.Refused {
		e.Refused = append(e.Refused, ledger.Refusal{OrderID: x.OrderID, Demand: x.Demand, Code: x.Code, AffectedOutside: x.AffectedOutside})
	}
	for _, x := range s.GuardBlocked {
		e.GuardBlocked = append(e.GuardBlocked, ledger.Blocked{Code: x.Code, Type: x.Type, OrderID: x.OrderID, Subject: x.Subject})
	}
	return nil
}

func appendOrders(dst []ledger.Order, src []storedOrder) []ledger.Order {
	for _, o := range src {
		dst = append(dst, ledger.Order{
			OrderID: o.OrderID, Authority: o.Authority, AuthorityName: o.AuthorityName,
			Jurisdiction: o.Jurisdiction, Demands: o.Demands, Received: o.Received,
			Effective: o.Effective, Expires: o.Expires, Revoked: o.Revoked, Status: o.Status,
		})
	}
	return dst
}
