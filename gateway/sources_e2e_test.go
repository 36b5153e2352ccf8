package gateway

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A message published from outside the gateway reaches an SSE client and
// a JSON-stream client with the exact bytes, after the filter and the
// selection set, for every kind of source; a wg_subscribe_once request
// gets the first one alone.
func TestEventSourceStreams(t *testing.T) {
	eachEvEnv(t, func(t *testing.T, e *evEnv) {
		g := evGateway(t, e, evOptions{})
		base := g.URL + "/operations/orders/UserOrders?userId=u1"
		sse := evStream(t, base+"&wg_sse=true")
		ndjson := evStream(t, base)
		if n := g.topics.Stats(kindSource).Topics; n != 1 {
			t.Errorf("%d topics for two identical requests, want 1", n)
		}
		for _, p := range []string{
			`{"id":6,"userId":"u2","status":"paid","total":1}`, // another user's
			`{"id":7,"userId":"u1","status":"paid","total":12.5,"note":"not selected"}`,
			`{"id":"8","userId":"u1","status":"new"}`,
		} {
			e.publish(t, p)
		}
		got := frames(t, sse, 2)
		want := withIDs(t, got, "id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"7\",\"status\":\"paid\",\"total\":12.5}}}\n\n"+
			"id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"8\",\"status\":\"new\",\"total\":null}}}\n\n")
		if got != want {
			t.Errorf("SSE:\n%q\nwant\n%q", got, want)
		}
		got = frames(t, ndjson, 2)
		if want := "{\"data\":{\"orderUpdated\":{\"id\":\"7\",\"status\":\"paid\",\"total\":12.5}}}\n\n" +
			"{\"data\":{\"orderUpdated\":{\"id\":\"8\",\"status\":\"new\",\"total\":null}}}\n\n"; got != want {
			t.Errorf("JSON stream:\n%q\nwant\n%q", got, want)
		}

		// Once: the request waits for the next message; a third client
		// of the same topic.
		once := make(chan *http.Response, 1)
		go func() {
			resp, err := http.Get(base + "&wg_subscribe_once=true")
			if err != nil {
				t.Error(err)
			}
			once <- resp
		}()
		eventually(t, 10*time.Second, "the once client to join", func() bool { return g.topics.Stats(kindSource).Clients == 3 })
		e.publish(t, `{"id":9,"userId":"u1","status":"shipped","total":3}`)
		resp := <-once
		if resp == nil {
			t.FailNow()
		}
		checkHeaders(t, resp, map[string]string{"Content-Type": "application/json"})
		if got := readAll(t, resp); got != `{"data":{"orderUpdated":{"id":"9","status":"shipped","total":3}}}` {
			t.Errorf("once: %q", got)
		}
		// The open streams got it too.
		if got := frames(t, ndjson, 1); got != "{\"data\":{\"orderUpdated\":{\"id\":\"9\",\"status\":\"shipped\",\"total\":3}}}\n\n" {
			t.Errorf("JSON stream: %q", got)
		}
	})
}

// A @publish mutation answers {"data":{"<field>":{"success":true}}} once
// the source took the payload, and the payload reaches a subscriber, exact
// bytes, through the server.
func TestEventSourcePublish(t *testing.T) {
	eachEvEnv(t, func(t *testing.T, e *evEnv) {
		g := evGateway(t, e, evOptions{})
		sse := evStream(t, g.URL+"/operations/orders/UserOrders?userId=u1&wg_sse=true")
		status, body := evPost(t, g.URL+"/operations/orders/UpdateOrder", `{"id":"9","userId":"u1","status":"shipped","total":3.25}`)
		if status != http.StatusOK || body != `{"data":{"updateOrder":{"success":true}}}` {
			t.Fatalf("publish: %d %s", status, body)
		}
		status, body = evPost(t, g.URL+"/operations/orders/UpdateOrder", `{"id":"10","userId":"u2","status":"paid"}`)
		if status != http.StatusOK || body != `{"data":{"updateOrder":{"success":true}}}` {
			t.Fatalf("publish: %d %s", status, body)
		}
		e.publish(t, `{"id":11,"userId":"u1","status":"paid"}`) // from outside, after both
		got := frames(t, sse, 2)
		if want := withIDs(t, got, "id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"9\",\"status\":\"shipped\",\"total\":3.25}}}\n\n"+
			"id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"11\",\"status\":\"paid\",\"total\":null}}}\n\n"); got != want {
			t.Errorf("SSE:\n%q\nwant\n%q", got, want)
		}
		// A publish is a POST, with every variable checked as usual.
		if resp := get(t, g.URL+"/operations/orders/UpdateOrder"); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET of a @publish mutation: %d", resp.StatusCode)
		} else {
			readAll(t, resp)
		}
		if status, body := evPost(t, g.URL+"/operations/orders/UpdateOrder", `{"id":"9","userId":"u1"}`); status != http.StatusBadRequest || !strings.Contains(body, `"propertyPath":"/status"`) {
			t.Errorf("missing variable: %d %s", status, body)
		}
	})
}

