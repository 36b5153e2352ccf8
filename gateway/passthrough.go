package gateway

import (
	"net/http"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/operation"
)

// Token pass-through (CONTRACT §11). With no auth.jwt (neither a secret
// nor a JWKS URL) the gateway verifies no token: every request is
// anonymous to it, the headers in upstream.forwardHeaders go upstream as
// the client sent them, and the upstream decides. An operation that needs
// a verified token (@requireAuthentication, @rbac, @fromClaim) could then
// never be served as written, so it is a load error that says why, rather
// than an endpoint that answers 401 to everyone.

// loadChecks are the checks every operation of cfg passes before it is
// served.
func loadChecks(cfg *config.Config) []operation.Check {
	if cfg.Auth.JWT.Configured() {
		return nil
	}
	return []operation.Check{requireJWT}
}

// requireJWT refuses an operation that needs a verified token.
func requireJWT(op *operation.Operation) *operation.Problem {
	if !op.RequiresAuth {
		return nil
	}
	return &operation.Problem{File: op.File, Line: op.AuthAt.Line, Column: op.AuthAt.Column,
		Message: "@" + op.AuthAt.Name + " needs a verified token, but auth.jwt has no secret or jwksUrl: " +
			"without one the gateway checks no token and only passes tokens upstream"}
}

// forwardedToken is the token that goes upstream with r: the verified
// one, or, when the gateway checks none, the one the client sent (as it
// sent it). setHeader says whether it must be written as Authorization:
// Bearer when that header is forwarded: always for a verified token (the
// upstream sees the same identity however a browser had to send it), and
// for an unchecked one only when it came from the cookie or the query
// parameter, since a header the client sent goes upstream untouched.
func (g *Gateway) forwardedToken(r *http.Request, id *auth.Identity) (token string, setHeader bool) {
	if id != nil {
		return id.Token, id.Token != ""
	}
	if g.auth.Configured() {
		return "", false
	}
	tok, src := g.auth.Unchecked(r)
	if src != auth.SourceHeader && r.Header.Get("Authorization") != "" {
		// The client sent its own Authorization (another scheme, say
		// Basic): it goes upstream untouched, and no cookie or query
		// token is put beside it.
		return "", false
	}
	return tok, tok != "" && src != auth.SourceHeader
}

// tokenSource is where r's token came from: the verified identity's
// source, or, when the gateway checks no token, where the unchecked one
// was found.
func (g *Gateway) tokenSource(r *http.Request, id *auth.Identity) auth.Source {
	if id != nil {
		return id.Source
	}
	if g.auth.Configured() {
		return auth.SourceNone
	}
	_, src := g.auth.Unchecked(r)
	return src
}
