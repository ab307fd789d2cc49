package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"
	"github.com/open-policy-agent/opa/v1/plugins/discovery"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/geoscope/geoscope/engine/policy"
)

// ErrConfig is matched by configuration errors: a --bundle, --geoip-db or
// --config path that does not exist, or an OPA configuration file that
// cannot be used. Each message names the flag.
var ErrConfig = errors.New("invalid configuration")

// startRemote runs OPA's own plugin manager on the OPA configuration file:
// services, bundles (downloading, polling, signature verification), keys,
// decision_logs and status work exactly as they do for OPA. geoscope only
// listens: each time the bundle plugin activates a bundle, the compiled
// policy and a copy of the data become a new snapshot (see activateRemote).
// The plugins run until Stop, not until ctx is done: the server still
// answers, and logs, the requests in flight after ctx is.
func (s *Sources) startRemote(ctx context.Context) error {
	raw, err := s.cfg.opaConfig()
	if err != nil {
		return err
	}
	m, err := plugins.New(raw, s.cfg.instanceID(), inmem.New(),
		plugins.Logger(opaLogger{log: s.log, prefix: "opa_"}),
		// Console decision logs keep OPA's field names (decision_id, input,
		// result, labels, type…) at the top of each line, as OPA prints
		// them: log pipelines written for OPA read them unchanged.
		plugins.ConsoleLogger(opaLogger{log: s.cfg.Console}),
		// Like local bundles, policies are compiled with their print()
		// calls only when Load.Print gives the output somewhere to go.
		plugins.EnablePrintStatements(s.cfg.Load.Print != nil),
		plugins.PrintHook(s.cfg.Load.Print),
		// Annotations are read, as for local bundles: they carry the
		// schemas the policy is type-checked against.
		plugins.WithParserOptions(ast.ParserOptions{ProcessAnnotation: true}))
	if err != nil {
		return fmt.Errorf("%w: --config: %v", ErrConfig, err)
	}
	var boot map[string]any
	if err := util.Unmarshal(raw, &boot); err != nil {
		return fmt.Errorf("%w: --config: %v", ErrConfig, err)
	}
	// Without a discovery service, discovery starts the plugins the boot
	// configuration names (bundle, decision_logs, status), as OPA does.
	d, err := discovery.New(m, discovery.BootConfig(boot))
	if err != nil {
		return fmt.Errorf("%w: --config: %v", ErrConfig, err)
	}
	m.Register(discovery.Name, d)
	// A version activated while the requests in flight are drained is one
	// they may be answered with: its snapshot is built whole.
	activation := context.WithoutCancel(ctx)
	m.RegisterCompilerTrigger(func(txn storage.Transaction) { s.activateRemote(activation, m, txn) })
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("starting OPA plugins: %w", err)
	}
	bp := bundleplugin.Lookup(m)
	if bp == nil {
		return fmt.Errorf("%w: --config configures no bundles", ErrConfig)
	}
	bp.Register("geoscope", func(st bundleplugin.Status) {
		// A download cut short by the shutdown is no rejection: it was
		// logged as one, at error, after every stop. ctx is done from the
		// signal on, so a failure during the drain is not counted either:
		// the server is going away.
		if ctx.Err() != nil {
			return
		}
		s.onBundleStatus(st)
	})
	if err := startManager(ctx, m, s.cfg.opaConfigName()); err != nil {
		return err
	}
	s.manager = m
	return nil
}

// Stop stops OPA's plugins, if an OPA configuration started them: the
// bundle plugin stops polling and the decision-log plugin uploads the
// events it holds, until ctx's deadline (OPA's plugin makes no final
// upload under a context without one). Call it once no request is in
// flight: an event logged after it is never uploaded.
func (s *Sources) Stop(ctx context.Context) {
	if s.manager != nil {
		s.manager.Stop(ctx)
	}
}

