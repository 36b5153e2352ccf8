// Package auth turns an HTTP request into a verified identity.
//
// It reads a bearer token from the Authorization header, a cookie or a query
// parameter (in that order), verifies it as a JWT signed either with an HMAC
// secret or with a key from a JWKS endpoint, and returns an [Identity] with
// the subject, the roles and the claims. [Policy] decides whether a set of
// roles passes an @rbac directive, and [Mint] signs development tokens.
//
// The package is a pure library: it knows nothing of routing, upstreams or
// streams, and it never logs. Token values never appear in its errors, in
// [Error.Challenge] or in the slog/fmt representation of an [Identity];
// [StripQueryToken] removes a token from a URL before the caller logs or
// forwards it.
//
// Choices worth knowing:
//
//   - exp is required: a token without it is rejected ("missing_exp"),
//     because an open stream ends when its token expires and a token that
//     never expires (possibly leaked through a URL) would stay valid forever.
//   - exp and nbf allow [DefaultLeeway] (5s) of clock skew unless
//     [Config.Leeway] says otherwise (a negative value means none).
//   - Roles come from [Config.RolesClaim] (default "roles", dotted paths such
//     as "realm_access.roles" reach into nested objects); the value may be a
//     JSON array of strings or one string holding space-separated roles.
//   - With neither a secret nor a JWKS URL, authentication is not configured:
//     Authenticate checks no token and every request is anonymous (the
//     gateway passes tokens upstream, see [Authenticator.Unchecked]); Verify
//     rejects any token with reason "not_configured".
//   - Only algorithms the configured keys can verify are accepted: HS256/384/512
//     with the secret, RS*/PS*/ES*/EdDSA with JWKS keys of the matching type.
//     "none" and HMAC tokens keyed with a public key never verify.
package auth
