package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Apollo Router ends every chunk with "\r\n--graphql": the delimiter line
// is finished by the next chunk. Each result must reach the sink before
// that next chunk is written, and the request is exactly what the
// protocol asks for, with static and forwarded headers.
func TestHTTPSubMultipartRouterFraming(t *testing.T) {
	chunks := make(chan string)
	srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		head(w, multipartType)
		pump(w, r, chunks)
	})
	cfg := HTTPSubConfig{URL: srv.URL, Protocol: ProtocolMultipart,
		Header: http.Header{"X-Api-Key": {"k"}, "Authorization": {"Basic static"}}}
	req := Request{Query: "subscription($to: Int!) { count(to: $to) }", OperationName: "C",
		Variables: []byte(`{ "to": 2 }`), Header: http.Header{"authorization": {"Bearer t"}}}
	sink, _ := openSub(t, cfg, req)
	r := srv.request(t)
	for k, want := range map[string]string{
		"Accept": `multipart/mixed;subscriptionSpec="1.0", application/json`, "Content-Type": "application/json",
		"X-Api-Key": "k", "Authorization": "Bearer t",
	} {
		if got := r.header.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("header %s: %q, want %q", k, got, want)
		}
	}
	if want := `{"query":"subscription($to: Int!) { count(to: $to) }","variables":{"to":2},"operationName":"C"}`; r.body != want {
		t.Errorf("body %s, want %s", r.body, want)
	}
	chunks <- "\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{}\r\n--graphql"
	chunks <- "\r\ncontent-type: application/json\r\n\r\n{\"payload\":{\"data\":{\"count\":1}}}\r\n--graphql"
	sink.expect(`next {"data":{"count":1}}`)
	chunks <- "\r\ncontent-type: application/json\r\n\r\n{}\r\n--graphql"
	chunks <- "\r\ncontent-type: application/json\r\n\r\n{\"payload\": {\"data\": {\"count\": 2}, \"extensions\": {\"x\": 1}}}\r\n--graphql"
	sink.expect(`next {"data":{"count":2},"extensions":{"x":1}}`)
	chunks <- "--\r\n"
	sink.expect("done")
	close(chunks)
	srv.waitEnded(t, 0)
}

// The protocol document's own example writes each delimiter before its
// part, so a part ends only when the next delimiter comes; the JSON is
// delivered when its last byte came all the same.
func TestHTTPSubMultipartDocumentFraming(t *testing.T) {
	chunks := make(chan string)
	srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		head(w, `multipart/mixed; boundary="graphql"; subscriptionSpec="1.0"`)
		pump(w, r, chunks)
	})
	sink, _ := openSub(t, HTTPSubConfig{URL: srv.URL, Protocol: ProtocolMultipart}, testSubReq)
	chunks <- "--graphql\r\nContent-Type: application/json\r\n\r\n{}"
	chunks <- "\r\n--graphql\r\nContent-Type: application/json\r\n\r\n{\"payload\": {\"data\": { \"newPost\": { \"id\": 123, \"title\": \"Hello!\"}}}}"
	sink.expect(`next {"data":{"newPost":{"id":123,"title":"Hello!"}}}`)
	chunks <- "\r\n--graphql--"
	close(chunks)
	sink.expect("done")
}

