package demo

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bothProtocols = []string{ProtocolTransportWS, ProtocolGraphQLWS}

func TestQueryAndMutation(t *testing.T) {
	t.Parallel()
	s := start(t, Options{TickInterval: -1})
	for _, c := range []struct{ content, author string }{{"hello", "ann"}, {"world", "bob"}, {"hello again", "ann"}} {
		r := post(t, s, `mutation Post($c: String!, $a: String) { postMessage(room: "lobby", content: $c, author: $a) { id author } }`,
			map[string]any{"c": c.content, "a": c.author})
		if r.Errors != nil {
			t.Fatal(r.Errors)
		}
	}
	r := post(t, s, `mutation { postMessage(room: "other", content: "x") { id author } }`, nil)
	if got, want := string(r.Data), `{"postMessage":{"id":"4","author":"anonymous"}}`; got != want {
		t.Fatalf("default author: got %s, want %s", got, want)
	}

	const q = `query Msgs($f: MessageFilter, $s: Sort, $l: Int) { messages(room: "lobby", filter: $f, sort: $s, limit: $l) { id content } }`
	for _, tc := range []struct {
		vars map[string]any
		want string
	}{
		{nil, `{"messages":[{"id":"1","content":"hello"},{"id":"2","content":"world"},{"id":"3","content":"hello again"}]}`},
		{map[string]any{"s": "NEWEST", "l": 2}, `{"messages":[{"id":"3","content":"hello again"},{"id":"2","content":"world"}]}`},
		{map[string]any{"f": map[string]any{"author": "ann", "contains": "again"}}, `{"messages":[{"id":"3","content":"hello again"}]}`},
	} {
		r := post(t, s, q, tc.vars)
		if r.Errors != nil || string(r.Data) != tc.want {
			t.Errorf("vars %v: got %s %v, want %s", tc.vars, r.Data, r.Errors, tc.want)
		}
	}
	// Variable coercion errors come from gqlgen, as for a real upstream.
	if r := post(t, s, q, map[string]any{"s": "SIDEWAYS"}); r.Errors == nil {
		t.Error("bad enum accepted")
	}

	r = post(t, s, `{ myMessages(author: "bob") { content } rooms { name messageCount } room(name: "nope") { name } }`, nil)
	if got, want := string(r.Data), `{"myMessages":[{"content":"world"}],"rooms":[{"name":"lobby","messageCount":3},{"name":"other","messageCount":1}],"room":null}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}

	st := s.Stats()
	if st.Operations["Post"] != 3 || st.Operations["Msgs"] != 3 || st.Fields["messages"] != 3 || st.Fields["postMessage"] != 4 {
		t.Errorf("stats: %+v", st)
	}
}

func TestIntrospectionAndSDL(t *testing.T) {
	t.Parallel()
	s := start(t, Options{TickInterval: -1})
	r := post(t, s, `{ __schema { subscriptionType { name } } }`, nil)
	if string(r.Data) != `{"__schema":{"subscriptionType":{"name":"Subscription"}}}` {
		t.Errorf("introspection: %s %v", r.Data, r.Errors)
	}
	if !strings.Contains(SchemaSDL, "countdown(from: Int!, interval: Int = 100): Int!") {
		t.Error("SchemaSDL does not hold the schema")
	}
}

func TestMessageCreated(t *testing.T) {
	t.Parallel()
	for _, proto := range bothProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := start(t, Options{TickInterval: -1})
			post(t, s, `mutation { postMessage(room: "r", content: "before") { id } }`, nil)
			w := dial(t, s, proto)
			if w.protocol() != proto {
				t.Fatalf("negotiated %q", w.protocol())
			}
			w.init(nil)
			w.subscribe("1", `subscription($room: String!) { messageCreated(room: $room) { id content author } }`, map[string]any{"room": "r"})
			if err := s.WaitActive(testCtx(t), 1); err != nil {
				t.Fatal(err)
			}
			post(t, s, `mutation { postMessage(room: "elsewhere", content: "no") { id } }`, nil)
			post(t, s, `mutation { postMessage(room: "r", content: "after", author: "ann") { id } }`, nil)
			if got, want := string(w.next("1")), `{"messageCreated":{"id":"3","content":"after","author":"ann"}}`; got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
			w.stop("1")
			if err := s.WaitActive(testCtx(t), 0); err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			if st.SubscriptionsStarted != 1 || st.SubscriptionsEnded != 1 || len(st.ActiveByField) != 0 || st.WebSocketsOpen != 1 {
				t.Errorf("stats: %+v", st)
			}
		})
	}
}

func TestCountdownCompletes(t *testing.T) {
	t.Parallel()
	for _, proto := range bothProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := start(t, Options{TickInterval: -1})
			w := dial(t, s, proto)
			w.init(map[string]any{"authToken": "x"})
			w.subscribe("c", `subscription { countdown(from: 3, interval: 0) }`, nil)
			for n := 3; n >= 0; n-- {
				want := `{"countdown":` + string(rune('0'+n)) + `}`
				if got := string(w.next("c")); got != want {
					t.Fatalf("got %s, want %s", got, want)
				}
			}
			if f := w.expect("complete"); f.ID != "c" {
				t.Fatalf("complete for %q", f.ID)
			}
			if err := s.WaitActive(testCtx(t), 0); err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			if len(st.InitPayloads) != 1 || st.InitPayloads[0]["authToken"] != "x" {
				t.Errorf("init payloads: %v", st.InitPayloads)
			}
		})
	}
}

func TestCountdownBadArgumentIsErrorFrame(t *testing.T) {
	t.Parallel()
	for _, proto := range bothProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := start(t, Options{TickInterval: -1})
			w := dial(t, s, proto)
			w.init(nil)
			for id, q := range map[string]string{
				"neg":  `subscription { countdown(from: -1) }`,
				"big":  `subscription { countdown(from: 100001) }`,
				"slow": `subscription { countdown(from: 1, interval: 60001) }`,
			} {
				w.subscribe(id, q, nil)
				f := w.expect("error")
				var errs []struct{ Message string }
				if err := json.Unmarshal(f.Payload, &errs); err != nil || f.ID != id || len(errs) != 1 || !strings.Contains(errs[0].Message, "must be between") {
					t.Fatalf("%s: error frame %+v (%s): %v", id, f, f.Payload, err)
				}
			}
			// The connection survives: a good subscription still works.
			w.subscribe("ok", `subscription { countdown(from: 0) }`, nil)
			w.next("ok")
			w.expect("complete")
			if st := s.Stats(); st.SubscriptionsRejected != 3 || st.SubscriptionsStarted != 1 {
				t.Errorf("stats: %+v", st)
			}
		})
	}
}

func TestStopLongCountdown(t *testing.T) {
	t.Parallel()
	for _, proto := range bothProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := start(t, Options{TickInterval: -1})
			w := dial(t, s, proto)
			w.init(nil)
			w.subscribe("a", `subscription { countdown(from: 100000, interval: 1) }`, nil)
			w.next("a")
			w.subscribe("b", `subscription { countdown(from: 100000, interval: 1000) }`, nil)
			if err := s.WaitActive(testCtx(t), 2); err != nil {
				t.Fatal(err)
			}
			w.stop("a")
			if err := s.WaitActive(testCtx(t), 1); err != nil {
				t.Fatal(err)
			}
			// Closing the connection ends the other one.
			_ = w.c.Close(websocket.StatusNormalClosure, "")
			if err := s.WaitActive(testCtx(t), 0); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return s.Stats().WebSocketsOpen == 0 })
			if st := s.Stats(); st.SubscriptionsEnded != 2 || st.WebSocketsTotal != 1 {
				t.Errorf("stats: %+v", st)
			}
		})
	}
}

func TestSubprotocolChoice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		allowed []string
		offered []string
		want    string // "" = refused with 4406
	}{
		{"default prefers transport-ws", nil, []string{ProtocolGraphQLWS, ProtocolTransportWS}, ProtocolTransportWS},
		{"default legacy only", nil, []string{ProtocolGraphQLWS}, ProtocolGraphQLWS},
		{"legacy server", []string{ProtocolGraphQLWS}, bothProtocols, ProtocolGraphQLWS},
		{"legacy server refuses", []string{ProtocolGraphQLWS}, []string{ProtocolTransportWS}, ""},
		{"modern server", []string{ProtocolTransportWS}, bothProtocols, ProtocolTransportWS},
		{"modern server refuses", []string{ProtocolTransportWS}, []string{ProtocolGraphQLWS}, ""},
		{"modern server refuses none", []string{ProtocolTransportWS}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, Options{TickInterval: -1, Protocols: tc.allowed})
			w := dial(t, s, tc.offered...)
			if tc.want == "" {
				_, err := w.read()
				if got := websocket.CloseStatus(err); got != 4406 {
					t.Fatalf("close status %d (%v), want 4406", got, err)
				}
				return
			}
			if w.protocol() != tc.want {
				t.Fatalf("negotiated %q, want %q", w.protocol(), tc.want)
			}
			w.init(nil)
			w.subscribe("1", `subscription { countdown(from: 0) }`, nil)
			w.next("1")
			w.expect("complete")
		})
	}
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	for _, p := range [][]string{{}, {"graphql-sse"}} {
		if _, err := New(Options{Protocols: p}); !errors.Is(err, ErrBadOptions) {
			t.Errorf("Protocols %q: err %v", p, err)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	// gqlgen gives the first pong only one interval (deadline 2×, first ping
	// at 1×): keep it well above a loaded -race scheduler's delays.
	s := start(t, Options{TickInterval: -1, KeepAlive: 300 * time.Millisecond})

	legacy := dial(t, s, ProtocolGraphQLWS)
	legacy.init(nil)
	legacy.keepAlive = true
	for range 2 {
		legacy.expect("ka")
	}

	// graphql-transport-ws: pings; answered, the connection lives on.
	modern := dial(t, s, ProtocolTransportWS)
	modern.init(nil)
	modern.keepAlive = true
	for range 3 {
		modern.expect("ping")
		modern.send(frame{Type: "pong"})
	}
	modern.keepAlive = false
	modern.subscribe("1", `subscription { countdown(from: 0) }`, nil)
	modern.next("1")

	// Unanswered, it is cut.
	mute := dial(t, s, ProtocolTransportWS)
	mute.init(nil)
	mute.keepAlive = true
	for {
		f, err := mute.read()
		if err != nil {
			break
		}
		if f.Type != "ping" {
			t.Fatalf("unexpected %q", f.Type)
		}
	}
}

func TestInitFunc(t *testing.T) {
	t.Parallel()
	reject := errors.New("bad token")
	s := start(t, Options{TickInterval: -1, InitFunc: func(p map[string]any) error {
		if p["authToken"] != "good" {
			return reject
		}
		return nil
	}})
	for _, proto := range bothProtocols {
		w := dial(t, s, proto)
		w.send(frame{Type: "connection_init", Payload: json.RawMessage(`{"authToken":"bad"}`)})
		if proto == ProtocolGraphQLWS {
			f := w.expect("connection_error")
			if !strings.Contains(string(f.Payload), "bad token") {
				t.Errorf("connection_error %s", f.Payload)
			}
		}
		_, err := w.read()
		if got := websocket.CloseStatus(err); got != 4403 {
			t.Errorf("%s: close status %d (%v), want 4403", proto, got, err)
		}
		ok := dial(t, s, proto)
		ok.init(map[string]any{"authToken": "good"})
	}
	if st := s.Stats(); len(st.InitPayloads) != 4 {
		t.Errorf("init payloads %v", st.InitPayloads)
	}
}

func TestNonObjectInitPayloadIsClosed(t *testing.T) {
	t.Parallel()
	s := start(t, Options{TickInterval: -1})
	w := dial(t, s, ProtocolTransportWS)
	w.send(frame{Type: "connection_init", Payload: json.RawMessage(`5`)})
	if _, err := w.read(); err == nil {
		t.Fatal("connection still open")
	}
	waitFor(t, func() bool { return s.Stats().WebSocketsOpen == 0 })
}

func TestStockTicker(t *testing.T) {
	t.Parallel()
	s := start(t, Options{TickInterval: 5 * time.Millisecond})
	w := dial(t, s, ProtocolTransportWS)
	w.init(nil)
	w.subscribe("t", `subscription { stockPricesChanged(symbols: ["ACME"]) { symbol price seq publishedAt } }`, nil)
	var last int
	for range 3 {
		var d struct {
			P StockPrice `json:"stockPricesChanged"`
		}
		if err := json.Unmarshal(w.next("t"), &d); err != nil {
			t.Fatal(err)
		}
		if d.P.Symbol != "ACME" || d.P.Seq <= last || d.P.Price <= 0 {
			t.Fatalf("tick %+v after seq %d", d.P, last)
		}
		if _, err := time.Parse(time.RFC3339Nano, d.P.PublishedAt); err != nil {
			t.Fatal(err)
		}
		last = d.P.Seq
	}
}

func TestSetPricePublishes(t *testing.T) {
	t.Parallel()
	clock := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	s := start(t, Options{TickInterval: -1, Now: func() time.Time { return clock }})
	w := dial(t, s, ProtocolGraphQLWS)
	w.init(nil)
	w.subscribe("t", `subscription { stockPricesChanged { symbol price seq publishedAt } }`, nil)
	if err := s.WaitActive(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	r := post(t, s, `mutation { setPrice(symbol: "ACME", price: 12.5) { seq } }`, nil)
	if string(r.Data) != `{"setPrice":{"seq":1}}` {
		t.Fatalf("setPrice: %s %v", r.Data, r.Errors)
	}
	want := `{"stockPricesChanged":{"symbol":"ACME","price":12.5,"seq":1,"publishedAt":"2024-05-06T07:08:09.00000001Z"}}`
	if got := string(w.next("t")); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	r = post(t, s, `{ stockPrice(symbol: "ACME") { price seq } unknown: stockPrice(symbol: "NOPE") { price } serverTime }`, nil)
	if got, want := string(r.Data), `{"stockPrice":{"price":12.5,"seq":1},"unknown":null,"serverTime":"2024-05-06T07:08:09.00000001Z"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestOnRequestSeesHeaders(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	s := start(t, Options{TickInterval: -1, OnRequest: func(r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Test"))
		mu.Unlock()
	}})
	post(t, s, `{ serverTime }`, nil)
	dial(t, s, ProtocolTransportWS).init(nil)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "http,ws" {
		t.Errorf("seen %v", seen)
	}
}

func TestCloseEndsEverythingAndRestart(t *testing.T) {
	t.Parallel()
	s, err := Start(Options{TickInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	ws := []*wsClient{dial(t, s, ProtocolTransportWS), dial(t, s, ProtocolGraphQLWS)}
	for _, w := range ws {
		w.init(nil)
		w.subscribe("1", `subscription { stockPricesChanged { seq } }`, nil)
		w.next("1")
	}
	mute := dial(t, s, ProtocolTransportWS) // never inits: Close must still end it
	_ = mute
	begin := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if st := s.Stats(); st.ActiveSubscriptions != 0 || st.WebSocketsOpen != 0 {
		t.Errorf("after Close: %+v", st)
	}
	for _, w := range ws {
		for {
			if _, err := w.read(); err != nil {
				break
			}
		}
	}

	s2 := start(t, Options{TickInterval: -1})
	_ = s2
	s3, err := StartAt(addr, Options{TickInterval: -1})
	if err != nil {
		t.Fatal("restart:", err)
	}
	defer s3.Close()
	if s3.URL() != "http://"+addr+"/graphql" {
		t.Errorf("URL %s", s3.URL())
	}
	if r := post(t, s3, `{ rooms { name } }`, nil); string(r.Data) != `{"rooms":[]}` {
		t.Errorf("restarted: %s %v", r.Data, r.Errors)
	}
}

func TestHandlerMountedElsewhere(t *testing.T) {
	t.Parallel()
	s, err := New(Options{TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != "" {
		t.Errorf("Addr %q", s.Addr())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rec := &statusRecorder{header: http.Header{}}
	s.Handler().ServeHTTP(rec, &http.Request{Method: http.MethodPost, Header: http.Header{}})
	if rec.status != http.StatusServiceUnavailable {
		t.Errorf("closed server answered %d", rec.status)
	}
}

type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.status = code }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gqlgen answers a subscribe that does not parse or validate with an error
// frame and then, against graphql-transport-ws, a complete frame for the same
// id; the connection stays usable.
func TestInvalidSubscriptionIsErrorThenComplete(t *testing.T) {
	t.Parallel()
	for _, proto := range bothProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := start(t, Options{TickInterval: -1})
			w := dial(t, s, proto)
			w.init(nil)
			for id, q := range map[string]string{
				"validate": `subscription { nope }`,
				"variable": `subscription($from: Int!) { countdown(from: $from) }`,
				"parse":    `subscription { countdown(from: 1) `,
			} {
				w.subscribe(id, q, nil)
				if f := w.expect("error"); f.ID != id || !strings.Contains(string(f.Payload), "GRAPHQL_") {
					t.Fatalf("%s: %+v %s", id, f, f.Payload)
				}
				if f := w.expect("complete"); f.ID != id {
					t.Fatalf("%s: complete for %q", id, f.ID)
				}
			}
			w.subscribe("ok", `subscription { countdown(from: 0) }`, nil)
			w.next("ok")
		})
	}
}