// startManager starts OPA's plugins. OPA's OCI downloader panics when it
// cannot create its local store (see checkOCIStore, which refuses the
// causes known before the start): a store under persistence_directory that
// is not an OCI layout, a directory that stopped being writable since the
// check. The panic is turned into an error naming --config, which ends the
// start like any other configuration error, rather than a Go stack trace;
// the plugins it leaves half started end with the process.
func startManager(ctx context.Context, m *plugins.Manager, name string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: OPA's plugins failed to start: %v", ErrConfig, name, r)
		}
	}()
	if err := m.Start(ctx); err != nil {
		return fmt.Errorf("starting OPA plugins: %w", err)
	}
	return nil
}

// activateRemote runs inside the bundle plugin's commit, so the data read
// here is exactly what was just activated. The snapshot gets its own copy;
// if it fails to build (no policy yet, a registry that fails validation),
// the engine keeps its last good snapshot.
//
// Trade-off: OPA has committed the version by then, so OPA's own bundle
// status (and its status plugin's reports) call it active, and the next
// version of another bundle is built with it, and rejected too, until it
// is fixed. Validating inside OPA's activation instead takes a bundle
// activator, which OPA registers for the whole process (the extension
// point of OPA distributions that bring their own store): it switched
// every bundle reader in the process to lazy loading and gave rego.New
// without a store a nil one. geoscope's /v1/status and metrics are what
// is deciding; docs/bundles.md says so.
func (s *Sources) activateRemote(ctx context.Context, m *plugins.Manager, txn storage.Transaction) {
	// Until every configured bundle has arrived there is nothing complete to
	// activate: a policy without its registry (or the reverse) must never
	// answer.
	names, err := bundle.ReadBundleNamesFromStore(ctx, m.Store, txn)
	if err != nil && !storage.IsNotFound(err) {
		_ = s.activateThenReturnMemory(nil, err)
		return
	}
	if bp := bundleplugin.Lookup(m); bp != nil {
		for name := range bp.Config().Bundles {
			if !slices.Contains(names, name) {
				s.log.Info("waiting for every configured bundle before activating", "missing", name)
				return
			}
		}
	}
	snap, err := func() (*policy.Snapshot, error) {
		revisions := make(map[string]string, len(names))
		for _, name := range names {
			if revisions[name], err = bundleRevision(ctx, m.Store, txn, name); err != nil {
				return nil, err
			}
		}
		v, err := m.Store.Read(ctx, txn, storage.RootPath)
		if err != nil {
			return nil, err
		}
		data, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("data root is %T", v)
		}
		return policy.FromStore(ctx, m.GetCompiler(), data, revisions, s.cfg.Load)
	}()
	_ = s.activateThenReturnMemory(snap, err)
}

// onBundleStatus follows what the bundle plugin reports of each bundle
// after each download: a failure to download, verify or activate it is
// recorded until a later download of the same bundle succeeds (a new
// version activated, or the same one confirmed unchanged).
func (s *Sources) onBundleStatus(st bundleplugin.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !st.LastSuccessfulRequest.IsZero() {
		if s.downloads == nil {
			s.downloads = map[string]Download{}
		}
		s.downloads[st.Name] = Download{Name: st.Name, LastSuccessfulRequest: st.LastSuccessfulRequest, LastSuccessfulDownload: st.LastSuccessfulDownload}
	}
	if st.Code == "" && st.Message == "" && len(st.Errors) == 0 {
		if s.failing[st.Name] != nil {
			delete(s.failing, st.Name)
			s.status.BundleError = s.stillFailing()
			s.log.Info("bundle downloaded again after a failure", "bundle", st.Name)
		}
		return
	}
	msg := st.Message
	for _, e := range st.Errors {
		msg += "; " + e.Error()
	}
	f := &Failure{At: time.Now().UTC(), Error: fmt.Sprintf("bundle %q: %s", st.Name, strings.TrimPrefix(msg, "; "))}
	if s.failing == nil {
		s.failing = map[string]*Failure{}
	}
	s.failing[st.Name] = f
	s.bundleFailed(f)
	if s.eng.Policy() != nil {
		s.log.Error("bundle rejected; keeping the active snapshot", "bundle", st.Name, "code", st.Code, "error", f.Error)
	} else {
		s.log.Error("bundle rejected; none is active, so nothing is decided (not ready) until a version loads", "bundle", st.Name, "code", st.Code, "error", f.Error)
	}
}