func TestHTTPSubMultipartMessages(t *testing.T) {
	const errs = `[{"message":"subgraph gone","extensions":{"code":"SUBREQUEST_HTTP_ERROR"}}]`
	for _, tc := range []struct {
		name  string
		parts []string
		want  []string
	}{
		{"fatal error", []string{`{"payload":{"data":{"n":1}}}`, `{"payload": null, "errors": ` + errs + `}`},
			[]string{`next {"data":{"n":1}}`, `error {"errors":` + errs + `}`}},
		{"payload null completes", []string{`{}`, `{"payload":null}`}, []string{"done"}},
		{"bare results", []string{`{"data":{"n":1},"hasNext":true}`, `{"errors":[{"message":"x"}]}`},
			[]string{`next {"data":{"n":1},"hasNext":true}`, `next {"errors":[{"message":"x"}]}`}},
		{"ignored", []string{`not json`, ``, `[1]`, `{"payload":{"data":{"n":2}}}`}, []string{`next {"data":{"n":2}}`}},
		{"payload with errors", []string{`{"payload":{"data":null,"errors":[{"message":"partial"}]}}`},
			[]string{`next {"data":null,"errors":[{"message":"partial"}]}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				head(w, multipartType)
				for _, p := range tc.parts {
					send(w, "\r\n--graphql\r\ncontent-type: application/json\r\n\r\n"+p)
				}
				<-r.Context().Done()
			})
			sink, stop := openSub(t, HTTPSubConfig{URL: srv.URL, Protocol: ProtocolMultipart}, testSubReq)
			sink.expect(tc.want...)
			stop()
			sink.quiet()
		})
	}
}

// The upstream refuses the operation before any stream: GraphQL errors end
// the subscription with them as sent; anything else is a 502 at Open.
func TestHTTPSubRefused(t *testing.T) {
	const errs = `{"errors":[{"message":"Syntax Error: Expected Name, found <EOF>."}]}`
	for _, tc := range []struct {
		name, protocol, contentType, body string
		status                            int
		want                              string // sink line; "" means Open fails with ErrUnavailable
	}{
		{"graphql-sse 400", ProtocolSSE, "application/json; charset=utf-8", errs, 400, "error " + errs},
		{"router 400", ProtocolMultipart, "application/json", "{\n \"errors\": [{\"message\": \"Syntax Error: Expected Name, found <EOF>.\"}]\n}", 400, "error " + errs},
		{"yoga 401 stream", ProtocolSSE, sseType, ":\n\nevent: next\ndata: " + errs + "\n\nevent: complete\ndata:\n\n", 401, "error " + errs},
		{"200 json errors", ProtocolMultipart, "application/json", errs, 200, "error " + errs},
		{"503 with errors", ProtocolSSE, "application/json", errs, 503, ""},
		{"404 plain", ProtocolSSE, "text/plain", "not found", 404, ""},
		{"200 single result", ProtocolMultipart, "application/json", `{"data":{"n":1}}`, 200, ""},
		{"200 wrong type", ProtocolSSE, "text/html", "<html>", 200, ""},
		{"empty errors", ProtocolSSE, "application/json", `{"errors":[]}`, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			sink := newRecSink(t)
			stop, err := NewHTTPSubscription(HTTPSubConfig{URL: srv.URL, Protocol: tc.protocol}, testSubReq).Open(context.Background(), sink)
			if tc.want == "" {
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("Open: %v, want ErrUnavailable", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer stop()
			sink.expect(tc.want)
		})
	}
}

// A stream that breaks, or ends without the protocol's completion, is
// requested again; the sink is told once, then the new stream goes on.
func TestHTTPSubReconnect(t *testing.T) {
	for _, tc := range []struct {
		name, protocol, contentType string
		first, second               []string
		cut                         bool // the first stream is cut, not ended
	}{
		{"sse cut", ProtocolSSE, sseType, []string{"event: next\ndata: {\"n\":1}\n\n"},
			[]string{":\n\nevent: next\ndata: {\"n\":2}\n\nevent: complete\ndata:\n\n"}, true},
		{"sse ended without complete", ProtocolSSE, sseType, []string{"event: next\ndata: {\"n\":1}\n\n"},
			[]string{"event: next\ndata: {\"n\":2}\n\nevent: complete\n\n"}, false},
		{"multipart cut", ProtocolMultipart, multipartType,
			[]string{"\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{\"payload\":{\"n\":1}}\r\n--graphql"},
			[]string{"\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{\"payload\":{\"n\":2}}\r\n--graphql", "--\r\n"}, true},
		{"multipart ended without closing delimiter", ProtocolMultipart, multipartType,
			[]string{"\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{\"payload\":{\"n\":1}}\r\n--graphql"},
			[]string{"\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{\"payload\":{\"n\":2}}\r\n--graphql--\r\n"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := make(chan struct{})
			srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				head(w, tc.contentType)
				switch n {
				case 0:
					for _, c := range tc.first {
						send(w, c)
					}
					<-gate
					if tc.cut {
						panic(http.ErrAbortHandler)
					}
				case 1:
					for _, c := range tc.second {
						send(w, c)
					}
				}
			})
			sink, _ := openSub(t, HTTPSubConfig{URL: srv.URL, Protocol: tc.protocol}, testSubReq)
			sink.expect(`next {"n":1}`)
			close(gate)
			sink.expect("gap reconnected", `next {"n":2}`, "done")
			if n := srv.count.Load(); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
		})
	}
}

// Past ReconnectTimeout the subscription ends with UpstreamUnavailable, in
// the words the WebSocket hub uses; a re-request the upstream refuses with
// GraphQL errors ends it with those, without a gap.
func TestHTTPSubReconnectGivesUp(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 0 {
				head(w, sseType)
				send(w, "event: next\ndata: {\"n\":1}\n\n")
				panic(http.ErrAbortHandler)
			}
			http.Error(w, "restarting", http.StatusServiceUnavailable)
		})
		sink, _ := openSub(t, HTTPSubConfig{URL: srv.URL, Protocol: ProtocolSSE, ReconnectTimeout: 400 * time.Millisecond}, testSubReq)
		sink.expect(`next {"n":1}`, `error {"errors":[{"message":"the upstream connection was lost and did not come back within 400ms","extensions":{"code":"UpstreamUnavailable"}}]}`)
		if n := srv.count.Load(); n < 2 {
			t.Errorf("%d requests: never re-requested", n)
		}
	})
	t.Run("refused", func(t *testing.T) {
		srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 0 {
				head(w, multipartType)
				panic(http.ErrAbortHandler)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"message":"token expired"}]}`))
		})
		sink, _ := openSub(t, HTTPSubConfig{URL: srv.URL, Protocol: ProtocolMultipart}, testSubReq)
		sink.expect(`error {"errors":[{"message":"token expired"}]}`)
	})
	t.Run("never", func(t *testing.T) {
		srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			head(w, sseType)
		})
		sink, _ := openSub(t, HTTPSubConfig{URL: srv.URL, Protocol: ProtocolSSE, ReconnectTimeout: -1}, testSubReq)
		sink.expect(`error {"errors":[{"message":"the upstream connection was lost","extensions":{"code":"UpstreamUnavailable"}}]}`)
	})
}

