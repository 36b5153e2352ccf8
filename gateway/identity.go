package gateway

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"sort"
	"strings"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/upstream"
)

// identify is the one point where a request's identity is decided, for
// every kind of endpoint and every stream mode.
func (g *Gateway) identify(r *http.Request, ep *endpoint) (*auth.Identity, *apiError) {
	id, err := g.auth.Authenticate(r)
	if err != nil {
		var ae *auth.Error
		if errors.As(err, &ae) {
			e := unauthorized(ae.Challenge(), ae.Description)
			e.authReason = ae.Reason
			return nil, e
		}
		return nil, unauthorized("", "the token could not be verified")
	}
	if r.Method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")) && g.tokenSource(r, id) == auth.SourceCookie {
		// Cross-site request forgery: browsers attach cookies to form posts
		// from any site, but a JSON body needs a CORS preflight first. (A
		// token passed through unchecked is guarded the same way: the
		// upstream would take it as the user's.)
		return nil, newError(http.StatusForbidden, codeForbidden, "a POST authenticated by cookie must send Content-Type: application/json")
	}
	if !ep.RequiresAuth {
		return id, nil
	}
	if id == nil {
		e := unauthorized("", ep.Name+" requires authentication")
		e.authReason = "missing"
		return nil, e
	}
	if !ep.policy.Allows(id.Roles) {
		return nil, newError(http.StatusForbidden, codeForbidden, "the token's roles do not allow "+ep.Name)
	}
	return id, nil
}

// isJSON reports whether a Content-Type is application/json (parameters
// such as charset allowed).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// unauthorized is a 401 with a WWW-Authenticate challenge (RFC 6750).
func unauthorized(challenge, msg string) *apiError {
	if challenge == "" {
		challenge = `Bearer realm="fireboom"`
	}
	return newError(http.StatusUnauthorized, codeUnauthorized, msg).with("WWW-Authenticate", challenge)
}

// claimMissing is the 401 for a valid token that lacks a claim a
// @fromClaim variable needs, or carries it with the wrong type. A token was
// given, so the challenge says invalid_token (RFC 6750 §3.1: "invalid for
// other reasons").
func claimMissing() *apiError {
	const msg = "the token lacks a claim this operation needs"
	e := unauthorized(`Bearer error="invalid_token", error_description="`+msg+`"`, msg)
	e.authReason = "missing_claim"
	return e
}

// claimLookup resolves @fromClaim names against an identity.
func claimLookup(id *auth.Identity) func(string) (any, bool) {
	return func(claim string) (any, bool) {
		if id == nil {
			return nil, false
		}
		if claim == "roles" {
			return id.Roles, id.Roles != nil
		}
		return id.Claim(claim)
	}
}

// upstreamRequest is exactly what is sent upstream for this call: the
// static headers and the forwarded ones on the HTTP request and WebSocket
// upgrade, and the same in the connection_init payload. Requests that
// differ in any of it never share an upstream connection.
func (g *Gateway) upstreamRequest(r *http.Request, ep *endpoint, id *auth.Identity, vars json.RawMessage) upstream.Request {
	h := staticHeaders(g.cfg)
	for _, name := range g.cfg.Upstream.ForwardHeaders {
		if v := r.Header.Values(name); len(v) > 0 {
			h[http.CanonicalHeaderKey(name)] = cleanHeaderValues(v)
		}
	}
	// A token read from the cookie or query parameter is forwarded as the
	// bearer token too, so the upstream sees the same identity whichever
	// way a browser had to send it.
	token, setHeader := g.forwardedToken(r, id)
	if setHeader && forwards(g.cfg.Upstream.ForwardHeaders, "Authorization") {
		h.Set("Authorization", "Bearer "+token)
	}
	req := upstream.Request{
		Query:         ep.Query,
		OperationName: ep.OperationName,
		Variables:     vars,
		Header:        h,
	}
	if ep.Kind == "subscription" {
		req.InitPayload = initPayload(h, token, forwards(g.cfg.Upstream.ForwardHeaders, "Authorization"))
	}
	return req
}

// initPayload builds the connection_init payload: {"headers": {...}} plus
// "authToken" for Apollo-style onConnect handlers. It is nil when there is
// nothing to say.
func initPayload(h http.Header, token string, withToken bool) json.RawMessage {
	if len(h) == 0 {
		return nil
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	headers := make(map[string]string, len(h))
	for _, k := range keys {
		headers[k] = strings.Join(h[k], ", ")
	}
	p := map[string]any{"headers": headers}
	if withToken && token != "" {
		p["authToken"] = token
	}
	b, _ := json.Marshal(p)
	return b
}

func forwards(names []string, header string) bool {
	for _, n := range names {
		if strings.EqualFold(n, header) {
			return true
		}
	}
	return false
}

// cleanHeaderValues drops values carrying CR, LF or NUL: net/http refuses
// them on the way in, but a forwarded value is checked again here so that
// no client can inject a header line upstream.
func cleanHeaderValues(v []string) []string {
	out := make([]string, 0, len(v))
	for _, s := range v {
		if !strings.ContainsAny(s, "\r\n\x00") {
			out = append(out, s)
		}
	}
	return out
}
