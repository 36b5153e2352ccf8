package live

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// Every patch diff makes is applied by an independent RFC 6902
// implementation and must give the target exactly.
func TestDiffApplies(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"replace a leaf", `{"a":{"b":1,"c":2}}`, `{"a":{"b":1,"c":3}}`,
			`[{"op":"replace","path":"/a/c","value":3}]`},
		{"add to the end of a list", `{"l":[{"id":1},{"id":2}]}`, `{"l":[{"id":1},{"id":2},{"id":3}]}`,
			`[{"op":"add","path":"/l/2","value":{"id":3}}]`},
		{"insert at the head of a list", `{"l":[{"id":1},{"id":2}]}`, `{"l":[{"id":0},{"id":1},{"id":2}]}`,
			`[{"op":"add","path":"/l/0","value":{"id":0}}]`},
		{"remove from a list", `{"l":[1,2,3]}`, `{"l":[1,3]}`,
			`[{"op":"remove","path":"/l/1"}]`},
		{"big integers keep their digits", `{"n":9007199254740993,"f":1.10}`, `{"n":9007199254740995,"f":1.10}`,
			`[{"op":"replace","path":"/n","value":9007199254740995}]`},
		{"no HTML escaping", `{"s":"a"}`, `{"s":"<b>&"}`,
			`[{"op":"replace","path":"/s","value":"<b>&"}]`},
		{"escaped pointer tokens", `{"a/b":1,"c~d":1}`, `{"a/b":2,"c~d":2}`, ""},
		{"to null and back", `{"data":{"x":1}}`, `{"data":null}`, ""},
		{"new key and removed key", `{"a":1,"b":2}`, `{"a":1,"c":null}`, ""},
		{"type change", `{"a":[1]}`, `{"a":{"0":1}}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := diff([]byte(tc.from), []byte(tc.to))
			if p == nil || !json.Valid(p) {
				t.Fatalf("diff = %q", p)
			}
			if tc.want != "" && string(p) != tc.want {
				t.Errorf("patch %s, want %s", p, tc.want)
			}
			patch, err := jsonpatch.DecodePatch(p)
			if err != nil {
				t.Fatalf("decode %s: %v", p, err)
			}
			got, err := patch.Apply([]byte(tc.from))
			if err != nil {
				t.Fatalf("apply %s: %v", p, err)
			}
			if !sameJSON(t, got, []byte(tc.to)) {
				t.Fatalf("applying %s to %s gave %s, want %s", p, tc.from, got, tc.to)
			}
		})
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	for _, p := range []struct {
		src []byte
		dst *any
	}{{a, &x}, {b, &y}} {
		d := json.NewDecoder(bytes.NewReader(p.src))
		d.UseNumber()
		if err := d.Decode(p.dst); err != nil {
			t.Fatal(err)
		}
	}
	return reflect.DeepEqual(x, y)
}

// Values keep the upstream's member order where the patch path leads to
// them in the new result.
func TestDiffKeepsMemberOrder(t *testing.T) {
	got := diff([]byte(`{"l":[{"z":1,"a":2}]}`), []byte(`{"l":[{"z":1,"a":2},{"z":3,"a":{"y":1,"b":2}}]}`))
	if want := `[{"op":"add","path":"/l/1","value":{"z":3,"a":{"y":1,"b":2}}}]`; string(got) != want {
		t.Fatalf("patch %s, want %s", got, want)
	}
}
