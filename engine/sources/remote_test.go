package sources

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/geoscope/geoscope/engine/policy"
)

// A downloaded bundle whose data names a member twice fails its
// activation before OPA decodes it (keeping the last): OPA's transaction
// is aborted and its store keeps what it had.
func TestRemoteActivationRefusesDuplicateNames(t *testing.T) {
	ctx := context.Background()
	store := inmem.New()
	remoteSources.Store(store, &Sources{})
	t.Cleanup(func() { remoteSources.Delete(store) })
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Abort(ctx, txn)
	b := &bundle.Bundle{
		Manifest: bundle.Manifest{Roots: &[]string{"authorities"}},
		Raw: []bundle.Raw{{Path: "/authorities/data.json", Value: []byte(
			`{"cn.cac": {"jurisdiction": ["CN"]}, "cn.cac": {"jurisdiction": ["CN", "HK"]}}`)}},
	}
	err = remoteActivator{}.Activate(&bundle.ActivateOpts{Ctx: ctx, Store: store, Txn: txn, Bundles: map[string]*bundle.Bundle{"registry": b}})
	if !errors.Is(err, policy.ErrBundle) || !strings.Contains(err.Error(), "authorities.cn.cac is given twice") {
		t.Fatalf("activation: %v; want the duplicate named", err)
	}
}
