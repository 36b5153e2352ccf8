// Package openapi describes the served operations as an OpenAPI 3.1
// document: one path per public operation, its variables as query
// parameters (GET) or a JSON request body (POST, mutations), the security
// schemes where authentication is required, the response schema derived
// from the upstream schema for exactly the fields the operation selects,
// the stream media types of subscriptions and live queries, and the error
// body with its statuses.
//
// Schemas are JSON Schema 2020-12, the dialect of OpenAPI 3.1: a nullable
// value is "type": ["string", "null"], input object types are shared in
// components.schemas. Variables filled from token claims (@fromClaim) are
// not parameters: a client may not send them.
//
// The document is built from compiled operations and the upstream schema
// only; the gateway serves it at GET /openapi.json and `fireboom openapi`
// prints it.
package openapi
