// Package sources owns what a running engine decides with: the policy and
// registry bundles and the GeoIP database. It loads them, watches them,
// and activates new versions into the engine. A version that fails to load
// is rejected and reported; the engine keeps deciding with the last good
// one. Until a first version of both has loaded, the engine is not ready.
package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/plugins"
	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/engine/registry"
	"github.com/geoscope/geoscope/internal/patherr"
	"github.com/geoscope/geoscope/internal/watch"
)

// Config names the sources. Empty values select the embedded defaults.
type Config struct {
	// Bundles are bundle directories or .tar.gz files; none means the
	// embedded policy and example registry.
	Bundles []string
	// GeoIPDB is an mmdb file; empty means the embedded DB-IP database.
	GeoIPDB string
	// Load controls bundle reading (signature verification) and where the
	// policy's print() output goes, for local and remote bundles alike.
	Load policy.LoadOptions
	// OPAConfig is an OPA configuration file (services, bundles, keys,
	// decision_logs). Bundles then come from OPA's bundle plugin; it
	// excludes Bundles.
	OPAConfig string
	// OPASet and OPASetFile override values of the OPA configuration,
	// as OPA's --set and --set-file do (see Config.overrides); with no
	// OPAConfig, they are the whole configuration.
	OPASet     []string
	OPASetFile []string
	// VerificationKeyPEM, when set, is required of every bundle the OPA
	// configuration names (see requireSignatures).
	VerificationKeyPEM []byte
	VerificationKeyID  string
	VerificationAlg    string
	// InstanceID names this process in OPA's decision logs and status
	// reports (their "id" label); empty: drawn at random, as OPA does.
	InstanceID string
	// Debounce is how long file changes must be quiet before a reload.
	Debounce time.Duration
	Logger   *slog.Logger
	// Console is the console of OPA's plugins (decision_logs.console,
	// status.console): OPA keeps it apart from its log, so that what was
	// asked for with console: true is printed whatever the log's level.
	// Nil: Logger.
	Console *slog.Logger
}

// Validate checks the configuration: paths exist, and an OPA
// configuration is one this server accepts (opaConfig). Its one effect on
// disk is the directory an OCI bundle source's check creates and removes
// at once (checkOCIStore).
func (c Config) Validate() error {
	if c.HasOPAConfig() && len(c.Bundles) > 0 {
		return fmt.Errorf("%w: --config (or --set, --set-file) and --bundle exclude each other: name every bundle in the OPA configuration", ErrConfig)
	}
	// A path that does not exist is a mistake in the command line, not a
	// version to reject: nothing would ever be watched into being there.
	// (A file that exists but fails to load leaves the server up and not
	// ready, so fixing it needs no restart.)
	for _, p := range c.Bundles {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w: --bundle %s: %v", ErrConfig, p, patherr.Cause(err))
		}
	}
	if c.GeoIPDB != "" {
		if _, err := os.Stat(c.GeoIPDB); err != nil {
			return fmt.Errorf("%w: --geoip-db %s: %v", ErrConfig, c.GeoIPDB, patherr.Cause(err))
		}
	}
	if c.HasOPAConfig() {
		if _, err := c.opaConfig(); err != nil {
			return err
		}
	}
	return nil
}

// Status reports what is active and the last failures.
type Status struct {
	Bundles []Bundle `json:"bundles"`
	// BundleError is the failure of the latest bundle version, cleared by
	// the next activation; LastBundleFailure is never cleared.
	BundleError       *Failure  `json:"bundle_error,omitempty"`
	LastBundleFailure *Failure  `json:"last_bundle_failure,omitempty"`
	BundleRejections  int       `json:"bundle_rejections"`
	GeoIP             *GeoIP    `json:"geoip,omitempty"`
	GeoIPError        *Failure  `json:"geoip_error,omitempty"`
	LastGeoIPFailure  *Failure  `json:"last_geoip_failure,omitempty"`
	GeoIPRejections   int       `json:"geoip_rejections"`
	Reloads           int       `json:"reloads"`
	StartedAt         time.Time `json:"started_at"`
	// Warnings say what is likely wrong with the active bundles and GeoIP
	// database together although each loaded: a registry whose
	// jurisdictions list subdivisions with a database that locates nobody
	// in one (see SubdivisionWarning). Absent when there is nothing to say.
	Warnings []string `json:"warnings,omitempty"`
	// Downloads are what OPA's bundle plugin last got from the bundle
	// service, by bundle, with an OPA configuration (absent otherwise).
	// Failures clear and reappear with each poll; these only move forward,
	// so a replica that stopped polling, or whose every poll fails, shows
	// as one whose last success grows old.
	Downloads []Download `json:"downloads,omitempty"`
}