// stop closes the request (that is how the upstream learns the
// subscription is over), waits for the reader, and nothing follows.
func TestHTTPSubStopClosesRequest(t *testing.T) {
	for _, p := range []struct{ protocol, contentType, result string }{
		{ProtocolSSE, sseType, "event: next\ndata: {\"n\":1}\n\n"},
		{ProtocolMultipart, multipartType, "\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{\"payload\":{\"n\":1}}\r\n--graphql"},
	} {
		t.Run(p.protocol, func(t *testing.T) {
			srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				head(w, p.contentType)
				send(w, p.result)
				<-r.Context().Done()
			})
			sink, stop := openSub(t, HTTPSubConfig{URL: srv.URL, Protocol: p.protocol}, testSubReq)
			sink.expect(`next {"n":1}`)
			stop()
			srv.waitEnded(t, 0)
			stop()
			sink.quiet()
		})
	}
}

// One event or part over MaxFrameBytes ends the subscription with
// UpstreamFrameTooLarge and closes its request; one at the limit passes.
func TestHTTPSubFrameTooLarge(t *testing.T) {
	const limit = 64
	// sized is a JSON object of n bytes.
	sized := func(n int) string { return `{"s":"` + strings.Repeat("a", n-8) + `"}` }
	over, huge := sized(4*limit), sized(16<<10) // huge is past the SSE parser's buffer too
	const tooLarge = `error {"errors":[{"message":"the upstream sent a frame larger than the gateway accepts","extensions":{"code":"UpstreamFrameTooLarge"}}]}`
	for _, tc := range []struct {
		name, protocol, contentType string
		frame                       func(string) string
		big                         string
	}{
		{"sse", ProtocolSSE, sseType, func(s string) string { return "event: next\ndata: " + s + "\n\n" }, over},
		{"sse past the parser", ProtocolSSE, sseType, func(s string) string { return "event: next\ndata: " + s + "\n\n" }, huge},
		{"multipart", ProtocolMultipart, multipartType, func(s string) string {
			return "\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{\"payload\":" + s + "}"
		}, over},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := sized(limit) // the SSE data, or the whole part, at the limit
			if tc.protocol == ProtocolMultipart {
				first = sized(limit - len(`{"payload":}`))
			}
			srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				head(w, tc.contentType)
				send(w, tc.frame(first))
				send(w, tc.frame(tc.big))
				<-r.Context().Done()
			})
			sink, _ := openSub(t, HTTPSubConfig{URL: srv.URL, Protocol: tc.protocol, MaxFrameBytes: limit}, testSubReq)
			sink.expect("next "+first, tooLarge)
			srv.waitEnded(t, 0)
		})
	}
}

