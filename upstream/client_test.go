package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestClient(t *testing.T) {
	var gotBody map[string]json.RawMessage
	var gotHeader http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = nil
		_ = json.Unmarshal(b, &gotBody)
		gotHeader = r.Header.Clone()
		switch r.URL.Path {
		case "/ok":
			_, _ = io.WriteString(w, `{"data":{"x":1}}`)
		case "/gqlerr":
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"errors":[{"message":"bad"}]}`)
		case "/502":
			w.WriteHeader(502)
			_, _ = io.WriteString(w, `<html>bad gateway</html>`)
		case "/500json":
			w.WriteHeader(500)
			_, _ = io.WriteString(w, `{"message":"oops"}`)
		case "/huge":
			_, _ = io.WriteString(w, `{"data":"`+strings.Repeat("x", 2000)+`"}`)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	req := Request{Query: "query Q { x }", OperationName: "Q", Variables: json.RawMessage(`{"a": 1}`),
		Header: http.Header{"Authorization": {"Bearer t"}}}

	c := NewClient(srv.URL+"/ok", http.Header{"X-Api-Key": {"k"}}, nil)
	body, status, err := c.Do(ctx, req)
	if err != nil || status != 200 || string(body) != `{"data":{"x":1}}` {
		t.Fatalf("ok: %d %v %s", status, err, body)
	}
	if string(gotBody["query"]) != `"query Q { x }"` || string(gotBody["variables"]) != `{"a":1}` || string(gotBody["operationName"]) != `"Q"` {
		t.Errorf("body %v", gotBody)
	}
	if gotHeader.Get("X-Api-Key") != "k" || gotHeader.Get("Authorization") != "Bearer t" || gotHeader.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", gotHeader)
	}
	_, _, _ = c.Do(ctx, Request{Query: "{ x }"})
	if _, ok := gotBody["variables"]; ok {
		t.Error("nil variables sent")
	}

	body, status, err = NewClient(srv.URL+"/gqlerr", nil, nil).Do(ctx, req)
	if err != nil || status != 400 || !strings.Contains(string(body), "bad") {
		t.Errorf("graphql error status: %d %v", status, err)
	}
	for _, p := range []string{"/502", "/500json"} {
		_, status, err = NewClient(srv.URL+p, nil, nil).Do(ctx, req)
		if !errors.Is(err, ErrUnavailable) || status < 500 {
			t.Errorf("%s: %d %v", p, status, err)
		}
	}
	hc := NewClient(srv.URL+"/huge", nil, nil)
	hc.MaxResponseBytes = 1000
	if _, _, err = hc.Do(ctx, req); !errors.Is(err, ErrUnavailable) {
		t.Errorf("huge: %v", err)
	}
	if _, _, err = NewClient("http://127.0.0.1:1/graphql", nil, nil).Do(ctx, req); !errors.Is(err, ErrUnavailable) {
		t.Errorf("unreachable: %v", err)
	}
	if _, _, err = c.Do(ctx, Request{Query: "{x}", Variables: json.RawMessage(`{bad`)}); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("bad variables: %v", err)
	}
}