// stillFailing is the failure of a remote bundle whose latest download or
// verification failed (the first by name, should several be), else the
// latest rejection of a set of versions that built no snapshot, or nil. A
// download OPA reports as fine clears the first kind only: OPA activates a
// version before geoscope builds its snapshot, so a version the registry
// validation rejects is one OPA calls fine.
func (s *Sources) stillFailing() *Failure {
	for _, name := range slices.Sorted(maps.Keys(s.failing)) {
		return s.failing[name]
	}
	return s.rejected
}

// Manager is OPA's plugin manager when an OPA configuration is in use
// (decision logs go through its plugin), or nil. It is set by Load.
func (s *Sources) Manager() *plugins.Manager { return s.manager }

// bundleRevision is the bundle's manifest revision or, for a bundle built
// without one, the content digest policy.Revision gives the same bundle
// loaded from a file: "which policy decided this" stays answerable in
// decisions, /v1/status, metrics and decision logs.
func bundleRevision(ctx context.Context, store storage.Store, txn storage.Transaction, name string) (string, error) {
	rev, err := bundle.ReadBundleRevisionFromStore(ctx, store, txn, name)
	if err != nil || rev != "" {
		return rev, err
	}
	b := &bundle.Bundle{Data: map[string]any{}}
	ids, err := store.ListPolicies(ctx, txn)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		// Bundle activation stores a module as "<bundle name>/<path>".
		if !strings.HasPrefix(id, name+"/") {
			continue
		}
		raw, err := store.GetPolicy(ctx, txn, id)
		if err != nil {
			return "", err
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{Raw: raw})
	}
	roots, err := bundle.ReadBundleRootsFromStore(ctx, store, txn, name)
	if err != nil {
		return "", err
	}
	for _, root := range roots {
		path, ok := storage.ParsePathEscaped("/" + strings.Trim(root, "/"))
		if !ok || len(path) == 0 {
			continue
		}
		v, err := store.Read(ctx, txn, path)
		if storage.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		node := b.Data
		for _, key := range path[:len(path)-1] {
			next, _ := node[key].(map[string]any)
			if next == nil {
				next = map[string]any{}
				node[key] = next
			}
			node = next
		}
		node[path[len(path)-1]] = v
	}
	return policy.Revision(b), nil
}

// opaLogger writes OPA's plugin logs through slog, OPA's fields named
// with prefix (apart from geoscope's own).
type opaLogger struct {
	log    *slog.Logger
	prefix string
	fields []any
}

func (l opaLogger) Debug(f string, a ...any) { l.log.Debug(fmt.Sprintf(f, a...), l.fields...) }
func (l opaLogger) Info(f string, a ...any)  { l.log.Info(fmt.Sprintf(f, a...), l.fields...) }
func (l opaLogger) Warn(f string, a ...any)  { l.log.Warn(fmt.Sprintf(f, a...), l.fields...) }
func (l opaLogger) Error(f string, a ...any) { l.log.Error(fmt.Sprintf(f, a...), l.fields...) }

func (l opaLogger) WithFields(fields map[string]any) logging.Logger {
	out := opaLogger{log: l.log, prefix: l.prefix, fields: slices.Clone(l.fields)}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		out.fields = append(out.fields, l.prefix+k, fields[k])
	}
	return out
}

func (l opaLogger) GetLevel() logging.Level {
	ctx := context.Background()
	switch {
	case l.log.Enabled(ctx, slog.LevelDebug):
		return logging.Debug
	case l.log.Enabled(ctx, slog.LevelInfo):
		return logging.Info
	case l.log.Enabled(ctx, slog.LevelWarn):
		return logging.Warn
	}
	return logging.Error
}

func (l opaLogger) SetLevel(logging.Level) {}
