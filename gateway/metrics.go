package gateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fireboom/fireboom/event"
)

// metrics are the gateway's Prometheus series, on a registry of its own
// (several gateways may live in one test process). Every name is listed
// in the README.
type metrics struct {
	reg           *prometheus.Registry
	openStreams   *prometheus.GaugeVec
	streamEnds    *prometheus.CounterVec
	eventsOut     prometheus.Counter
	authFailures  *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	queryDuration *prometheus.HistogramVec
	reloads       *prometheus.CounterVec
}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		openStreams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fireboom_open_streams", Help: "Open client streams by operation and mode.",
		}, []string{"operation", "mode"}),
		streamEnds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fireboom_stream_ends_total", Help: "Client streams ended, by reason (done, error, client-gone, slow-consumer, expired, shutdown, lifetime, write-failed).",
		}, []string{"reason"}),
		eventsOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fireboom_events_out_total", Help: "Events written to client streams.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fireboom_auth_failures_total", Help: "Requests answered 401, by reason.",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fireboom_streams_rejected_total", Help: "Streams refused by a limit (gateway: 503, identity: 429).",
		}, []string{"limit"}),
		queryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fireboom_upstream_request_duration_seconds", Help: "Query and mutation latency, gateway to upstream and back.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation", "kind"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fireboom_reloads_total", Help: "Operation reloads, by result (ok, failed).",
		}, []string{"result"}),
	}
	hubGauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	hubCounter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		m.openStreams, m.streamEnds, m.eventsOut, m.authFailures, m.rejected, m.queryDuration, m.reloads,
		hubGauge("fireboom_upstream_connections", "Open upstream WebSocket connections.", func() float64 { return float64(g.hub.Stats().Connections) }),
		hubGauge("fireboom_upstream_subscriptions", "Live upstream subscriptions (after deduplication).", func() float64 { return float64(g.hub.Stats().Subscriptions) }),
		hubCounter("fireboom_upstream_events_total", "Events received from upstream subscriptions.", func() float64 { return float64(g.hub.Stats().EventsIn) }),
		hubCounter("fireboom_slow_consumer_cutoffs_total", "Client streams cut off because their queue overflowed.", func() float64 { return float64(g.hub.Stats().Cut) }),
		hubCounter("fireboom_slow_consumer_drops_total", "Events dropped from full client queues (drop-oldest policy).", func() float64 { return float64(g.hub.Stats().Dropped) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// eventOut counts one event written to a client. It is on the hot path:
// a single atomic add.
func (m *metrics) eventOut(*event.Event) { m.eventsOut.Inc() }
