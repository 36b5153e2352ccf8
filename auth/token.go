package auth

import (
	"net/http"
	"net/url"
	"strings"
)

// Source says where a token was found.
type Source int

// Token sources, in the order they are tried.
const (
	SourceNone   Source = iota // no token
	SourceHeader               // Authorization: Bearer
	SourceCookie               // Config.Cookie
	SourceQuery                // Config.QueryParam
)

// String implements fmt.Stringer.
func (s Source) String() string {
	switch s {
	case SourceHeader:
		return "header"
	case SourceCookie:
		return "cookie"
	case SourceQuery:
		return "query"
	}
	return "none"
}

// extract finds the request's token: the Authorization header if it uses the
// Bearer scheme, else the cookie, else the query parameter. ("", SourceNone,
// nil) means no token; an error means a token is present but unusable.
// Other Authorization schemes (Basic...) are not ours and are skipped, and an
// empty cookie or query value counts as absent (a cleared cookie).
func extract(r *http.Request, cookie, param string) (string, Source, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(strings.TrimLeft(h, " \t"), " ")
		if strings.EqualFold(scheme, "Bearer") {
			tok := strings.Trim(rest, " \t")
			if !validToken(tok) {
				return "", SourceHeader, newError(ReasonMalformed)
			}
			return tok, SourceHeader, nil
		}
	}
	if cookie != "" {
		if c, err := r.Cookie(cookie); err == nil && c.Value != "" {
			if !validToken(c.Value) {
				return "", SourceCookie, newError(ReasonMalformed)
			}
			return c.Value, SourceCookie, nil
		}
	}
	if param != "" && r.URL != nil {
		// ParseQuery keeps what it could parse; a broken neighbour does not hide the token.
		vals, _ := url.ParseQuery(r.URL.RawQuery)
		switch v := vals[param]; {
		case len(v) > 1:
			return "", SourceQuery, newError(ReasonMalformed) // ambiguous: which one is meant?
		case len(v) == 1 && v[0] != "":
			if !validToken(v[0]) {
				return "", SourceQuery, newError(ReasonMalformed)
			}
			return v[0], SourceQuery, nil
		}
	}
	return "", SourceNone, nil
}

// validToken accepts the JWS compact serialisation's alphabet only
// (base64url and dots), up to MaxTokenBytes. Anything else is rejected
// before parsing, which also keeps odd bytes out of every later step.
func validToken(t string) bool {
	if t == "" || len(t) > MaxTokenBytes {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// StripQueryToken returns a copy of u without the query parameter param, so
// the URL can be logged or forwarded without the token. The other
// parameters keep their order and encoding. u is not modified; a nil u
// gives nil and param "" gives an unchanged copy.
func StripQueryToken(u *url.URL, param string) *url.URL {
	if u == nil {
		return nil
	}
	c := *u
	if c.User != nil {
		user := *c.User
		c.User = &user
	}
	if param == "" || c.RawQuery == "" {
		return &c
	}
	parts := strings.Split(c.RawQuery, "&")
	kept := parts[:0]
	for _, p := range parts {
		key, _, _ := strings.Cut(p, "=")
		if k, err := url.QueryUnescape(key); err == nil && k == param || key == param {
			continue
		}
		kept = append(kept, p)
	}
	c.RawQuery = strings.Join(kept, "&")
	return &c
}

// StripQueryToken is StripQueryToken(u, a's QueryParam).
func (a *Authenticator) StripQueryToken(u *url.URL) *url.URL {
	return StripQueryToken(u, a.cfg.QueryParam)
}
