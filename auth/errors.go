package auth

import (
	"errors"
	"strings"
)

// Named errors. Every *Error returned by Authenticate wraps ErrInvalidToken.
var (
	// ErrInvalidToken is wrapped by every *Error: a token was present but
	// not accepted. The gateway answers 401.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrInvalidConfig is wrapped by New when the Config is unusable.
	ErrInvalidConfig = errors.New("auth: invalid config")
	// ErrNoSecret is returned by Mint when the Config has no HMAC secret.
	ErrNoSecret = errors.New("auth: no jwt secret configured")
	// ErrJWKSFetch wraps failures to load the JWKS; they are reported to the
	// handler given with WithRefreshErrorHandler.
	ErrJWKSFetch = errors.New("auth: jwks fetch failed")
)

// Reasons carried by Error.Reason: short, stable, suitable as a metrics label.
const (
	ReasonMalformed     = "malformed"      // not a well-formed JWT, or too large
	ReasonExpired       = "expired"        // exp (plus leeway) has passed
	ReasonMissingExp    = "missing_exp"    // no exp claim (exp is required)
	ReasonNotYetValid   = "not_yet_valid"  // nbf (minus leeway) is in the future
	ReasonBadSignature  = "bad_signature"  // signature does not verify
	ReasonBadAlgorithm  = "bad_algorithm"  // alg not accepted, or alg does not fit the key
	ReasonBadIssuer     = "bad_issuer"     // iss missing or not Config.Issuer
	ReasonBadAudience   = "bad_audience"   // aud missing or not containing Config.Audience
	ReasonInvalidClaims = "invalid_claims" // a registered claim has the wrong type
	ReasonUnknownKey    = "unknown_key"    // kid not in the JWKS, even after a refetch
	ReasonNoKeys        = "no_keys"        // the JWKS has not been loaded (yet) or is empty
	ReasonNotConfigured = "not_configured" // neither secret nor JWKS configured
)

// descriptions are fixed texts: they never contain any part of the token,
// so they are safe in responses, headers and logs.
var descriptions = map[string]string{
	ReasonMalformed:     "token is malformed",
	ReasonExpired:       "token expired",
	ReasonMissingExp:    "token has no expiry",
	ReasonNotYetValid:   "token is not valid yet",
	ReasonBadSignature:  "token signature is invalid",
	ReasonBadAlgorithm:  "token algorithm is not accepted",
	ReasonBadIssuer:     "token issuer is not accepted",
	ReasonBadAudience:   "token audience is not accepted",
	ReasonInvalidClaims: "token claims are invalid",
	ReasonUnknownKey:    "token signing key is unknown",
	ReasonNoKeys:        "no signing keys are available",
	ReasonNotConfigured: "authentication is not configured",
}

// Error is returned by Authenticate when a token is present but rejected.
// Its fields and methods never contain the token or any part of it.
type Error struct {
	// Reason is one of the Reason constants; use it as a metrics label.
	Reason string
	// Description is a short human text, safe to send to clients.
	Description string
}

func newError(reason string) *Error {
	return &Error{Reason: reason, Description: descriptions[reason]}
}

// Error implements error.
func (e *Error) Error() string { return "auth: invalid token: " + e.Description }

// Unwrap makes errors.Is(err, ErrInvalidToken) true.
func (e *Error) Unwrap() error { return ErrInvalidToken }

// Challenge is the WWW-Authenticate header value for a 401 answer, per
// RFC 6750 section 3: Bearer error="invalid_token", error_description="...".
func (e *Error) Challenge() string {
	return `Bearer error="invalid_token", error_description="` + quoteSafe(e.Description) + `"`
}

// ChallengeNoToken is the WWW-Authenticate header value for a 401 answer to
// a request that carried no token (RFC 6750 section 3.1: no error code).
// realm "" gives plain "Bearer".
func ChallengeNoToken(realm string) string {
	if realm == "" {
		return "Bearer"
	}
	return `Bearer realm="` + quoteSafe(realm) + `"`
}

// quoteSafe keeps a value inside an RFC 7230 quoted-string: RFC 6750 limits
// error_description to %x20-21 / %x23-5B / %x5D-7E, so quotes, backslashes
// and control or non-ASCII bytes are dropped.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
