// Package bundletest packs bundle files into .tar.gz archives for tests, in
// the layout OPA's own writer uses (absolute names, regular files).
package bundletest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"maps"
	"slices"
	"testing"
)

// File is one file of a bundle archive; Name is a slash path.
type File struct {
	Name string
	Body []byte
}

// Tarball packs files, in the order given, as a .tar.gz.
func Tarball(tb testing.TB, files ...File) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "/" + f.Name, Mode: 0o600, Size: int64(len(f.Body)), Typeflag: tar.TypeReg}); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(f.Body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TarballOf packs a map of slash paths to contents, sorted by path.
func TarballOf(tb testing.TB, files map[string]string) []byte {
	tb.Helper()
	list := make([]File, 0, len(files))
	for _, name := range slices.Sorted(maps.Keys(files)) {
		list = append(list, File{Name: name, Body: []byte(files[name])})
	}
	return Tarball(tb, list...)
}
