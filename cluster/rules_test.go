package cluster

import (
	"strings"
	"testing"

	"github.com/fireboom/fireboom/event"
)

// rec builds a record for apply.
func rec(seq uint64, kind byte, term uint64, inst string, n uint64, data string) record {
	return record{seq: seq, kind: kind, term: term, inst: inst, n: n, data: []byte(data)}
}

// applied is a live log that has read recs, and what it handed over.
func applied(recs ...record) (*jsLog, string) {
	l := newLog("tag000", 16, false, nil)
	l.markLoadedLocked()
	for _, r := range recs {
		l.apply(r, 0)
	}
	return l, render(l.Take(nil))
}

func TestFencedRecordsAreDropped(t *testing.T) {
	// a (term 1) publishes 1; b takes over (term 5); a's late result 2
	// lands after b's start and must not count.
	_, got := applied(
		rec(1, kindStart, 1, "a", 0, ""),
		rec(2, kindNext, 1, "a", 1, "1"),
		rec(3, kindStart, 5, "b", 0, ""),
		rec(4, kindNext, 1, "a", 2, "late"),
		rec(5, kindNext, 5, "b", 2, "2"),
	)
	if got != `next 1;gap {"missed":0,"reason":"failover"};next 2;` {
		t.Fatalf("got %s", got)
	}
}

func TestStopsPlaceTheirGap(t *testing.T) {
	l, got := applied(
		rec(1, kindStart, 1, "a", 0, ""),
		rec(2, kindNext, 1, "a", 1, "1"),
		rec(3, kindStop, 1, "a", 0, stopIdle),
		rec(4, kindStart, 7, "b", 0, ""),
		rec(5, kindNext, 7, "b", 2, "2"),
	)
	if got != `next 1;gap {"missed":0,"reason":"restarted"};next 2;` {
		t.Fatalf("live: %s", got)
	}
	evs, gap := l.Since(formatID("tag000", 2, 1), nil)
	if gap != nil || render(evs) != `gap {"missed":0,"reason":"restarted"};next 2;` {
		t.Fatalf("resume across the stop: %s %+v", render(evs), gap)
	}
	if l.startReason() != "" {
		t.Errorf("a start after an idle stop counted as %q", l.startReason())
	}
	// A handoff: the gap is the stop's, and the start counts as one.
	l, got = applied(
		rec(1, kindStart, 1, "a", 0, ""),
		rec(2, kindStop, 1, "a", 0, stopHandoff),
		rec(3, kindStart, 4, "b", 0, ""),
	)
	if got != `gap {"missed":0,"reason":"handoff"};` || l.startReason() != "handoff" {
		t.Fatalf("handoff: %s %q", got, l.startReason())
	}
}

func TestSameOwnerAgainIsNoGap(t *testing.T) {
	// The owner's lease lapsed in a NATS outage and it won it back: its
	// results go on under a new term, nothing was lost.
	_, got := applied(
		rec(1, kindStart, 1, "a", 0, ""),
		rec(2, kindNext, 1, "a", 1, "1"),
		rec(3, kindStart, 9, "a", 0, ""),
		rec(4, kindNext, 9, "a", 2, "2"),
	)
	if got != `next 1;next 2;` {
		t.Fatalf("got %s", got)
	}
}

func TestOrdinalHoleIsAGap(t *testing.T) {
	l, got := applied(
		rec(1, kindNext, 1, "a", 1, "1"),
		rec(2, kindNext, 1, "a", 3, "3"), // 2 was lost in an outage
	)
	if got != `next 1;gap {"missed":0,"reason":"reconnected"};next 3;` {
		t.Fatalf("got %s", got)
	}
	if evs, gap := l.Since(formatID("tag000", 1, 1), nil); gap != nil || render(evs) != `gap {"missed":0,"reason":"reconnected"};next 3;` {
		t.Fatalf("resume: %s %+v", render(evs), gap)
	}
}

func TestEndEndsTheRun(t *testing.T) {
	l, got := applied(
		rec(1, kindNext, 1, "a", 1, "1"),
		rec(2, kindError, 1, "a", 0, `{"errors":[{"message":"x"}]}`),
		rec(3, kindStart, 2, "b", 0, ""),
		rec(4, kindNext, 2, "b", 2, "2"),
	)
	if got != `next 1;error {"errors":[{"message":"x"}]};next 2;` {
		t.Fatalf("got %s", got)
	}
	// A resume from the first run gets its end, not the next run.
	evs, _ := l.Since(formatID("tag000", 1, 1), nil)
	if render(evs) != `error {"errors":[{"message":"x"}]};` || evs[0].Kind != event.Error {
		t.Fatalf("resume: %s", render(evs))
	}
}

func TestKeysNeverInNames(t *testing.T) {
	key := "ws://u\x00Authorization\x01Bearer secret-token\x00{\"query\":\"subscription\"}"
	e := &Engine{cfg: Config{Name: "fb"}, inst: "i1"}
	for _, name := range []string{e.subject(topicHash(key)), leaseKey(topicHash(key)), e.interestKey(topicHash(key))} {
		if strings.Contains(name, "secret") || strings.Contains(name, "Bearer") || len(name) > 60 {
			t.Errorf("name %q", name)
		}
	}
}
