package policy

import (
	"context"

	"github.com/geoscope/geoscope/bundles"
	"github.com/geoscope/geoscope/policies"
)

// Embedded bundle names, as reported in decisions.
const (
	EmbeddedPolicyName   = "policies"
	EmbeddedRegistryName = "registry"
)

// defaultSources loads the embedded policy bundle and the embedded example
// registry.
func defaultSources(opts LoadOptions) ([]Source, error) {
	pol, err := loadFS(policies.Bundle, EmbeddedPolicyName, opts)
	if err != nil {
		return nil, err
	}
	reg, err := loadFS(bundles.Registry(), EmbeddedRegistryName, opts)
	if err != nil {
		return nil, err
	}
	return []Source{pol, reg}, nil
}

// LoadSnapshot loads the bundles at paths (directories or .tar.gz files),
// or the embedded defaults when paths is empty, and builds a snapshot.
func LoadSnapshot(ctx context.Context, paths []string, opts LoadOptions) (*Snapshot, error) {
	var sources []Source
	if len(paths) == 0 {
		var err error
		if sources, err = defaultSources(opts); err != nil {
			return nil, err
		}
	}
	for _, p := range paths {
		src, err := LoadPath(p, opts)
		if err != nil {
			return nil, err
		}
		sources = append(sources, src)
	}
	return build(ctx, opts, sources...)
}
