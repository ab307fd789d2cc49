package input

import (
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// checkKeys rejects what encoding/json lets through after a successful
// decode: a key repeated in one object (the last one wins) and a key that
// matches a field only case-insensitively ("IP" for "ip"). Both let a proxy
// or log that reads the JSON differently see another request than the one
// decided, so strict decoding refuses them.
//
// data is known to be valid JSON (it just decoded), so this is a single
// linear pass over the bytes that allocates only on the error path.
func checkKeys(data []byte, names map[string]bool) error {
	type frame struct {
		object bool
		key    string // current key (objects)
		index  int    // current index (arrays)
		seen   []string
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		return b.String()
	}
	expectKey := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{':
			stack = append(stack, frame{object: true})
			expectKey = true
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			stack = stack[:len(stack)-1]
			expectKey = false
		case ',':
			if top := &stack[len(stack)-1]; top.object {
				expectKey = true
			} else {
				top.index++
			}
		case '"':
			end := stringEnd(data, i)
			if expectKey {
				raw := data[i+1 : end]
				key := string(raw)
				if strings.IndexByte(key, '\\') >= 0 {
					if u, err := strconv.Unquote(string(data[i : end+1])); err == nil {
						key = u
					}
				}
				top := &stack[len(stack)-1]
				top.key = key
				if !names[key] {
					return invalid(path(), "unknown field (field names are case-sensitive)")
				}
				for _, k := range top.seen {
					if k == key {
						return invalid(path(), "appears twice in one object")
					}
				}
				top.seen = append(top.seen, key)
				expectKey = false
			}
			i = end
		}
	}
	return nil
}

// stringEnd returns the index of the quote closing the string opened at i.
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return len(data) - 1
}

var fieldNames sync.Map // reflect.Type → map[string]bool

// jsonNames returns every JSON field name reachable from t.
func jsonNames(t reflect.Type) map[string]bool {
	if v, ok := fieldNames.Load(t); ok {
		return v.(map[string]bool)
	}
	names := map[string]bool{}
	var walk func(reflect.Type)
	seen := map[reflect.Type]bool{}
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for name, f := range jsonFields(t) {
			names[name] = true
			walk(f.Type)
		}
	}
	walk(t)
	fieldNames.Store(t, names)
	return names
}
