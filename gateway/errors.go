package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/fireboom/fireboom/operation"
)

// Error codes of the JSON error body: {"code": ..., "message": ...}.
const (
	codeNotFound         = "NotFound"
	codeMethodNotAllowed = "MethodNotAllowed"
	codeInput            = "InputValidationError"
	codeUnauthorized     = "Unauthorized"
	codeForbidden        = "Forbidden"
	codeTooLarge         = "PayloadTooLarge"
	codeTimeout          = "RequestTimeout"
	codeUnavailable      = "UpstreamUnavailable"
	codeTooManyStreams   = "TooManyStreams"
	codeInternal         = "InternalServerError"
	codeShuttingDown     = "Unavailable" // the code sse uses for a once request cut by shutdown
)

// apiError is the JSON body of every error answer under /operations.
type apiError struct {
	status  int
	Code    string                 `json:"code"`
	Message string                 `json:"message"`
	Errors  []operation.FieldError `json:"errors,omitempty"`
	// header is set on the response before writing (Allow,
	// WWW-Authenticate, Retry-After).
	header http.Header
	// authReason labels 401s in the auth failure metric.
	authReason string
}

func (e *apiError) reason() string {
	if e.authReason == "" {
		return "invalid"
	}
	return e.authReason
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, msg string) *apiError {
	return &apiError{status: status, Code: code, Message: msg}
}

// inputError is a 400 InputValidationError about one parameter (path is a
// JSON pointer such as "/wg_live"), shaped like the variables' errors: msg
// for the whole answer, field for the parameter's entry.
func inputError(path, msg, field string) *apiError {
	e := newError(http.StatusBadRequest, codeInput, msg)
	e.Errors = []operation.FieldError{{PropertyPath: path, Message: field}}
	return e
}

func (e *apiError) with(key, value string) *apiError {
	if e.header == nil {
		e.header = http.Header{}
	}
	e.header.Set(key, value)
	return e
}

func (e *apiError) write(w http.ResponseWriter) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	writeJSON(w, e.status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"InternalServerError","message":"could not encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
