package gateway

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/upstream/demo"
)

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Errors  []struct {
		PropertyPath string `json:"propertyPath"`
		InvalidValue any    `json:"invalidValue"`
		Message      string `json:"message"`
	} `json:"errors"`
}

func decodeError(t *testing.T, resp *http.Response) errorBody {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var e errorBody
	if err := json.Unmarshal([]byte(readAll(t, resp)), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// Every error row of CONTRACT §4, for every kind of operation and stream
// mode where it applies: a plain status and JSON body, never a stream.
func TestErrorTable(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "limits": {"maxBodyBytes": 64}, "auth": {"jwt": {"secret": "s3cret"}}}`)
	token, err := auth.Mint(auth.Config{Secret: "s3cret"}, "alice", []string{"user"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	big := `{"room":"a","content":"` + strings.Repeat("x", 100) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, propertyPath       string
		header                   [2]string
	}{
		{"unknown operation", "GET", "/operations/nope", "", 404, "NotFound", "", [2]string{}},
		{"unknown nested", "GET", "/operations/chat/nope?wg_sse=true", "", 404, "NotFound", "", [2]string{}},
		{"internal not exposed", "GET", "/operations/internal/Rooms", "", 404, "NotFound", "", [2]string{}},
		{"traversal", "GET", "/operations/chat/..%2f..%2fSub", "", 404, "NotFound", "", [2]string{}},
		{"GET mutation", "GET", "/operations/chat/PostMessage", "", 405, "MethodNotAllowed", "", [2]string{"Allow", "POST"}},
		{"POST query", "POST", "/operations/chat/Messages", "{}", 405, "MethodNotAllowed", "", [2]string{"Allow", "GET, HEAD"}},
		{"POST index", "POST", "/operations", "{}", 405, "MethodNotAllowed", "", [2]string{"Allow", "GET, HEAD"}},
		{"DELETE index", "DELETE", "/operations", "", 405, "MethodNotAllowed", "", [2]string{"Allow", "GET, HEAD"}},
		{"POST subscription", "POST", "/operations/Sub", "{}", 405, "MethodNotAllowed", "", [2]string{"Allow", "GET"}},
		{"wrong type query", "GET", "/operations/chat/Messages?room=a&limit=ten", "", 400, "InputValidationError", "/limit", [2]string{}},
		{"wrong type sse", "GET", "/operations/Countdown?from=1.5&wg_sse=true", "", 400, "InputValidationError", "/from", [2]string{}},
		{"wrong type json stream", "GET", "/operations/Countdown?from=x", "", 400, "InputValidationError", "/from", [2]string{}},
		{"wrong type once", "GET", "/operations/Countdown?from=x&wg_subscribe_once=true", "", 400, "InputValidationError", "/from", [2]string{}},
		{"missing required", "GET", "/operations/chat/MessageCreated?wg_sse=true", "", 400, "InputValidationError", "/room", [2]string{}},
		{"unknown variable", "GET", "/operations/chat/Messages?room=a&roon=b", "", 400, "InputValidationError", "/roon", [2]string{}},
		{"bad enum", "GET", "/operations/chat/Messages?room=a&sort=SIDEWAYS", "", 400, "InputValidationError", "/sort", [2]string{}},
		{"malformed wg_variables", "GET", "/operations/chat/Messages?wg_variables={", "", 400, "InputValidationError", "", [2]string{}},
		{"malformed body", "POST", "/operations/chat/PostMessage", "{", 400, "InputValidationError", "", [2]string{}},
		{"unknown body variable", "POST", "/operations/chat/PostMessage", `{"room":"a","content":"b","x":1}`, 400, "InputValidationError", "/x", [2]string{}},
		{"body wrong type", "POST", "/operations/chat/PostMessage", `{"room":1,"content":"b"}`, 400, "InputValidationError", "/room", [2]string{}},
		{"bad flag", "GET", "/operations/Sub?wg_sse=maybe", "", 400, "InputValidationError", "", [2]string{}},
		{"repeated flag", "GET", "/operations/Sub?wg_subscribe_once&wg_subscribe_once=true", "", 400, "InputValidationError", "/wg_subscribe_once", [2]string{}},
		{"bad live flag", "GET", "/operations/chat/Messages?room=a&wg_live=1", "", 400, "InputValidationError", "/wg_live", [2]string{}},
		{"bad patch flag", "GET", "/operations/chat/Messages?room=a&wg_json_patch=TRUE", "", 400, "InputValidationError", "/wg_json_patch", [2]string{}},
		{"bad flag on POST", "POST", "/operations/chat/PostMessage?wg_live=yes", `{"room":"a","content":"b"}`, 400, "InputValidationError", "/wg_live", [2]string{}},
		{"live mutation", "POST", "/operations/chat/PostMessage?wg_live=true", `{"room":"a","content":"b"}`, 400, "InputValidationError", "/wg_live", [2]string{}},
		{"live query without liveInterval", "GET", "/operations/chat/Messages?room=a&wg_live=true", "", 400, "InputValidationError", "/wg_live", [2]string{}},
		{"duplicate body key", "POST", "/operations/chat/PostMessage", `{"room":"a","room":"b","content":"c"}`, 400, "InputValidationError", "", [2]string{}},
		{"duplicate key in wg_variables", "GET", "/operations/chat/Messages?wg_variables=" + url.QueryEscape(`{"room":"a","room":"b"}`), "", 400, "InputValidationError", "", [2]string{}},
		{"client-set claim variable", "GET", "/operations/chat/MyMessages?author=eve&access_token=" + token, "", 400, "InputValidationError", "/author", [2]string{}},
		{"client-set claim variable, no token", "GET", "/operations/chat/MyMessages?author=eve", "", 401, "Unauthorized", "", [2]string{}},
		{"roles not enough", "POST", "/operations/stocks/SetPrice?access_token=" + token, `{"symbol":"A","price":1}`, 403, "Forbidden", "", [2]string{}},
		{"bad token", "GET", "/operations/Sub?wg_sse=true&access_token=" + token + "x", "", 401, "Unauthorized", "", [2]string{"WWW-Authenticate", `Bearer error="invalid_token", error_description="token signature is invalid"`}},
		{"no token", "GET", "/operations/chat/MyMessages", "", 401, "Unauthorized", "", [2]string{"WWW-Authenticate", `Bearer realm="fireboom"`}},
		{"no token mutation", "POST", "/operations/stocks/SetPrice", `{"symbol":"A","price":1}`, 401, "Unauthorized", "", [2]string{"WWW-Authenticate", `Bearer realm="fireboom"`}},
		{"body too large", "POST", "/operations/chat/PostMessage", big, 413, "PayloadTooLarge", "", [2]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, g.URL+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.header[0] != "" && resp.Header.Get(tc.header[0]) != tc.header[1] {
				t.Errorf("%s: %q, want %q", tc.header[0], resp.Header.Get(tc.header[0]), tc.header[1])
			}
			e := decodeError(t, resp)
			if e.Code != tc.code || e.Message == "" {
				t.Errorf("body %+v, want code %s", e, tc.code)
			}
			if tc.propertyPath != "" && (len(e.Errors) == 0 || e.Errors[0].PropertyPath != tc.propertyPath) {
				t.Errorf("errors %+v, want propertyPath %s", e.Errors, tc.propertyPath)
			}
		})
	}
}

