package gateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/sse"
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
	livePolls     *prometheus.CounterVec
}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		openStreams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fireboom_open_streams", Help: "Open client streams by operation and mode.",
		}, []string{"operation", "mode"}),
		streamEnds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fireboom_stream_ends_total", Help: "Client streams ended, by reason (done, error, client-gone, slow-consumer, expired, shutdown, lifetime, write-failed, reloaded, removed).",
		}, []string{"reason"}),
		eventsOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fireboom_events_out_total", Help: "Events written to client streams.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fireboom_auth_failures_total", Help: "Requests refused by authentication (401, by reason) or authorization (403, reason forbidden).",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fireboom_streams_rejected_total", Help: "Streams refused by a limit (gateway: 503, identity: 429).",
		}, []string{"limit"}),
		queryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fireboom_upstream_request_duration_seconds", Help: "Query and mutation latency, gateway to upstream and back.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation", "kind"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fireboom_reloads_total", Help: "Operation reloads (file change or SIGHUP), by result: ok, or failed when a file did not compile or the folder could not be read.",
		}, []string{"result"}),
		livePolls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fireboom_live_polls_total", Help: "Live query polls of the upstream, by result (changed, unchanged, failed).",
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
		m.livePolls, hubGauge("fireboom_live_pollers", "Running live query pollers (one per distinct upstream request).", func() float64 { return float64(g.topics.Stats(kindLive).Topics) }),
		hubGauge("fireboom_upstream_connections", "Open upstream WebSocket connections.", func() float64 { return float64(g.hub.Stats().Connections) }),
		hubGauge("fireboom_upstream_subscriptions", "Live upstream subscriptions (after deduplication; in a cluster, those this instance runs).", func() float64 { return float64(g.upstreamSubscriptions()) }),
		hubCounter("fireboom_upstream_events_total", "Events received from upstream subscriptions.", func() float64 { return float64(g.upstreamEvents()) }),
		hubCounter("fireboom_slow_consumer_cutoffs_total", "Client streams cut off because their queue overflowed.", func() float64 { return float64(g.topics.Stats("").Cut) }),
		hubCounter("fireboom_slow_consumer_drops_total", "Events dropped from full client queues (drop-oldest policy).", func() float64 { return float64(g.topics.Stats("").Dropped) }),
		hubCounter("fireboom_upstream_reconnects_total", "Upstream WebSocket connections re-established after they dropped.", func() float64 { return float64(g.hub.Stats().Reconnects) }),
		operationsGauge(g, "served"), operationsGauge(g, "failed"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if g.sources != nil {
		m.reg.MustRegister(g.sources.Collector())
	}
	if g.engine != nil {
		m.reg.MustRegister(newClusterCollector(g))
	}
	// Known label values start at 0, so that rates and alerts work before
	// the first occurrence.
	for _, r := range []string{"ok", "failed"} {
		m.reloads.WithLabelValues(r)
	}
	for _, l := range []string{"gateway", "identity"} {
		m.rejected.WithLabelValues(l)
	}
	for _, r := range []string{sse.ReasonDone, sse.ReasonError, sse.ReasonSlowConsumer, sse.ReasonClientGone,
		sse.ReasonExpired, sse.ReasonShutdown, sse.ReasonLifetime, sse.ReasonWriteFailed, reasonReloaded, reasonRemoved} {
		m.streamEnds.WithLabelValues(r)
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// eventOut counts one event written to a client. It is on the hot path:
// a single atomic add.
func (m *metrics) eventOut(*event.Event) { m.eventsOut.Inc() }

// operationsGauge reports the operations served, or the files that failed
// to load, in the current registry.
func operationsGauge(g *Gateway, state string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fireboom_operations", Help: "Operations in the current registry: served, or failed (files not served or kept at their last good version).",
		ConstLabels: prometheus.Labels{"state": state},
	}, func() float64 {
		served, failed := g.OperationCount()
		if state == "served" {
			return float64(served)
		}
		return float64(failed)
	})
}
