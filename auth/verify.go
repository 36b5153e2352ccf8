package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// errCrit rejects tokens with a "crit" header: RFC 7515 section 4.1.11
// requires understanding every listed extension, and we understand none.
var errCrit = errors.New("unsupported crit header")

// Authenticate finds and verifies the request's token.
//
// It returns (nil, nil) when the request carries no token (anonymous), an
// *Identity for a valid token, and an *Error (wrapping ErrInvalidToken) when
// a token is present but rejected; the caller answers 401 with
// Error.Challenge as WWW-Authenticate. The request's context bounds a JWKS
// refetch triggered by an unknown kid.
//
// Without a secret or a JWKS URL (not Configured) no token is checked:
// every request is anonymous here, and its token, which Unchecked finds,
// is for the upstream to judge.
func (a *Authenticator) Authenticate(r *http.Request) (*Identity, error) {
	if !a.Configured() {
		return nil, nil
	}
	tok, src, err := extract(r, a.cfg.Cookie, a.cfg.QueryParam)
	if err != nil {
		return nil, err
	}
	if src == SourceNone {
		return nil, nil
	}
	id, err := a.Verify(r.Context(), tok)
	if err != nil {
		return nil, err
	}
	id.Source = src
	return id, nil
}

// Unchecked finds the request's token as Authenticate does (the bearer
// header, else the cookie, else the query parameter) without verifying it,
// for a gateway that passes tokens upstream. It returns ("", SourceNone)
// when there is none, or when it is not even made of JWT characters.
func (a *Authenticator) Unchecked(r *http.Request) (string, Source) {
	tok, src, err := extract(r, a.cfg.Cookie, a.cfg.QueryParam)
	if err != nil {
		return "", SourceNone
	}
	return tok, src
}

// Verify checks one raw token (without "Bearer "). Errors are *Error.
func (a *Authenticator) Verify(ctx context.Context, tok string) (*Identity, error) {
	if !validToken(tok) {
		return nil, newError(ReasonMalformed)
	}
	if !a.Configured() {
		return nil, newError(ReasonNotConfigured)
	}
	claims := jwt.MapClaims{}
	t, err := a.parser.ParseWithClaims(tok, claims, a.keyfunc(ctx))
	if err != nil {
		return nil, a.classify(t, claims, err)
	}
	id := &Identity{Claims: claims, Token: tok}
	if sub, ok := claims["sub"].(string); ok {
		id.Subject = sub
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		id.ExpiresAt = exp.Time
	}
	if v, ok := lookup(map[string]any(claims), a.cfg.RolesClaim); ok {
		id.Roles = rolesOf(v)
	}
	return id, nil
}

// keyfunc picks the key by the token's alg: the secret for HMAC, a JWKS key
// for the rest. The key kind follows the alg, never the other way round, so
// an HS256 token can never be checked against a public key (key confusion).
func (a *Authenticator) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errCrit
		}
		alg := t.Method.Alg()
		if !a.algs[alg] {
			return nil, errKeyMismatch
		}
		if strings.HasPrefix(alg, "HS") {
			if a.secret == nil {
				return nil, errKeyMismatch
			}
			return a.secret, nil
		}
		if a.keys == nil {
			return nil, errKeyMismatch
		}
		return a.keys.key(ctx, t)
	}
}

// classify maps a jwt error to a Reason. Order matters: the token's form
// first, then the algorithm and key, then the signature, and only then the
// claims, which mean nothing for a token whose signature did not verify.
func (a *Authenticator) classify(t *jwt.Token, claims jwt.MapClaims, err error) *Error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, errCrit), errors.Is(err, errBadKID):
		return newError(ReasonMalformed)
	case t == nil:
		return newError(ReasonMalformed)
	case t.Method == nil || !a.algs[t.Method.Alg()], errors.Is(err, errKeyMismatch):
		if _, ok := t.Header["alg"].(string); !ok {
			return newError(ReasonMalformed)
		}
		return newError(ReasonBadAlgorithm)
	case errors.Is(err, errNoKeys):
		return newError(ReasonNoKeys)
	case errors.Is(err, errUnknownKey):
		return newError(ReasonUnknownKey)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return newError(ReasonBadSignature)
	case !errors.Is(err, jwt.ErrTokenInvalidClaims):
		return newError(ReasonMalformed)
	}
	// Claims: the validator joins every failure; report the most useful one.
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return newError(ReasonExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return newError(ReasonNotYetValid)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return newError(ReasonBadIssuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return newError(ReasonBadAudience)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		if _, ok := claims["exp"]; !ok {
			return newError(ReasonMissingExp)
		}
		if _, ok := claims["iss"]; !ok && a.cfg.Issuer != "" {
			return newError(ReasonBadIssuer)
		}
		return newError(ReasonBadAudience)
	}
	return newError(ReasonInvalidClaims)
}
