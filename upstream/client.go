package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrUnavailable is wrapped by every error that means the upstream could not
// be reached or refused to serve (the gateway answers 502).
var ErrUnavailable = errors.New("upstream unavailable")

// DefaultMaxResponseBytes bounds the body Client.Do reads.
const DefaultMaxResponseBytes = 16 << 20

// Request is one GraphQL operation exactly as it is sent upstream.
type Request struct {
	// Query is the document text sent (directives already stripped).
	Query string
	// OperationName selects the operation; "" sends none.
	OperationName string
	// Variables is a JSON object, or nil for none.
	Variables json.RawMessage
	// Header holds the static upstream headers and the forwarded ones. It
	// goes on the HTTP request and on the WebSocket upgrade.
	Header http.Header
	// InitPayload is the connection_init payload; nil sends none.
	InitPayload json.RawMessage
}

// body is the JSON of a GraphQL request, shared by HTTP and WebSocket.
type body struct {
	Query         string          `json:"query"`
	Variables     json.RawMessage `json:"variables,omitempty"`
	OperationName string          `json:"operationName,omitempty"`
}

func (r *Request) body() ([]byte, error) {
	vars := r.Variables
	if len(bytes.TrimSpace(vars)) == 0 || bytes.Equal(bytes.TrimSpace(vars), []byte("null")) {
		vars = nil
	}
	b, err := json.Marshal(body{Query: r.Query, Variables: vars, OperationName: r.OperationName})
	if err != nil {
		return nil, fmt.Errorf("upstream: encode request: %w", err)
	}
	return b, nil
}

// Client posts queries and mutations to the upstream GraphQL URL.
// It is safe for concurrent use.
type Client struct {
	url    string
	header http.Header
	hc     *http.Client
	// MaxResponseBytes bounds the body read (default 16 MiB); a longer
	// answer is an error wrapping ErrUnavailable.
	MaxResponseBytes int64
}

// NewClient makes a Client posting to url with header on every request
// (Request.Header is added on top). hc nil means http.DefaultClient.
func NewClient(url string, header http.Header, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{url: url, header: header.Clone(), hc: hc, MaxResponseBytes: DefaultMaxResponseBytes}
}

// Do posts req and returns the upstream's raw body and HTTP status. The
// error wraps ErrUnavailable when the upstream cannot be reached, the body
// is too large, or it answers a non-2xx status without a GraphQL (JSON
// object) body; a non-2xx answer that is a GraphQL result is returned as is
// for the caller to pass on.
func (c *Client) Do(ctx context.Context, req Request) ([]byte, int, error) {
	b, err := req.body()
	if err != nil {
		return nil, 0, err
	}
	hr, err := newPost(ctx, c.url, c.header, req.Header, b)
	if err != nil {
		return nil, 0, err
	}
	if hr.Header.Get("Accept") == "" {
		hr.Header.Set("Accept", "application/graphql-response+json, application/json")
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%w: read body: %w", ErrUnavailable, err)
	}
	if int64(len(data)) > limit {
		return nil, resp.StatusCode, fmt.Errorf("%w: response body larger than %d bytes", ErrUnavailable, limit)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if !isGraphQLResult(data) {
			return data, resp.StatusCode, fmt.Errorf("%w: status %d", ErrUnavailable, resp.StatusCode)
		}
	}
	return data, resp.StatusCode, nil
}

// newPost builds the POST of a GraphQL request body to url, as queries,
// mutations and HTTP subscriptions all send it: the static upstream headers
// first, then the request's own (forwarded) headers on top, then
// Content-Type. The caller sets Accept. The error wraps ErrUnavailable.
func newPost(ctx context.Context, url string, static, header http.Header, body []byte) (*http.Request, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for k, v := range static {
		hr.Header[k] = append([]string(nil), v...)
	}
	for k, v := range header {
		hr.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
	}
	hr.Header.Set("Content-Type", "application/json")
	return hr, nil
}

// isGraphQLResult reports whether b is a JSON object with "data" or
// "errors", i.e. a GraphQL answer worth passing on even with an error status.
func isGraphQLResult(b []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	_, d := m["data"]
	_, e := m["errors"]
	return d || e
}
