package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The gateway in a cluster (config "cluster", CONTRACT §9): the engine is
// made by the command (package cluster) and handed in as Options.Engine;
// the topic layer shares topics through it. Here: its metrics, /ready and
// /_/stats. maxStreams and maxStreamsPerIdentity stay per instance.

// clusterUnavailable is /ready's reason while the engine refuses streams.
const clusterUnavailable = "cluster unavailable"

// clusterCollector reads the engine's status at scrape time.
type clusterCollector struct {
	g                *Gateway
	owned, connected *prometheus.Desc
	takeovers        *prometheus.Desc
}

func newClusterCollector(g *Gateway) *clusterCollector {
	return &clusterCollector{
		g:         g,
		owned:     prometheus.NewDesc("fireboom_cluster_topics_owned", "Topics whose source runs on this instance.", nil, nil),
		connected: prometheus.NewDesc("fireboom_cluster_nats_connected", "1 while the NATS connection is up.", nil, nil),
		takeovers: prometheus.NewDesc("fireboom_cluster_takeovers_total", "Topics this instance took over, by reason (failover: the owner vanished; handoff: it handed them over).", []string{"reason"}, nil),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.owned
	ch <- c.connected
	ch <- c.takeovers
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.g.engine.Status()
	conn := 0.0
	if s.Connected {
		conn = 1
	}
	ch <- prometheus.MustNewConstMetric(c.owned, prometheus.GaugeValue, float64(s.Owned))
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, conn)
	for _, r := range []string{"failover", "handoff"} {
		ch <- prometheus.MustNewConstMetric(c.takeovers, prometheus.CounterValue, float64(s.Takeovers[r]), r)
	}
}

// clusterStats is the cluster part of a /_/stats sample ("" without one).
func (g *Gateway) clusterStats() string {
	if g.engine == nil {
		return ""
	}
	s := g.engine.Status()
	return `,"cluster":{"connected":` + boolJSON(s.Connected) + `,"available":` + boolJSON(s.Available) +
		`,"topicsOwned":` + strconv.Itoa(s.Owned) + `}`
}

func boolJSON(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// closeEngine closes the cluster engine, if any.
func (g *Gateway) closeEngine() {
	if c, ok := g.engine.(interface{ Close() error }); ok {
		if err := c.Close(); err != nil {
			g.log.Warn("cluster: close", "err", err)
		}
	}
}