// The unknown-parameter error lists the names the operation accepts.
func TestUnknownParameterListsAccepted(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	e := decodeError(t, get(t, g.URL+"/operations/Countdown?from=1&intervall=5"))
	if !strings.Contains(e.Message, "from, interval") {
		t.Errorf("message %q does not list the accepted names", e.Message)
	}
}

// Query parameters are coerced by declared type: "007" for a String stays
// a string (WunderGraph turned it into 7).
func TestVariablesCoercedByDeclaredType(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	post, err := http.Post(g.URL+"/operations/chat/PostMessage", "application/json", strings.NewReader(`{"room":"007","content":"true"}`))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, post); !strings.Contains(body, `"author":"anonymous"`) {
		t.Fatalf("post answered %s", body)
	}
	for _, q := range []string{
		"room=007",
		`wg_variables={"room":"007"}`,
		`room=007&limit=1&sort=NEWEST&filter={"contains":"tr"}`,
	} {
		resp := get(t, g.URL+"/operations/chat/Messages?"+strings.ReplaceAll(q, `"`, "%22"))
		body := readAll(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, `"content":"true"`) {
			t.Errorf("%s: %d %s", q, resp.StatusCode, body)
		}
	}
}

// An unreachable upstream answers 502 before any stream byte, in every
// mode, and for queries.
func TestUpstreamDownAnswers502(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	_ = d.Close()
	for _, path := range []string{
		"/operations/Sub?wg_sse=true", "/operations/Sub", "/operations/Sub?wg_subscribe_once=true",
		"/operations/chat/Messages?room=a",
	} {
		resp := get(t, g.URL+path)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: status %d", path, resp.StatusCode)
		}
		if e := decodeError(t, resp); e.Code != "UpstreamUnavailable" {
			t.Errorf("%s: code %q", path, e.Code)
		}
	}
	post, err := http.Post(g.URL+"/operations/chat/PostMessage", "application/json", strings.NewReader(`{"room":"a","content":"b"}`))
	if err != nil {
		t.Fatal(err)
	}
	if post.StatusCode != http.StatusBadGateway {
		t.Errorf("mutation status %d", post.StatusCode)
	}
	post.Body.Close()
}