// The source's server restarted, or the gateway's connection cut, mid
// stream: the stream stays open, gets one gap ("reconnected") and the
// events published after it.
func TestEventSourceReconnect(t *testing.T) {
	eachEvEnv(t, func(t *testing.T, e *evEnv) {
		g := evGateway(t, e, evOptions{})
		base := g.URL + "/operations/orders/UserOrders?userId=u1"
		sse := evStream(t, base+"&wg_sse=true")
		ndjson := evStream(t, base)
		e.publish(t, `{"id":1,"userId":"u1","status":"before"}`)
		before := frames(t, sse, 1)
		frames(t, ndjson, 1)

		e.kill(t)
		// The gap is written once the source listens again: what is
		// published after it arrives.
		gap := frames(t, sse, 1)
		e.publish(t, `{"id":2,"userId":"u1","status":"after"}`)
		got := before + gap + frames(t, sse, 1)
		want := withIDs(t, got, "id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"1\",\"status\":\"before\",\"total\":null}}}\n\n"+
			"event: gap\ndata: {\"missed\":0,\"reason\":\"reconnected\"}\n\n"+ // no id, as for an upstream
			"id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"2\",\"status\":\"after\",\"total\":null}}}\n\n")
		if got != want {
			t.Errorf("SSE:\n%q\nwant\n%q", got, want)
		}
		if got, want := frames(t, ndjson, 2), "{\"errors\":[{\"message\":\"events were missed\",\"extensions\":{\"code\":\"Gap\",\"missed\":0,\"reason\":\"reconnected\"}}]}\n\n"+
			"{\"data\":{\"orderUpdated\":{\"id\":\"2\",\"status\":\"after\",\"total\":null}}}\n\n"; got != want {
			t.Errorf("JSON stream:\n%q\nwant\n%q", got, want)
		}
		if n := e.conns(t); n != 1 {
			t.Errorf("%d connections after the reconnect, want 1", n)
		}
		// The streams are still open: nothing more was written.
		if n := g.topics.Stats(kindSource).Clients; n != 2 {
			t.Errorf("%d clients after the reconnect, want 2", n)
		}
	})
}

// A message that is not JSON, or lacks a non-null field, is dropped and
// counted in fireboom_source_bad_messages_total{source}; the stream goes
// on with the next good message.
func TestEventSourceBadMessages(t *testing.T) {
	eachEvEnv(t, func(t *testing.T, e *evEnv) {
		g := evGateway(t, e, evOptions{})
		sse := evStream(t, g.URL+"/operations/orders/UserOrders?userId=u1&wg_sse=true")
		for _, p := range []string{
			`secret-7, not json`,
			`{"id":1,"userId":"u1"}`,                          // no status
			`{"id":2,"userId":"u1","status":"x","total":"a"}`, // a Float that is a string
			`{"id":3,"userId":"u1","status":"good"}`,
		} {
			e.publish(t, p)
		}
		got := frames(t, sse, 1)
		if want := withIDs(t, got, "id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"3\",\"status\":\"good\",\"total\":null}}}\n\n"); got != want {
			t.Errorf("SSE:\n%q\nwant\n%q", got, want)
		}
		m := scrape(t, g.URL)
		for series, want := range map[string]string{
			`fireboom_source_bad_messages_total{source="` + e.name + `"}`: "3",
			`fireboom_source_messages_total{source="` + e.name + `"}`:     "4",
			`fireboom_source_connected{source="` + e.name + `"}`:          "1",
		} {
			if m[series] != want {
				t.Errorf("%s = %q, want %s", series, m[series], want)
			}
		}
		// Content is never logged: the log names the reason only.
		if logs := g.logs.String(); !strings.Contains(logs, "event message dropped") || strings.Contains(logs, "secret-7") {
			t.Errorf("logs:\n%s", logs)
		}
	})
}

var metricLine = regexp.MustCompile(`(?m)^(fireboom_\S+) (\S+)$`)

// scrape reads the gateway's /metrics: series (with labels) → value.
func scrape(t *testing.T, base string) map[string]string {
	t.Helper()
	resp := get(t, base+"/metrics")
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	m := map[string]string{}
	for _, sm := range metricLine.FindAllStringSubmatch(string(b), -1) {
		m[sm[1]] = sm[2]
	}
	return m
}