// A stream silent for IdleTimeout is taken as dropped and requested again.
func TestHTTPSubIdleTimeout(t *testing.T) {
	srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		head(w, sseType)
		if n == 0 {
			send(w, ":\n\n")
			<-r.Context().Done()
			return
		}
		send(w, "event: complete\ndata:\n\n")
	})
	sink, _ := openSub(t, HTTPSubConfig{URL: srv.URL, Protocol: ProtocolSSE, IdleTimeout: 150 * time.Millisecond}, testSubReq)
	sink.expect("gap reconnected", "done")
	srv.waitEnded(t, 0)
}

// Open's ctx and StartTimeout bound the start: an upstream that never
// answers is a 502, not a hang.
func TestHTTPSubStartBounded(t *testing.T) {
	release := make(chan struct{})
	srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := NewHTTPSubscription(HTTPSubConfig{URL: srv.URL, Protocol: ProtocolSSE}, testSubReq).Open(ctx, newRecSink(t))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ctx: %v, want ErrUnavailable", err)
	}
	srv.waitEnded(t, 0)
	_, err = NewHTTPSubscription(HTTPSubConfig{URL: srv.URL, Protocol: ProtocolMultipart, StartTimeout: 100 * time.Millisecond}, testSubReq).
		Open(context.Background(), newRecSink(t))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "start timeout") {
		t.Fatalf("StartTimeout: %v", err)
	}
	_, err = NewHTTPSubscription(HTTPSubConfig{URL: srv.URL, Protocol: ProtocolWS}, testSubReq).Open(context.Background(), newRecSink(t))
	if err == nil {
		t.Fatal("ws over HTTPSubscription: no error")
	}
}

// GraphQL Yoga's early SSE had no event names and no complete: a result
// per unnamed event, and a clean end of the response completes.
func TestHTTPSubSSELegacy(t *testing.T) {
	srv := newSubServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		head(w, "text/event-stream; charset=utf-8")
		send(w, ":\n\ndata: {\"data\":{\"n\":1}}\n\n")
		send(w, "data: {\"data\":\ndata: {\"n\":2}}\n\n")
	})
	sink, _ := openSub(t, HTTPSubConfig{URL: srv.URL, Protocol: ProtocolSSE}, testSubReq)
	sink.expect(`next {"data":{"n":1}}`, `next {"data":{"n":2}}`, "done")
}

// Over HTTP/2 the subscriptions to one upstream share one connection.
func TestHTTPSubHTTP2Multiplexed(t *testing.T) {
	var conns atomic.Int32
	srv := &subServer{reqs: make(chan seenReq, 64), ended: make(chan int, 64)}
	srv.Server = httptest.NewUnstartedServer(srv.handler(func(n int, w http.ResponseWriter, r *http.Request) {
		head(w, sseType)
		send(w, "event: next\ndata: {\"n\":"+string(rune('1'+n))+"}\n\n")
		<-r.Context().Done()
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cfg := HTTPSubConfig{URL: srv.URL, Protocol: ProtocolSSE, HTTPClient: srv.Client()}
	a, _ := openSub(t, cfg, testSubReq)
	a.expect(`next {"n":1}`)
	b, _ := openSub(t, cfg, testSubReq)
	b.expect(`next {"n":2}`)
	for range 2 {
		if r := srv.request(t); r.proto != 2 {
			t.Errorf("request %d over HTTP/%d", r.n, r.proto)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}