// Download is what the bundle service last answered for one bundle.
type Download struct {
	Name string `json:"name"`
	// LastSuccessfulRequest is the last poll the service answered with a
	// bundle or with 304 Not Modified for the version held.
	LastSuccessfulRequest time.Time `json:"last_successful_request"`
	// LastSuccessfulDownload is the last poll that brought a bundle (zero
	// until one has). A bundle that downloaded may still have been
	// rejected: bundle_error says so.
	LastSuccessfulDownload time.Time `json:"last_successful_download,omitzero"`
}

// Bundle is an active bundle.
type Bundle struct {
	Name        string    `json:"name"`
	Revision    string    `json:"revision"`
	ActivatedAt time.Time `json:"activated_at"`
}

// GeoIP is the active database.
type GeoIP struct {
	Source   string    `json:"source"`
	Database string    `json:"database"`
	Build    time.Time `json:"build"`
	LoadedAt time.Time `json:"loaded_at"`
}

// Failure is a rejected version.
type Failure struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// Sources loads and reloads an engine's inputs.
type Sources struct {
	cfg Config
	eng *engine.Engine
	log *slog.Logger

	// loading serialises the loads of local bundles and of the GeoIP
	// file, so that two reloads (a watched change and a SIGHUP) activate
	// in the order they read. It is held while a version is read and
	// built, which takes seconds for a large registry; mu, which Ready,
	// Status and the metrics take, only while one is activated or its
	// failure recorded: a probe or a scrape during a reload must not wait
	// for the build, or every replica reloading the same bundle would
	// fail its readiness probe at once and leave the Service with none.
	loading sync.Mutex
	mu      sync.Mutex // guards status and activations
	status  Status

	manager *plugins.Manager // OPA's plugin manager, with an OPA configuration
	// failing holds each remote bundle's latest download or verification
	// failure until a download of it succeeds (see onBundleStatus);
	// rejected the latest set of versions that built no snapshot, until one
	// does. BundleError is the first of them (stillFailing).
	failing  map[string]*Failure
	rejected *Failure
	// downloads is Status.Downloads by bundle name (see onBundleStatus).
	downloads map[string]Download
}

// New returns Sources for eng. Nothing is loaded until Load.
func New(cfg Config, eng *engine.Engine) *Sources {
	if cfg.Debounce == 0 {
		cfg.Debounce = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Console == nil {
		cfg.Console = cfg.Logger
	}
	return &Sources{cfg: cfg, eng: eng, log: cfg.Logger, status: Status{StartedAt: time.Now().UTC()}}
}

// Load loads the bundles and the GeoIP database. It returns the first
// failure, but tries both: a server may start, report not ready, and become
// ready when a watched source is fixed.
func (s *Sources) Load(ctx context.Context) error {
	if s.cfg.HasOPAConfig() {
		if err := s.cfg.Validate(); err != nil {
			return err
		}
		// A configuration error is fatal; bundles arrive asynchronously.
		if err := s.startRemote(ctx); err != nil {
			return err
		}
		return s.ReloadGeo()
	}
	return errors.Join(s.ReloadBundles(ctx), s.ReloadGeo())
}

// Reload reloads every source now: local bundles and the GeoIP file are
// read again; remote bundles are downloaded again.
func (s *Sources) Reload(ctx context.Context) error {
	var bundles error
	if s.manager != nil {
		if bp := bundleplugin.Lookup(s.manager); bp != nil {
			// The bundle plugin reports a rejected download through its
			// status listener, not as Trigger's error (except in manual
			// trigger mode), so the rejection count tells.
			before := s.Status().BundleRejections
			bundles = bp.Trigger(ctx)
			if bundles == nil && s.Status().BundleRejections > before {
				bundles = s.failures()
			}
		}
	} else {
		bundles = s.ReloadBundles(ctx)
	}
	return errors.Join(bundles, s.ReloadGeo())
}

// failures joins the latest failure of every remote bundle failing to
// download or verify now or, when none is, the bundles' latest rejection
// (a set of versions that did not build a snapshot, which no single
// bundle's download is to blame for).
func (s *Sources) failures() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(s.failing)) {
		errs = append(errs, errors.New(s.failing[name].Error))
	}
	if len(errs) == 0 && s.rejected != nil {
		return errors.New(s.rejected.Error)
	}
	return errors.Join(errs...)
}

