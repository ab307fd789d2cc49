package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/geoscope/geoscope/engine/registry"
)

// The generated registry: n standing orders of one authority, order i
// targeting meeting "m-i" and account "acct-i" (the shape of the engine's
// Go benchmarks).
const authority = "cn.cac"

func orderID(i int) string   { return fmt.Sprintf("ORD-%06d", i) }
func meetingID(i int) string { return fmt.Sprintf("m-%d", i) }
func accountID(i int) string { return fmt.Sprintf("acct-%d", i) }

// writeRegistries writes the same registry twice: as geoscope's registry
// bundle (roots authorities and orders) in geoDir, and as a bundle for
// stock OPA in opaDir, with the index an expert ships beside it
// (data.index) and the admission policy.
func writeRegistries(n int, geoDir, opaDir string, policy map[string][]byte) error {
	authorities := map[string]registry.Authority{
		authority: {Name: "Cyberspace Administration of China", Jurisdiction: []string{"CN"}},
	}
	orders := make(map[string]registry.Order, n)
	index := struct {
		Meetings map[string][]string `json:"meetings"`
		Accounts map[string][]string `json:"accounts"`
	}{make(map[string][]string, n), make(map[string][]string, n)}
	for i := range n {
		id := orderID(i)
		orders[id] = registry.Order{
			Authority:  authority,
			Demands:    []string{registry.DemandEndMeeting, registry.DemandSuspendAccount},
			Targets:    registry.Targets{Meetings: []string{meetingID(i)}, Accounts: []string{accountID(i)}},
			LegalBasis: "generated standing order for the side-by-side benchmark",
			Received:   "2020-06-01",
		}
		index.Meetings[meetingID(i)] = append(index.Meetings[meetingID(i)], id)
		index.Accounts[accountID(i)] = append(index.Accounts[accountID(i)], id)
	}
	authRaw, err := json.Marshal(authorities)
	if err != nil {
		return err
	}
	ordersRaw, err := json.Marshal(orders)
	if err != nil {
		return err
	}
	indexRaw, err := json.Marshal(index)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		filepath.Join(geoDir, ".manifest"):                []byte(`{"revision": "bench", "roots": ["authorities", "orders"]}`),
		filepath.Join(geoDir, "authorities", "data.json"): authRaw,
		filepath.Join(geoDir, "orders", "data.json"):      ordersRaw,
		filepath.Join(opaDir, ".manifest"):                []byte(`{"revision": "bench", "roots": ["authorities", "orders", "index", "bench"]}`),
		filepath.Join(opaDir, "authorities", "data.json"): authRaw,
		filepath.Join(opaDir, "orders", "data.json"):      ordersRaw,
		filepath.Join(opaDir, "index", "data.json"):       indexRaw,
	}
	for name, raw := range policy {
		files[filepath.Join(opaDir, name)] = raw
	}
	for path, raw := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			return err
		}
	}
	return nil
}
