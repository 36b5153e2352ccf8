package sse

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	gosse "github.com/tmaxmax/go-sse"

	"github.com/fireboom/fireboom/event"
)

// A client that stops reading fills its socket: direct writes then write
// part of a chunk (the goroutine finishes it) or nothing (the event is
// queued and the goroutine writes it under its deadline). When the client
// reads again it gets every event once, in order, each whole.
func TestDirectWritesKeepOrderWhenTheSocketFills(t *testing.T) {
	q := event.NewQueue(event.Limits{MaxEvents: 1 << 16, MaxBytes: 1 << 30})
	h := newDetachHarness(t, q, Options{Heartbeat: -1}, true)
	resp := h.get(t.Context(), "?wg_sse=true")
	if res := h.handlerResult(); res.Reason != ReasonDetached {
		t.Fatalf("handler result = %+v", res)
	}
	const n = 400
	pad := strings.Repeat("x", 16<<10)
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad)
		q.Push(&event.Event{Kind: event.Next, ID: fmt.Sprint(i + 1), Data: []byte(want[i])})
	}
	q.Close(nil)
	// 6 MiB pushed while nobody read: far past any socket buffer.
	var got []string
	for e, err := range gosse.Read(resp.Body, &gosse.ReadConfig{MaxEventSize: 1 << 20}) {
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if e.Type == "done" {
			break
		}
		if e.LastEventID != fmt.Sprint(len(got)+1) || e.Data != want[len(got)] {
			t.Fatalf("event %d: id %q, %d bytes", len(got), e.LastEventID, len(e.Data))
		}
		got = append(got, e.Data)
	}
	if len(got) != n {
		t.Fatalf("%d events, want %d", len(got), n)
	}
	if res := h.result(); res.Reason != ReasonDone || res.Events != n {
		t.Fatalf("result = %+v", res)
	}
}

// A caught-up client's events are written by the pusher: the stream's
// goroutine is not woken (the queue stays empty and unsignalled).
func TestDirectWriteSkipsTheQueue(t *testing.T) {
	q := event.NewQueue(event.Limits{})
	h := newDetachHarness(t, q, Options{Heartbeat: -1}, true)
	resp := h.get(t.Context(), "?wg_sse=true")
	if res := h.handlerResult(); res.Reason != ReasonDetached {
		t.Fatalf("handler result = %+v", res)
	}
	// Let the stream's goroutine park and take the direct path.
	deadline := time.Now().Add(5 * time.Second)
	for {
		q.Push(next("1", result1))
		if q.Len() == 0 && len(q.Ready()) == 0 {
			break // written by Push itself
		}
		if time.Now().After(deadline) {
			t.Fatal("events never took the direct path")
		}
		time.Sleep(10 * time.Millisecond)
	}
	q.Close(nil)
	body := readAll(t, resp.Body)
	if !strings.HasSuffix(body, "id: 1\ndata: "+result1+"\n\n"+doneBytes) {
		t.Fatalf("body %q", body)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
}

func TestChunkOverhead(t *testing.T) {
	for _, p := range []int{1, 15, 16, 255, 256, 4095, 4096, 65535, 65536, 1 << 20} {
		if got, want := chunkOverhead(len(chunk(make([]byte, p)))), len(chunk(make([]byte, p)))-p; got != want {
			t.Errorf("payload %d: overhead %d, want %d", p, got, want)
		}
	}
}
