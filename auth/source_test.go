package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestTokenSources(t *testing.T) {
	t.Parallel()
	a := newAuth(t, Config{Secret: testSecret, Cookie: "fb_token", QueryParam: "access_token"})
	noCookie := newAuth(t, Config{Secret: testSecret, QueryParam: "access_token"})
	noQuery := newAuth(t, Config{Secret: testSecret, Cookie: "fb_token"})
	hTok := hs(t, "HS256", []byte(testSecret), claims("sub", "from-header"))
	cTok := hs(t, "HS256", []byte(testSecret), claims("sub", "from-cookie"))
	qTok := hs(t, "HS256", []byte(testSecret), claims("sub", "from-query"))

	tests := []struct {
		name    string
		a       *Authenticator
		header  string
		cookie  string
		query   string
		wantSub string
		wantSrc Source
		reason  string
	}{
		{"header only", a, "Bearer " + hTok, "", "", "from-header", SourceHeader, ""},
		{"header scheme case-insensitive", a, "bearer  " + hTok + " ", "", "", "from-header", SourceHeader, ""},
		{"cookie only", a, "", cTok, "", "from-cookie", SourceCookie, ""},
		{"query only", a, "", "", "access_token=" + qTok, "from-query", SourceQuery, ""},
		{"header beats cookie and query", a, "Bearer " + hTok, cTok, "access_token=" + qTok, "from-header", SourceHeader, ""},
		{"cookie beats query", a, "", cTok, "access_token=" + qTok, "from-cookie", SourceCookie, ""},
		{"other scheme falls through to cookie", a, "Basic dXNlcjpwYXNz", cTok, "", "from-cookie", SourceCookie, ""},
		{"empty cookie is absent", a, "", "", "access_token=" + qTok, "from-query", SourceQuery, ""},
		{"query with other params", a, "", "", "first=1&access_token=" + qTok + "&wg_sse=true", "from-query", SourceQuery, ""},
		{"cookie disabled", noCookie, "", cTok, "", "", SourceNone, ""},
		{"query disabled", noQuery, "", "", "access_token=" + qTok, "", SourceNone, ""},
		{"empty query value is absent", a, "", "", "access_token=", "", SourceNone, ""},
		{"bearer without token", a, "Bearer", "", "", "", SourceNone, ReasonMalformed},
		{"bearer with blank token", a, "Bearer   ", cTok, "", "", SourceNone, ReasonMalformed},
		{"malformed header does not fall back", a, "Bearer a b", cTok, "", "", SourceNone, ReasonMalformed},
		{"two query tokens", a, "", "", "access_token=" + qTok + "&access_token=" + qTok, "", SourceNone, ReasonMalformed},
		{"bad cookie token", a, "", "a%20b", "", "", SourceNone, ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/operations/x", nil)
			r.URL.RawQuery = tc.query
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if tc.cookie != "" {
				r.Header.Set("Cookie", "other=1; fb_token="+tc.cookie)
			}
			id, err := tc.a.Authenticate(r)
			if got := reasonOf(t, err); got != tc.reason {
				t.Fatalf("reason = %q, want %q", got, tc.reason)
			}
			switch {
			case tc.wantSrc == SourceNone && id != nil:
				t.Fatalf("identity %v, want none", id)
			case tc.wantSrc != SourceNone && (id == nil || id.Subject != tc.wantSub || id.Source != tc.wantSrc):
				t.Fatalf("identity %v, want sub %q from %v", id, tc.wantSub, tc.wantSrc)
			}
		})
	}
}

func TestStripQueryToken(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, param, want string }{
		{"/op?access_token=abc", "access_token", "/op"},
		{"/op?b=2&access_token=abc&a=1", "access_token", "/op?b=2&a=1"},
		{"/op?access%5Ftoken=abc&a=%20x", "access_token", "/op?a=%20x"},
		{"/op?access_token=abc&access_token=def", "access_token", "/op"},
		{"/op?access_token", "access_token", "/op"},
		{"/op?a=1", "access_token", "/op?a=1"},
		{"/op?access_token=abc", "", "/op?access_token=abc"},
		{"/op?x=%zz&access_token=abc", "access_token", "/op?x=%zz"},
	}
	for _, tc := range tests {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		orig := u.String()
		if got := StripQueryToken(u, tc.param).String(); got != tc.want {
			t.Errorf("StripQueryToken(%q, %q) = %q, want %q", tc.in, tc.param, got, tc.want)
		}
		if u.String() != orig {
			t.Errorf("input URL modified: %q", u)
		}
	}
	if StripQueryToken(nil, "x") != nil {
		t.Error("nil URL")
	}
	a := newAuth(t, Config{QueryParam: "t"})
	if got := a.StripQueryToken(&url.URL{Path: "/p", RawQuery: "t=1&u=2"}).String(); got != "/p?u=2" {
		t.Errorf("method: %q", got)
	}
}
