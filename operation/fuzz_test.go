package operation

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"testing"
)

// FuzzVariablesFromQuery: no query string may panic, and every accepted one
// yields a JSON object that VariablesFromJSON accepts again, unchanged.
func FuzzVariablesFromQuery(f *testing.F) {
	for _, s := range []string{
		"room=a&code=007",
		"room=a&first=2147483648&exact=yes",
		"room=a&ids=1&ids=2&m=[1,null]&m=3",
		`room=a&filter={"and":[{"tags":"x"}],"limit":1e1}`,
		`wg_variables={"room":"a","meta":{"x":[1,2.5]}}&ratio=-0.5e3`,
		"room=%FF&sort=OLDEST&wg_sse=true&access_token=x",
	} {
		f.Add(s)
	}
	op := mustCompile(f, varsOp)
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw) // keep what parsed
		out, err := op.VariablesFromQuery(q, isReserved)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || len(ie.Errors) == 0 {
				t.Fatalf("error %v is not an *InputError with errors", err)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("output %s is not a JSON object: %v", out, err)
		}
		again, err := op.VariablesFromJSON(out)
		if err != nil {
			t.Fatalf("VariablesFromJSON(%s): %v", out, err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not stable:\n%s\n%s", out, again)
		}
	})
}