// ReloadBundles builds a snapshot from the configured bundles and activates
// it, or keeps the active one and records the failure.
func (s *Sources) ReloadBundles(ctx context.Context) error {
	s.loading.Lock()
	defer s.loading.Unlock()
	snap, err := policy.LoadSnapshot(ctx, s.cfg.Bundles, s.cfg.Load)
	if err != nil && ctx.Err() != nil {
		// The server is stopping (a signal during the first load): a load
		// cut short is no rejected version, to count, alert on and log as
		// an error.
		s.log.Info("bundle load stopped: the server is shutting down")
		return err
	}
	return s.activateThenReturnMemory(snap, err)
}

// activateThenReturnMemory activates snap (or records err) under s.mu,
// then, after an activation, returns the memory it freed without s.mu
// (returnMemory).
func (s *Sources) activateThenReturnMemory(snap *policy.Snapshot, err error) error {
	s.mu.Lock()
	err = s.activate(snap, err)
	s.mu.Unlock()
	if err == nil {
		returnMemory()
	}
	return err
}

// activate makes snap the engine's policy, or records why it was rejected.
// The caller holds s.mu; after an activation, the memory the build left
// is returned once it is released (activateThenReturnMemory).
func (s *Sources) activate(snap *policy.Snapshot, err error) error {
	if err != nil {
		s.rejected = &Failure{At: time.Now().UTC(), Error: err.Error()}
		s.bundleFailed(s.rejected)
		if s.eng.Policy() != nil {
			s.log.Error("bundles rejected; keeping the active snapshot", "error", err.Error())
		} else {
			s.log.Error("bundles rejected; none is active, so nothing is decided (not ready) until a version loads", "error", err.Error())
		}
		return err
	}
	s.eng.SetPolicy(snap)
	s.rejected = nil
	s.status.BundleError = s.stillFailing()
	s.status.Reloads++
	s.status.Bundles = s.status.Bundles[:0]
	for name, rev := range snap.Revisions() {
		s.status.Bundles = append(s.status.Bundles, Bundle{Name: name, Revision: rev, ActivatedAt: snap.Activated()})
	}
	sort.Slice(s.status.Bundles, func(i, j int) bool { return s.status.Bundles[i].Name < s.status.Bundles[j].Name })
	s.log.Info("bundles activated", "revisions", snap.Revisions())
	for _, w := range snap.Warnings() {
		s.log.Warn(w)
	}
	if db := s.eng.Geo(); db != nil {
		if w := SubdivisionWarning(snap.Registry(), db.Info()); w != "" {
			s.log.Warn(w)
		}
	}
	return nil
}

// returnMemory collects and returns free memory to the OS after an
// activation. Activation allocates many times what the snapshot keeps (a
// registry of 100,000 orders: about a gigabyte, for a snapshot of two
// hundred megabytes), and the previous snapshot is garbage now. Without a
// collection and a return of the free pages the process stays at its
// activation peak until the runtime gets round to both. It is called
// without s.mu: a full collection of a large heap takes long enough to
// hold up readiness probes and scrapes.
func returnMemory() { debug.FreeOSMemory() }

