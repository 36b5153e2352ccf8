package topic_test

import (
	"runtime"
	"testing"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

// BenchmarkFanout measures the topic's share of delivering one source
// result to 1,000 client queues: naming it in the ring, one shared Event,
// 1,000 non-blocking pushes. One op is one result.
//
//	go test -run '^$' -bench Fanout -benchmem ./topic
func BenchmarkFanout(b *testing.B) {
	const clients = 1000
	h := topic.NewHub(topic.Config{})
	defer h.Close()
	s := newScript()
	spec := topic.Spec{Key: "k", Source: s}
	subs := make([]*topic.Client, clients)
	for i := range subs {
		c, err := h.Join(b.Context(), spec, topic.JoinOptions{Queue: event.Limits{MaxEvents: 1 << 12, MaxBytes: 1 << 26}})
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = c
	}
	payload := []byte(`{"data":{"stockPricesChanged":{"symbol":"ACME","price":101.25,"seq":42,"publishedAt":"2025-01-01T00:00:00.000000001Z"}}}`)
	var buf []*event.Event
	drain := func() {
		for _, c := range subs {
			buf = c.Queue().Take(buf[:0])
		}
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for i := range b.N {
		s.sink.Next(payload)
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
	if got := h.Stats("").Clients; got != clients {
		b.Fatalf("%d clients left", got)
	}
	for _, c := range subs {
		c.Close()
	}
}
