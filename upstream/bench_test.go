package upstream

import (
	"encoding/json"
	"runtime"
	"testing"

	"github.com/fireboom/fireboom/event"
)

// BenchmarkFanout measures the hub's share of delivering one upstream event
// to 1,000 client queues: compaction, one shared Event, 1,000 Pushes.
//
//	go test -run '^$' -bench Fanout -benchmem ./upstream
func BenchmarkFanout(b *testing.B) {
	const clients = 1000
	h, err := NewHub(HubConfig{URL: "ws://127.0.0.1:1/graphql"})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	s := &shared{h: h, inc: "bench01", ring: make([]*event.Event, DefaultReplayBuffer)}
	subs := make([]*Subscription, clients)
	s.mu.Lock()
	for i := range subs {
		subs[i] = &Subscription{h: h, s: s, q: event.NewQueue(event.Limits{MaxEvents: 1 << 12, MaxBytes: 1 << 26})}
		s.addLocked(subs[i], &SubscribeOptions{})
	}
	s.mu.Unlock()
	payload := json.RawMessage(`{"data":{"stockPricesChanged":{"symbol":"ACME","price":101.25,"seq":42,"publishedAt":"2025-01-01T00:00:00.000000001Z"}}}`)
	var buf []*event.Event
	drain := func() {
		for _, sub := range subs {
			buf = sub.q.Take(buf[:0])
		}
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for i := range b.N {
		s.deliver(payload)
		if i%1024 == 1023 {
			b.StopTimer()
			drain()
			b.StartTimer()
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	deliveries := float64(b.N) * clients
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/deliveries, "allocs/delivery")
	if got := len(s.clients); got != clients {
		b.Fatalf("%d clients left", got)
	}
}
