package cluster

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkPublishToTake measures what the cluster adds to one event's
// way: the owner publishes a result, the broker stores it, the reader
// applies it and the topic takes it (one op: one event, unloaded, on an
// in-process server over loopback).
//
//	go test -run '^$' -bench PublishToTake ./cluster
func BenchmarkPublishToTake(b *testing.B) {
	srv := startNATS(b)
	_, js := connectJS(b, srv.URL())
	ctx := ctxT(b)
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "bench", Subjects: []string{"bench.>"}, MaxMsgsPerSubject: 1000})
	if err != nil {
		b.Fatal(err)
	}
	hash := topicHash("bench")
	ready := make(chan struct{}, 1)
	l := newLog(idTag(st.CachedInfo().Created.UnixNano(), hash), 1000, false, func() {
		select {
		case ready <- struct{}{}:
		default:
		}
	})
	l.pub = &publisher{js: js, subject: "bench.t." + hash, inst: "b", term: 1}
	rd, err := startReader(ctx, st, "bench.t."+hash, l)
	if err != nil {
		b.Fatal(err)
	}
	defer rd.stop()
	payload := []byte(`{"data":{"stockPricesChanged":{"symbol":"ACME","price":101.25,"seq":42,"publishedAt":"2025-01-01T00:00:00.000000001Z"}}}`)
	b.ResetTimer()
	for range b.N {
		l.Append(payload)
		for n := 0; n == 0; {
			<-ready
			n = len(l.Take(nil))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/event")
}