// The gateway starts while the upstream is away, answers 502 for the
// operations it found on disk, and serves them once the schema arrives.
func TestStartsWithoutUpstreamAndRecovers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := `{"operationsDir": "${OPS}", "upstream": {"url": "http://` + addr + `/graphql"}}`
	g := newGateway(t, nil, cfg)
	if !strings.Contains(g.logs.String(), "upstream unreachable at start") {
		t.Errorf("start-up log does not say the upstream is unreachable:\n%s", g.logs.String())
	}
	resp := get(t, g.URL+"/operations/Sub?wg_sse=true")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if e := decodeError(t, resp); e.Code != "UpstreamUnavailable" {
		t.Errorf("code %q", e.Code)
	}
	if resp := get(t, g.URL+"/operations/nope"); resp.StatusCode != 404 {
		t.Errorf("unknown operation: %d", resp.StatusCode)
	} else {
		resp.Body.Close()
	}
	if resp := get(t, g.URL+"/ready"); resp.StatusCode != 503 {
		t.Errorf("ready: %d", resp.StatusCode)
	} else {
		resp.Body.Close()
	}
	d, err := demo.StartAt(addr, demo.Options{TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	eventually(t, 10*time.Second, "operations served", func() bool {
		resp := get(t, g.URL+"/operations/Countdown?from=0&interval=1")
		return readAll(t, resp) == "{\"data\":{\"countdown\":0}}\n\n"
	})
	eventually(t, 5*time.Second, "ready after recovery", func() bool {
		resp := get(t, g.URL+"/ready")
		return readAll(t, resp) != "" && resp.StatusCode == 200
	})
}

func TestIndexListsOperations(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	resp := get(t, g.URL+"/operations")
	var idx struct {
		Operations []struct {
			Name, Path, Kind, Method string
			Variables                map[string]any
			RequiresAuthentication   bool
		}
	}
	if err := json.Unmarshal([]byte(readAll(t, resp)), &idx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range idx.Operations {
		got[o.Name] = o.Kind + " " + o.Method + " " + o.Path
		if o.Variables["type"] != "object" {
			t.Errorf("%s variables %v", o.Name, o.Variables)
		}
		if o.Name == "chat/MyMessages" {
			if !o.RequiresAuthentication {
				t.Error("MyMessages should require authentication")
			}
			if _, ok := o.Variables["properties"].(map[string]any)["author"]; ok {
				t.Error("claim variable author is in the public schema")
			}
		}
	}
	for name, want := range map[string]string{
		"Sub":              "subscription GET /operations/Sub",
		"chat/Messages":    "query GET /operations/chat/Messages",
		"chat/PostMessage": "mutation POST /operations/chat/PostMessage",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
	if _, ok := got["internal/Rooms"]; ok {
		t.Error("internal operation listed")
	}
	if resp := get(t, g.URL+"/health"); readAll(t, resp) != `{"status":"ok"}` {
		t.Error("health body")
	}
}

// The index shows an operation's roles in the contract's camelCase.
func TestIndexShowsRoles(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "auth": {"jwt": {"secret": "s3cret"}}`))
	body := readAll(t, get(t, g.URL+"/operations"))
	if !strings.Contains(body, `"rbac":{"requireMatchAny":["admin"]}`) {
		t.Errorf("index does not show SetPrice's roles: %s", body)
	}
}
