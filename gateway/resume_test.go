package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/upstream/demo"
)

// Resuming with Last-Event-ID through the real gateway and demo upstream:
// exact replays, gap events, and reconnects after the lifetime cap.

// incarnation is the part of an event id that names one upstream
// subscription (ids are opaque to clients; the tests know their shape).
func incarnation(id string) string {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return id
	}
	return id[:i]
}

// A client that reconnects with Last-Event-ID to a live shared
// subscription gets exactly the events it missed, then live ones.
func TestResumeNoGapNoDuplicate(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	keeper := openSSE(t, roomURL(g, "resume"))
	c := openSSE(t, roomURL(g, "resume"))
	waitActive(t, d, 1)
	postN(t, g, "resume", "m", 1, 2)
	all := keeper.expectMessages("m1", "m2")
	seen := c.expectMessages("m1", "m2")
	c.close()
	// Missed while away; the keeper holds the upstream subscription.
	all = append(all, keeper.expectMessages(postN(t, g, "resume", "m", 3, 4)...)...)
	c = openSSE(t, roomURL(g, "resume"), "Last-Event-ID", seen[1])
	ids := c.expectMessages("m3", "m4")
	post(t, g, "resume", "m5")
	all = append(all, keeper.expectMessages("m5")...)
	ids = append(ids, c.expectMessages("m5")...)
	c.none(50 * time.Millisecond)
	if strings.Join(ids, " ") != strings.Join(all[2:], " ") {
		t.Errorf("resumed ids %q, the keeper saw %q", ids, all[2:])
	}
	// ?wg_last_event_id= does the same on a first connection (EventSource
	// can't set headers; a page can remember the id).
	q := openSSE(t, roomURL(g, "resume")+"&wg_last_event_id="+all[0])
	q.expectMessages("m2", "m3", "m4", "m5")
	post(t, g, "resume", "m6")
	q.expectMessages("m6")
	// The header wins over the parameter.
	h := openSSE(t, roomURL(g, "resume")+"&wg_last_event_id="+all[0], "Last-Event-ID", all[3])
	h.expectMessages("m5", "m6")
	h.none(50 * time.Millisecond)
	if n := d.Stats().SubscriptionsStarted; n != 1 {
		t.Errorf("upstream subscriptions started: %d", n)
	}
}

