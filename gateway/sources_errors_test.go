package gateway

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/fireboom/fireboom/source"
	"github.com/fireboom/fireboom/source/sourcetest"
	"github.com/fireboom/fireboom/upstream/demo"
)

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	return port
}

// A source that cannot be reached at start: /ready is 503 naming it (and
// not its password), and every request over it is refused with 502
// UpstreamUnavailable before any stream byte.
func TestEventSourceUnreachable(t *testing.T) {
	port := closedPort(t)
	for kind, url := range map[string]string{
		source.Postgres: "postgres://postgres:s3cret@127.0.0.1:" + port + "/app",
		source.NATS:     "nats://fb:s3cret@127.0.0.1:" + port,
		source.Redis:    "redis://fb:s3cret@127.0.0.1:" + port + "/0",
	} {
		t.Run(kind, func(t *testing.T) {
			e := &evEnv{kind: kind, name: "down_" + sourcetest.Random(), url: url, channel: "orders_" + sourcetest.Random()}
			if kind == source.NATS {
				e.channel = "orders." + sourcetest.Random()
			}
			g := evGateway(t, e, evOptions{unready: true})
			resp := get(t, g.URL+"/ready")
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"unavailable"`) ||
				!strings.Contains(body, e.name+" ("+kind+")") || strings.Contains(body, "s3cret") {
				t.Errorf("/ready: %d %s", resp.StatusCode, body)
			}
			for _, mode := range []string{"&wg_sse=true", "", "&wg_subscribe_once=true"} {
				resp := get(t, g.URL+"/operations/orders/UserOrders?userId=u1"+mode)
				body := readAll(t, resp)
				if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(body, `"code":"UpstreamUnavailable"`) {
					t.Errorf("stream%s: %d %s %s", mode, resp.StatusCode, resp.Header.Get("Content-Type"), body)
				}
			}
			status, body := evPost(t, g.URL+"/operations/orders/UpdateOrder", `{"id":"1","userId":"u1","status":"paid"}`)
			if status != http.StatusBadGateway || !strings.Contains(body, `"code":"UpstreamUnavailable"`) || strings.Contains(body, "s3cret") {
				t.Errorf("publish: %d %s", status, body)
			}
			if m := scrape(t, g.URL); m[`fireboom_source_connected{source="`+e.name+`"}`] != "0" {
				t.Errorf("fireboom_source_connected = %q", m[`fireboom_source_connected{source="`+e.name+`"}`])
			}
			if n := g.topics.Stats(kindSource).Topics; n != 0 {
				t.Errorf("%d topics left by refused streams", n)
			}
		})
	}
}

// pg_notify takes payloads shorter than 8,000 bytes: a @publish whose
// payload is 8,000 bytes or more is a 413 and nothing is sent; one byte
// less goes through.
func TestEventSourcePostgresPayloadLimit(t *testing.T) {
	e := pgEvEnv(t)
	g := evGateway(t, e, evOptions{})
	sse := evStream(t, g.URL+"/operations/orders/UserOrders?userId=u1&wg_sse=true")
	// The payload is the arguments as one object, keys sorted.
	frame := len(`{"id":"9","status":"","userId":"u1"}`)
	publish := func(size int) (int, string) {
		return evPost(t, g.URL+"/operations/orders/UpdateOrder", `{"id":"9","userId":"u1","status":"`+strings.Repeat("s", size-frame)+`"}`)
	}
	if status, body := publish(8000); status != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"code":"PayloadTooLarge"`) {
		t.Errorf("8000 bytes: %d %s", status, body)
	}
	if status, body := publish(7999); status != http.StatusOK || body != `{"data":{"updateOrder":{"success":true}}}` {
		t.Errorf("7999 bytes: %d %s", status, body)
	}
	got := frames(t, sse, 1)
	if want := withIDs(t, got, "id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"9\",\"status\":\""+strings.Repeat("s", 7999-frame)+"\",\"total\":null}}}\n\n"); got != want {
		t.Errorf("the stream got %d bytes, want the 7999-byte payload's event alone", len(got))
	}
}

// A broker that refuses a publish (a NATS permission violation) is a 502;
// the refusal is that publish's alone: the next one, allowed, goes through.
func TestEventSourcePublishRefused(t *testing.T) {
	srv := sourcetest.NATSServerWith(t, &server.Options{Users: []*server.User{{
		Username: "gw", Password: "pw",
		Permissions: &server.Permissions{Publish: &server.SubjectPermission{Deny: []string{"notes.secret"}}},
	}}})
	e := &evEnv{kind: source.NATS, name: "bus_" + sourcetest.Random(), url: "nats://gw:pw@" + srv.Addr().String(), channel: "orders." + sourcetest.Random()}
	g := evGateway(t, e, evOptions{
		sdl: `extend type Mutation {
  note(topic: String!, text: String!): PublishResult! @publish(source: "` + e.name + `", subject: "notes.{{ args.topic }}")
}
extend type Subscription {
  notes(topic: String!): String! @listen(source: "` + e.name + `", subject: "notes.{{ args.topic }}")
}
`,
		ops: map[string]string{
			"Note.graphql":  "mutation Note($topic: String!, $text: String!) { note(topic: $topic, text: $text) { success } }\n",
			"Notes.graphql": "subscription Notes($topic: String!) { notes(topic: $topic) }\n",
		},
	})
	stream := evStream(t, g.URL+"/operations/Notes?topic=open")
	if status, body := evPost(t, g.URL+"/operations/Note", `{"topic":"secret","text":"x"}`); status != http.StatusBadGateway || !strings.Contains(body, `"code":"UpstreamUnavailable"`) {
		t.Errorf("refused publish: %d %s", status, body)
	}
	status, body := evPost(t, g.URL+"/operations/Note", `{"topic":"open","text":"hi"}`)
	if status != http.StatusOK || body != `{"data":{"note":{"success":true}}}` {
		t.Errorf("allowed publish after a refused one: %d %s", status, body)
	}
	if status, body := evPost(t, g.URL+"/operations/Note", `{"topic":"secret","text":"y"}`); status != http.StatusBadGateway {
		t.Errorf("refused again: %d %s", status, body)
	}
	// The payload is the arguments; the listener's field is a String,
	// which a JSON object is not: the stream gets nothing for it, so the
	// next message shows it went on.
	nc := sourcetest.NATSClient(t, "nats://gw:pw@"+srv.Addr().String())
	if err := nc.Publish("notes.open", []byte(`"plain"`)); err != nil || nc.Flush() != nil {
		t.Fatal(err)
	}
	if got := frames(t, stream, 1); got != "{\"data\":{\"notes\":\"plain\"}}\n\n" {
		t.Errorf("stream: %q", got)
	}
}

// An upstream and an events schema extending it: one gateway serves both
// kinds of operation, and /operations and /openapi.json list the event
// operations like any other.
func TestEventSourceWithUpstream(t *testing.T) {
	d := startDemo(t, demo.Options{})
	e := natsEvEnv(t)
	g := evGateway(t, e, evOptions{upstream: d.URL(), ops: map[string]string{
		"Countdown.graphql":     readOp(t, "Countdown.graphql"),
		"chat/Messages.graphql": readOp(t, "chat/Messages.graphql"),
	}})
	eventually(t, 10*time.Second, "/ready", func() bool {
		resp := get(t, g.URL+"/ready")
		readAll(t, resp)
		return resp.StatusCode == http.StatusOK
	})

	// An upstream subscription and an event subscription, side by side.
	orders := evStream(t, g.URL+"/operations/orders/UserOrders?userId=u1&wg_sse=true")
	got := readAll(t, get(t, g.URL+"/operations/Countdown?from=1&interval=1&wg_sse=true"))
	if want := withIDs(t, got, "id: *\ndata: {\"data\":{\"countdown\":1}}\n\nid: *\ndata: {\"data\":{\"countdown\":0}}\n\nevent: done\ndata: done\n\n"); got != want {
		t.Errorf("Countdown: %q", got)
	}
	if resp := get(t, g.URL+"/operations/chat/Messages?room=none"); resp.StatusCode != http.StatusOK {
		t.Errorf("query: %d %s", resp.StatusCode, readAll(t, resp))
	} else if body := readAll(t, resp); body != `{"data":{"messages":[]}}` {
		t.Errorf("query: %s", body)
	}
	if status, body := evPost(t, g.URL+"/operations/orders/UpdateOrder", `{"id":"1","userId":"u1","status":"paid","total":2}`); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	if got := frames(t, orders, 1); got != withIDs(t, got, "id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"1\",\"status\":\"paid\",\"total\":2}}}\n\n") {
		t.Errorf("event: %q", got)
	}

	// The index.
	var index struct{ Operations []indexEntry }
	if err := json.Unmarshal([]byte(readAll(t, get(t, g.URL+"/operations"))), &index); err != nil {
		t.Fatal(err)
	}
	byName := map[string]indexEntry{}
	for _, op := range index.Operations {
		op.Variables = compact(t, op.Variables)
		byName[op.Name] = op
	}
	for name, want := range map[string]indexEntry{
		"orders/MyOrders": {Kind: "subscription", Method: "GET", RequiresAuthentication: true,
			Variables: json.RawMessage(`{"additionalProperties":false,"properties":{},"type":"object"}`)},
		"orders/UserOrders": {Kind: "subscription", Method: "GET",
			Variables: json.RawMessage(`{"additionalProperties":false,"properties":{"userId":{"type":"string"}},"required":["userId"],"type":"object"}`)},
		"orders/UpdateOrder": {Kind: "mutation", Method: "POST",
			Variables: json.RawMessage(`{"additionalProperties":false,"properties":{"id":{"type":"string"},"userId":{"type":"string"},"status":{"type":"string"},"total":{"type":["number","null"]}},"required":["id","userId","status"],"type":"object"}`)},
		"Countdown": {Kind: "subscription", Method: "GET"},
	} {
		got, ok := byName[name]
		if !ok {
			t.Errorf("%s not listed in %+v", name, index.Operations)
			continue
		}
		if got.Path != "/operations/"+name || got.Kind != want.Kind || got.Method != want.Method || got.RequiresAuthentication != want.RequiresAuthentication ||
			(want.Variables != nil && string(got.Variables) != string(want.Variables)) {
			t.Errorf("%s: %+v\nvariables %s\nwant %+v\nvariables %s", name, got, got.Variables, want, want.Variables)
		}
	}
	if len(byName) != 5 {
		t.Errorf("%d operations listed, want 5", len(byName))
	}
	checkEventOpenAPI(t, g)
}

// checkEventOpenAPI checks /openapi.json of a gateway serving evOps: a
// valid document in which the event operations are endpoints like any
// other, the token's variable not a parameter.
func checkEventOpenAPI(t *testing.T, g *testGateway) {
	t.Helper()
	body := readAll(t, get(t, g.URL+"/openapi.json"))
	doc, err := openapi3.NewLoader().LoadFromData([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	my := doc.Paths.Find("/operations/orders/MyOrders")
	user := doc.Paths.Find("/operations/orders/UserOrders")
	update := doc.Paths.Find("/operations/orders/UpdateOrder")
	if my == nil || my.Get == nil || user == nil || user.Get == nil || update == nil || update.Post == nil || update.Get != nil {
		t.Fatalf("event operations missing or with the wrong method:\n%s", body)
	}
	if my.Get.Parameters.GetByInAndName("query", "userId") != nil {
		t.Error("MyOrders documents its @fromClaim variable userId as a parameter")
	}
	if my.Get.Security == nil || len(*my.Get.Security) == 0 {
		t.Error("MyOrders documents no security requirement")
	}
	if p := user.Get.Parameters.GetByInAndName("query", "userId"); p == nil || !p.Required {
		t.Errorf("UserOrders: userId parameter %+v", p)
	}
	if user.Get.Parameters.GetByInAndName("query", "wg_sse") == nil {
		t.Error("UserOrders documents no wg_sse parameter")
	}
	rb := update.Post.RequestBody
	if rb == nil || rb.Value.Content.Get("application/json") == nil {
		t.Fatalf("UpdateOrder: no JSON request body")
	}
	if props := rb.Value.Content.Get("application/json").Schema.Value.Properties; len(props) != 4 || props["userId"] == nil {
		t.Errorf("UpdateOrder body properties %v", props)
	}
}

// readOp reads one of the repository's operation files.
func readOp(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(opsDir(t), filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func compact(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
