package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// A data file that names a member twice in one object is refused. OPA's
// loader, like encoding/json, keeps the last of the two silently: an
// authority listed twice got the second entry's jurisdiction, an order
// listed twice became its second (perhaps revoked) version, and nothing
// said so. Which one its author meant cannot be told, so neither is
// guessed. jsontext, the decoder the request path uses, refuses duplicate
// names by default; here it only validates, OPA's loader still decodes.
// YAML data files are not checked, nor bundles OPA's bundle plugin
// downloads (OPA decodes them; see docs/bundles.md).

// duplicateNames checks every data.json a bundle's loader yields.
func duplicateNames(files bundle.DirectoryLoader) error {
	for {
		f, err := files.NextFile()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return nil // a bundle that cannot be read: its loader says why
		}
		if path.Base(f.Path()) != "data.json" {
			_ = f.Close()
			continue
		}
		var raw bytes.Buffer
		_, err = f.Read(&raw, math.MaxInt64)
		_ = f.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
		if err := duplicateName(f.Path(), raw.Bytes()); err != nil {
			return err
		}
	}
}

// duplicateName is an error naming the first member named twice in one
// object of raw, the data file at file; nil when there is none (or when raw
// is not valid JSON, which the loader reports).
func duplicateName(file string, raw []byte) error {
	// OPA's decoder takes invalid UTF-8 in strings; stopping at it here
	// would let a name given twice after it through.
	_, err := jsontext.NewDecoder(bytes.NewReader(raw), jsontext.AllowInvalidUTF8(true)).ReadValue()
	var serr *jsontext.SyntacticError
	if !errors.As(err, &serr) || !errors.Is(serr.Err, jsontext.ErrDuplicateName) {
		return nil
	}
	file = strings.TrimPrefix(path.Clean("/"+file), "/")
	return fmt.Errorf("%w: %s: %s is given twice in one object; which of the two was meant cannot be told, so the bundle is refused",
		ErrBundle, file, dataPath(path.Dir(file), serr.JSONPointer))
}

// dataPath is where in data a member of the data file in dir is, written
// as the registry's violations write paths: "orders" and "/A/expires" →
// "orders.A.expires".
func dataPath(dir string, member jsontext.Pointer) string {
	var parts []string
	if dir != "." {
		parts = strings.Split(dir, "/")
	}
	for tok := range member.Tokens() {
		parts = append(parts, tok)
	}
	return strings.Join(parts, ".")
}
