// Package operation turns stored GraphQL operations (.graphql files) into
// compiled, validated Operations that the gateway serves as REST endpoints.
//
// It knows the upstream schema (from SDL or from an introspection answer),
// checks that every file holds exactly one operation that validates against
// that schema, reads and strips the gateway's own directives
// (@requireAuthentication, @rbac, @fromClaim), derives a JSON Schema of the
// operation's public variables, and coerces variables sent by clients (query
// parameters or a JSON object) by their declared GraphQL types.
//
// Everything here is pure computation: no HTTP routing, no network. A compiled
// Operation is immutable and safe for concurrent use.
//
// Choices where the contract leaves room:
//
//   - A list variable given as a query parameter accepts either one parameter
//     holding a JSON array (?ids=[1,2]) or repeated parameters, one element
//     each (?ids=1&ids=2). A single value that is not a JSON array is a
//     one-element list (GraphQL list coercion), so ?ids=1 is [1].
//   - wg_variables and individual query parameters are merged; a variable
//     given both ways is an error rather than one silently winning.
//   - A query parameter for which the reserved function answers true is never
//     a variable, even if a variable has that name (such a variable can still
//     be sent through wg_variables).
//   - A custom scalar given as a query parameter is parsed as JSON when its
//     text starts with '{', '[' or '"', and is taken as a string otherwise.
//   - ID values are sent upstream as strings; an integer ID in JSON input is
//     turned into its decimal string.
//   - A claim that is present but does not fit the variable's type is
//     ErrClaimInvalid, which wraps ErrClaimMissing: the token does not carry a
//     usable identity, so the gateway answers 401 for both.
package operation
