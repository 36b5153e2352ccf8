package auth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzTokenExtraction feeds arbitrary Authorization, Cookie and query values
// through extraction and verification: no panic, only *Error failures,
// extracted tokens are well-formed, errors never echo the input, and a
// stripped URL never still carries the query token.
func FuzzTokenExtraction(f *testing.F) {
	good := hs(f, "HS256", []byte(testSecret), claims("exp", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()))
	f.Add("Bearer "+good, "", "")
	f.Add("", good, "")
	f.Add("", "", "access_token="+good)
	f.Add("bearer\t"+good, "x", "access_token=a&access_token=b")
	f.Add("Basic dXNlcjpwYXNz", "\"quoted\"", "access_token=%zz;x")
	a, err := New(f.Context(), Config{Secret: testSecret, Cookie: "fb_token", QueryParam: "access_token"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(a.Close)
	f.Fuzz(func(t *testing.T, header, cookie, rawQuery string) {
		r := &http.Request{Method: http.MethodGet, Header: http.Header{}, URL: &url.URL{Path: "/operations/x", RawQuery: rawQuery}}
		if header != "" {
			r.Header["Authorization"] = []string{header}
		}
		if cookie != "" {
			r.Header["Cookie"] = []string{"fb_token=" + cookie}
		}
		tok, src, err := extract(r, "fb_token", "access_token")
		if err == nil && src != SourceNone && !validToken(tok) {
			t.Fatalf("extracted an invalid token %q", tok)
		}
		id, err := a.Authenticate(r)
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error of type %T", err)
			}
			for _, in := range []string{header, cookie, rawQuery} {
				if len(in) >= 16 && (strings.Contains(e.Error(), in) || strings.Contains(e.Challenge(), in)) {
					t.Fatalf("error echoes input: %q", e.Error())
				}
			}
			if strings.ContainsAny(e.Challenge(), "\r\n") {
				t.Fatal("challenge with a line break")
			}
		}
		if id != nil && id.Source == SourceQuery {
			if strings.Contains(StripQueryToken(r.URL, "access_token").String(), id.Token) {
				t.Fatal("stripped URL still carries the token")
			}
		}
	})
}

// FuzzClaimPath looks up arbitrary paths in arbitrary claim sets: no panic,
// no runaway recursion, and a top-level key is always found by its own name.
func FuzzClaimPath(f *testing.F) {
	f.Add([]byte(`{"sub":"u","a":{"b":{"c":1}},"a.b":2}`), "a.b.c")
	f.Add([]byte(`{"https://example.com/claims":{"tenant":"acme"}}`), "https://example.com/claims.tenant")
	f.Add([]byte(`{"groups":["x",{"y":true}]}`), "groups.1.y")
	f.Add([]byte(`{"realm_access":{"roles":"a b"}}`), "ROLES")
	f.Add([]byte(`{"a":{"a":{"a":{}}},"a.a":{"a":{}}}`), "a.a.a.a.a")
	f.Fuzz(func(t *testing.T, claimsJSON []byte, path string) {
		if len(path) > 256 || len(claimsJSON) > 4096 {
			return
		}
		var c map[string]any
		if json.Unmarshal(claimsJSON, &c) != nil {
			return
		}
		id := &Identity{Claims: c}
		if v, ok := lookup(c, "realm_access.roles"); ok {
			id.Roles = rolesOf(v)
		}
		v, ok := id.Claim(path)
		if !ok && v != nil {
			t.Fatalf("Claim(%q) = %v but not ok", path, v)
		}
		for k := range c {
			if k == "" || k == "SUB" || k == "EMAIL" || k == "NAME" || strings.EqualFold(k, "roles") {
				continue
			}
			if _, ok := id.Claim(k); !ok {
				t.Fatalf("top-level key %q not found", k)
			}
		}
	})
}
