package decision

import (
	"encoding/json"
	"reflect"
	"testing"
)

// tricky are strings encoding/json escapes in every way it has.
var tricky = func() []string {
	out := []string{"", "plain", `q"uote`, `back\slash`, "<script>&amp;</script>", "line\u2028sep\u2029", "ünïcødé 🙂",
		"bad \xff byte", "cut \xe2\x82", "\x00\x01\x1f\x7f", "\b\f\n\r\t"}
	for c := range 256 {
		out = append(out, string([]byte{'x', byte(c), 'y'}))
	}
	return out
}()

// fill sets every field of the struct v points to, with values made from s;
// it fails on a field of a kind it does not know, so that a new field of
// Action or Admission cannot go unnoticed by these tests.
func fill(t *testing.T, v reflect.Value, s string, only int) {
	t.Helper()
	for i := range v.NumField() {
		if only >= 0 && i != only {
			continue
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(s)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			switch f.Type().Elem().Kind() {
			case reflect.String:
				f.Set(reflect.ValueOf([]string{s, "b", s}))
			case reflect.Struct:
				el := reflect.New(f.Type().Elem()).Elem()
				fill(t, el, s, -1)
				f.Set(reflect.Append(reflect.MakeSlice(f.Type(), 0, 2), el, reflect.New(f.Type().Elem()).Elem()))
			default:
				t.Fatalf("field %s: slice of %s not filled", v.Type().Field(i).Name, f.Type().Elem())
			}
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"registry": s, "policies": "p", s: "x"}))
		default:
			t.Fatalf("field %s of kind %s not filled: teach this test and AppendJSON about it", v.Type().Field(i).Name, f.Kind())
		}
	}
}

func TestAppendJSONIsEncodingJSON(t *testing.T) {
	check := func(a *Admission) {
		t.Helper()
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON\n got  %s\n want %s", got, want)
		}
	}
	check(&Admission{})
	check(&Admission{Actions: []Action{}, OrderIDs: []string{}, Bundles: map[string]string{}})
	nFields := reflect.TypeFor[Action]().NumField()
	for _, s := range tricky {
		a := &Admission{}
		fill(t, reflect.ValueOf(a).Elem(), s, -1)
		check(a)
		// Each field of an action on its own: omitempty is per field.
		for i := range nFields {
			var act Action
			fill(t, reflect.ValueOf(&act).Elem(), s, i)
			check(&Admission{Actions: []Action{act}})
		}
	}
}