// An id older than the replay ring, or of a subscription that no longer
// runs, gets exactly one gap event, then live events.
func TestResumeGapEvent(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "subscriptions": {"replayBuffer": 2}`))
	keeper := openSSE(t, roomURL(g, "gap"))
	waitActive(t, d, 1)
	post(t, g, "gap", "m1")
	first := keeper.expectMessages("m1")[0]
	ids := keeper.expectMessages(postN(t, g, "gap", "m", 2, 5)...) // the ring holds m4 and m5
	newest := ids[3]

	c := openSSE(t, roomURL(g, "gap"), "Last-Event-ID", first)
	ev := c.next()
	want := "id: " + newest + "\nevent: gap\ndata: {\"missed\":4,\"lastEventId\":\"" + newest + "\",\"reason\":\"expired\"}\n\n"
	if ev.Raw != want {
		t.Fatalf("too old an id: %q, want %q", ev.Raw, want)
	}
	post(t, g, "gap", "m6")
	keeper.expectMessages("m6")
	c.expectMessages("m6")
	c.none(50 * time.Millisecond)

	// EventSource took the gap's id as its last event id: reconnecting with
	// it resumes right after the gap.
	c.close()
	c = openSSE(t, roomURL(g, "gap"), "Last-Event-ID", ev.ID)
	c.expectMessages("m6")

	// An id of another incarnation (a restarted subscription, or another
	// gateway): reason restarted, missed unknown (0).
	r := openSSE(t, roomURL(g, "gap"), "Last-Event-ID", "abc123-5")
	ev = r.next()
	want = "id: " + incarnation(newest) + "-6\nevent: gap\ndata: {\"missed\":0,\"lastEventId\":\"" + incarnation(newest) + "-6\",\"reason\":\"restarted\"}\n\n"
	if ev.Raw != want {
		t.Fatalf("unknown id: %q, want %q", ev.Raw, want)
	}
	post(t, g, "gap", "m7")
	r.expectMessages("m7")
	r.none(50 * time.Millisecond)

	// The JSON stream gets the gap as a GraphQL-shaped error line, and goes on.
	resp := get(t, g.URL+"/operations/chat/MessageCreated?room=gap", "Last-Event-ID", first)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line := readUntil(t, br, "\n\n", 5*time.Second)
	if want := `{"errors":[{"message":"events were missed","extensions":{"code":"Gap","missed":6,"lastEventId":"` + incarnation(newest) + `-7","reason":"expired"}}]}` + "\n\n"; line != want {
		t.Errorf("JSON stream gap %q, want %q", line, want)
	}
}

// A first connection to a subscription that is not running yet, with an
// id the client kept from before: one gap (restarted), then events.
func TestResumeRestartedSubscription(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	a := openSSE(t, roomURL(g, "restart"))
	waitActive(t, d, 1)
	post(t, g, "restart", "m1")
	old := a.expectMessages("m1")[0]
	a.close()
	waitActive(t, d, 0)
	b := openSSE(t, roomURL(g, "restart")+"&wg_last_event_id="+old)
	ev := b.next()
	if ev.Event != "gap" || !strings.Contains(ev.Data, `"reason":"restarted"`) || incarnation(ev.ID) == incarnation(old) || !strings.HasSuffix(ev.ID, "-0") {
		t.Fatalf("gap %q", ev.Raw)
	}
	waitActive(t, d, 1)
	post(t, g, "restart", "m2")
	ids := b.expectMessages("m2")
	if incarnation(ids[0]) != incarnation(ev.ID) {
		t.Errorf("event %q after gap %q", ids[0], ev.ID)
	}
}

// A stream capped by subscriptions.maxLifetime ends with a retry hint and
// no done; reconnecting with Last-Event-ID, as EventSource does after the
// hint, resumes without loss, even for the subscription's only client.
func TestMaxLifetimeResumesWithoutLoss(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "subscriptions": {"maxLifetime": "250ms"}`))
	const from = 30
	url := g.URL + fmt.Sprintf("/operations/Countdown?wg_sse=true&from=%d&interval=25", from)
	var values []int
	lastID := ""
	capped := 0
	for attempt := 0; ; attempt++ {
		if attempt == 20 {
			t.Fatalf("no done after 20 connections; values %v", values)
		}
		var s *sseStream
		if lastID == "" {
			s = openSSE(t, url)
		} else {
			s = openSSE(t, url, "Last-Event-ID", lastID)
		}
		ended := ""
		for ended == "" {
			ev := s.next()
			switch {
			case ev.Event == "done":
				ended = "done"
			case ev.Retry != "":
				if ev.Raw != "retry: 1000\n\n" {
					t.Fatalf("lifetime end %q, want %q", ev.Raw, "retry: 1000\n\n")
				}
				ended = "capped"
			case ev.Event == "gap":
				t.Fatalf("gap after %v: %q", values, ev.Raw)
			default:
				var v struct {
					Data struct{ Countdown int } `json:"data"`
				}
				if err := json.Unmarshal([]byte(ev.Data), &v); err != nil || !ev.HasID {
					t.Fatalf("event %q", ev.Raw)
				}
				values = append(values, v.Data.Countdown)
				lastID = ev.ID
			}
		}
		s.ended()
		if ended == "done" {
			break
		}
		capped++
		// EventSource waits the retry hint before reconnecting.
		time.Sleep(time.Second)
	}
	if capped == 0 {
		t.Fatal("the stream was never capped")
	}
	for i, v := range values {
		if v != from-i {
			t.Fatalf("values across %d reconnects: %v", capped, values)
		}
	}
	if len(values) != from+1 {
		t.Fatalf("values across %d reconnects: %v", capped, values)
	}
	if n := d.Stats().SubscriptionsStarted; n != 1 {
		t.Errorf("upstream subscriptions started: %d, want 1 (resumed, not restarted)", n)
	}
	t.Logf("%d values over %d capped streams", len(values), capped+1)
}

// The same with a subscription that never completes: events published
// while the capped client is away (it is the only one) are kept for it.
func TestMaxLifetimeKeepsEventsWhileAway(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "subscriptions": {"maxLifetime": "1s"}`))
	s := openSSE(t, roomURL(g, "capped"))
	waitActive(t, d, 1)
	post(t, g, "capped", "m1")
	ids := s.expectMessages("m1")
	next := 2
	for round := range 2 {
		// The stream ends at the cap with the retry hint only.
		if ev := s.next(); ev.Raw != "retry: 1000\n\n" {
			t.Fatalf("round %d: %q, want the retry hint", round, ev.Raw)
		}
		s.ended()
		// Published while nobody is connected.
		away := postN(t, g, "capped", "m", next, next+1)
		s = openSSE(t, roomURL(g, "capped"), "Last-Event-ID", ids[len(ids)-1])
		ids = s.expectMessages(away...)
		live := postN(t, g, "capped", "m", next+2, next+2)
		ids = append(ids, s.expectMessages(live...)...)
		next += 3
	}
	if st := d.Stats(); st.SubscriptionsStarted != 1 {
		t.Errorf("upstream subscriptions started: %d, want 1", st.SubscriptionsStarted)
	}
}
