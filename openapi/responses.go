package openapi

import (
	"github.com/fireboom/fireboom/operation"
)

// Descriptions of the stream framing, shared by every streaming operation.
const (
	okJSON = "The upstream's GraphQL result. A result that carries errors beside data is still a result; " +
		"the upstream's HTTP status is passed on with its body."
	okSubscription = "The stream. text/event-stream: each result is an event `id: <opaque>` + `data: <result>`; " +
		"`event: done` + `data: done` ends it; `event: gap` (data: {missed, lastEventId, reason}) tells of missed events; " +
		"a `:` line is a heartbeat. application/x-ndjson: each result is one line of JSON followed by a blank line; " +
		"a lone newline is a heartbeat. With wg_subscribe_once=true: the first result as application/json."
	okLive = "Without wg_live: the upstream's GraphQL result, its HTTP status passed on. With wg_live=true: a stream " +
		"of results, pushed only when the result changed, framed as for subscriptions (text/event-stream events with " +
		"ids, or application/x-ndjson lines); an unreachable upstream is one {\"errors\":[...]} result " +
		"(code UpstreamUnavailable) and the stream goes on. With wg_json_patch=true, a JSON array is an RFC 6902 " +
		"patch to apply to the previous result, a JSON object a full result."
)

// responses lists every answer of an operation: the result (and streams),
// and the error statuses that can occur for its kind, referring to
// components.responses.
func responses(op *operation.Operation, result string, live bool) map[string]any {
	ok := map[string]any{"application/json": map[string]any{"schema": ref(result)}}
	desc := okJSON
	stream := false
	switch {
	case op.Kind == operation.Subscription:
		stream, desc = true, okSubscription
		ok["text/event-stream"] = map[string]any{"schema": map[string]any{"type": "string"}}
		ok["application/x-ndjson"] = map[string]any{"schema": ref(result)}
	case live:
		stream, desc = true, okLive
		ok["text/event-stream"] = map[string]any{"schema": map[string]any{"type": "string"}}
		ok["application/x-ndjson"] = map[string]any{"schema": map[string]any{"anyOf": []any{ref(result), ref(patchName)}}}
	}
	r := map[string]any{
		"200":     map[string]any{"description": desc, "content": ok},
		"400":     responseRef("BadRequest"),
		"401":     responseRef("Unauthorized"),
		"404":     responseRef("NotFound"),
		"405":     responseRef("MethodNotAllowed"),
		"502":     responseRef("UpstreamUnavailable"),
		"default": responseRef("Error"),
	}
	if op.Kind == operation.Subscription {
		r["204"] = map[string]any{"description": "wg_subscribe_once=true: the subscription completed before its first result."}
	}
	if !op.RBAC.IsZero() {
		r["403"] = responseRef("Forbidden")
	}
	if op.Kind == operation.Mutation {
		r["413"] = responseRef("PayloadTooLarge")
	}
	if stream {
		r["429"] = responseRef("TooManyStreamsPerIdentity")
		r["503"] = responseRef("ServiceUnavailable")
	}
	return r
}

func responseRef(name string) map[string]any {
	return map[string]any{"$ref": "#/components/responses/" + name}
}

// errorResponses are the components.responses every operation refers to.
func errorResponses() map[string]any {
	retry := header("Retry-After", "Seconds to wait before retrying.")
	return map[string]any{
		"BadRequest": errorResponse("InputValidationError: a variable has the wrong type, is missing, unknown or malformed, "+
			"a @fromClaim variable was sent, or a wg_ flag is not true, false or empty.", nil),
		"Unauthorized": errorResponse("Unauthorized: no token where one is needed, or an invalid one (expired, bad signature, "+
			"wrong issuer or audience, an algorithm not configured), on any operation.", header("WWW-Authenticate", "A Bearer challenge (RFC 6750).")),
		"Forbidden":                 errorResponse("Forbidden: the token's roles do not allow this operation.", nil),
		"NotFound":                  errorResponse("NotFound: no such operation (it may have been removed by a reload).", nil),
		"MethodNotAllowed":          errorResponse("MethodNotAllowed: another method than the operation's.", header("Allow", "The operation's method.")),
		"PayloadTooLarge":           errorResponse("PayloadTooLarge: the body is larger than limits.maxBodyBytes.", nil),
		"TooManyStreamsPerIdentity": errorResponse("TooManyStreams: this identity holds subscriptions.maxStreamsPerIdentity streams.", retry),
		"ServiceUnavailable": errorResponse("TooManyStreams: the gateway holds subscriptions.maxStreams streams or its upstream "+
			"connection limit is reached; or Unavailable: it shut down before the first result (wg_subscribe_once).", retry),
		"UpstreamUnavailable": errorResponse("UpstreamUnavailable: the upstream could not be reached or refused before any result was sent, "+
			"or its schema is not loaded yet.", nil),
		"Error": errorResponse("Another error, in the same body (InternalServerError).", nil),
	}
}

func errorResponse(desc string, headers map[string]any) map[string]any {
	r := map[string]any{
		"description": desc,
		"content":     map[string]any{"application/json": map[string]any{"schema": ref(errorName)}},
	}
	if headers != nil {
		r["headers"] = headers
	}
	return r
}

func header(name, desc string) map[string]any {
	return map[string]any{name: map[string]any{"description": desc, "schema": map[string]any{"type": "string"}}}
}

// fixedSchemas are the gateway's own bodies: the error, the GraphQL error
// and the JSON Patch of live queries.
func fixedSchemas() map[string]any {
	str := map[string]any{"type": "string"}
	return map[string]any{
		errorName: map[string]any{
			"type":     "object",
			"required": []any{"code", "message"},
			"properties": map[string]any{
				"code": map[string]any{"type": "string", "description": "NotFound, MethodNotAllowed, InputValidationError, " +
					"Unauthorized, Forbidden, PayloadTooLarge, UpstreamUnavailable, TooManyStreams, Unavailable, InternalServerError."},
				"message": str,
				"errors": map[string]any{
					"type":        "array",
					"description": "InputValidationError: one entry per invalid variable.",
					"items": map[string]any{
						"type":     "object",
						"required": []any{"propertyPath", "message"},
						"properties": map[string]any{
							"propertyPath": map[string]any{"type": "string", "description": "A JSON pointer into the variables: /filter/author."},
							"invalidValue": map[string]any{},
							"message":      str,
						},
					},
				},
			},
		},
		graphQLErrorName: map[string]any{
			"type":     "object",
			"required": []any{"message"},
			"properties": map[string]any{
				"message": str,
				"locations": map[string]any{"type": "array", "items": map[string]any{
					"type": "object", "properties": map[string]any{"line": map[string]any{"type": "integer"}, "column": map[string]any{"type": "integer"}},
				}},
				"path":       map[string]any{"type": "array", "items": map[string]any{"type": []any{"string", "integer"}}},
				"extensions": map[string]any{"type": "object"},
			},
		},
		patchName: map[string]any{
			"type":        "array",
			"description": "An RFC 6902 JSON Patch against the previous result.",
			"items": map[string]any{
				"type":     "object",
				"required": []any{"op", "path"},
				"properties": map[string]any{
					"op":    map[string]any{"type": "string", "enum": []any{"add", "remove", "replace", "move", "copy", "test"}},
					"path":  str,
					"from":  str,
					"value": map[string]any{},
				},
			},
		},
	}
}
