// Package bundles holds the example registry bundle (authorities and
// standing orders) that geoscope runs with when no --bundle is given, and
// the tooling notes for building and signing bundles.
package bundles

import (
	"embed"
	"io/fs"
)

//go:embed registry/.manifest registry/authorities/data.json registry/orders/data.json
var files embed.FS

// Registry is the example registry bundle tree (roots "authorities" and
// "orders").
func Registry() fs.FS {
	sub, err := fs.Sub(files, "registry")
	if err != nil {
		panic(err) // the embed directive above guarantees the directory
	}
	return sub
}