// SubdivisionWarning is a warning when the registry's jurisdictions list
// ISO 3166-2 subdivisions and the GeoIP database (a Country database, such
// as the embedded one) locates nobody in a subdivision: the orders of
// those authorities then act on nobody there. "" when there is nothing to
// say.
func SubdivisionWarning(reg *registry.Registry, info geo.Info) string {
	if info.Subdivisions || !reg.HasSubdivisions() {
		return ""
	}
	var ids []string
	for id, a := range reg.Authorities {
		if a.HasSubdivisions() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return fmt.Sprintf("the jurisdictions of %s list subdivisions, but the GeoIP database %s is a Country database, which locates nobody in a subdivision: "+
		"their orders act on nobody there; load a GeoIP2 or GeoLite2 City database (--geoip-db) to enforce them", strings.Join(ids, ", "), info.Database)
}

// ReloadGeo opens the configured GeoIP database and swaps it in, or keeps
// the active one and records the failure (a corrupt or wrong-type file).
func (s *Sources) ReloadGeo() error {
	s.loading.Lock()
	defer s.loading.Unlock()
	var (
		db  *geo.DB
		err error
	)
	source := s.cfg.GeoIPDB
	if source == "" {
		source = "embedded"
		db, err = geo.Embedded()
	} else {
		db, err = geo.Open(source)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	if err != nil {
		s.status.GeoIPError = &Failure{At: now, Error: err.Error()}
		s.status.LastGeoIPFailure = s.status.GeoIPError
		s.status.GeoIPRejections++
		if s.eng.Geo() != nil {
			s.log.Error("GeoIP database rejected; keeping the active one", "error", err.Error())
		} else {
			s.log.Error("GeoIP database rejected; none is active, so nothing is decided (not ready) until one loads", "error", err.Error())
		}
		return err
	}
	// The previous database is not closed: decisions in flight may still
	// use it, and it is released when they are done with it.
	s.eng.SetGeo(db)
	info := db.Info()
	s.status.GeoIP = &GeoIP{Source: source, Database: info.Database, Build: info.Build, LoadedAt: now}
	s.status.GeoIPError = nil
	s.log.Info("GeoIP database activated", "database", info.Database, "build", info.Build, "subdivisions", info.Subdivisions)
	if snap := s.eng.Policy(); snap != nil {
		if w := SubdivisionWarning(snap.Registry(), info); w != "" {
			s.log.Warn(w)
		}
	}
	return nil
}

// bundleFailed records a rejected bundle version. The caller holds s.mu.
func (s *Sources) bundleFailed(f *Failure) {
	s.status.BundleError = f
	s.status.LastBundleFailure = f
	s.status.BundleRejections++
}

// Watch reloads file-based sources when they change, until ctx is done.
func (s *Sources) Watch(ctx context.Context) error {
	if len(s.cfg.Bundles) > 0 {
		err := watch.Watch(ctx, s.cfg.Bundles, s.cfg.Debounce, func() { _ = s.ReloadBundles(ctx) })
		if err != nil {
			return fmt.Errorf("watching bundles: %w", err)
		}
	}
	if s.cfg.GeoIPDB != "" {
		err := watch.Watch(ctx, []string{s.cfg.GeoIPDB}, s.cfg.Debounce, func() { _ = s.ReloadGeo() })
		if err != nil {
			return fmt.Errorf("watching GeoIP database: %w", err)
		}
	}
	return nil
}

// Ready reports whether decisions can be made, and why not.
func (s *Sources) Ready() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.eng.Policy() == nil && s.status.BundleError != nil:
		return false, "no policy and registry bundles are active: " + s.status.BundleError.Error
	case s.eng.Policy() == nil:
		return false, "no policy and registry bundles are active yet"
	case s.eng.Geo() == nil && s.status.GeoIPError != nil:
		return false, "no GeoIP database is loaded: " + s.status.GeoIPError.Error
	case s.eng.Geo() == nil:
		return false, "no GeoIP database is loaded yet"
	}
	return true, ""
}

// Status returns a copy of the current status.
func (s *Sources) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Bundles = append([]Bundle(nil), s.status.Bundles...)
	for _, name := range slices.Sorted(maps.Keys(s.downloads)) {
		st.Downloads = append(st.Downloads, s.downloads[name])
	}
	if snap, db := s.eng.Policy(), s.eng.Geo(); snap != nil && db != nil {
		if w := SubdivisionWarning(snap.Registry(), db.Info()); w != "" {
			st.Warnings = []string{w}
		}
	}
	return st
}
