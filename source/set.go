package source

import (
	"errors"
	"fmt"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Spec names one source to build: its name in fireboom.json, its kind
// (Postgres, NATS, Redis) and its URL.
type Spec struct {
	Name, Kind, URL string
}

// clientName is how a source's connections introduce themselves to the
// server (application_name, CLIENT SETNAME, the NATS client name).
func clientName(source string) string { return "fireboom:" + source }

// Set is the gateway's sources by name.
type Set struct {
	byName map[string]*Source
	names  []string
}

// NewSet builds and starts every source (each connects in the
// background). On an error, the ones already started are closed.
func NewSet(specs []Spec, opt Options) (*Set, error) {
	set := &Set{byName: map[string]*Source{}}
	for _, sp := range specs {
		if set.byName[sp.Name] != nil {
			set.Close()
			return nil, fmt.Errorf("source %s: declared twice", sp.Name)
		}
		s, err := New(sp.Name, sp.Kind, sp.URL, opt)
		if err != nil {
			set.Close()
			return nil, err
		}
		set.byName[sp.Name] = s
		set.names = append(set.names, sp.Name)
	}
	sort.Strings(set.names)
	return set, nil
}

// Get returns the source called name, or nil.
func (set *Set) Get(name string) *Source {
	if set == nil {
		return nil
	}
	return set.byName[name]
}

// Names lists the sources, sorted.
func (set *Set) Names() []string {
	if set == nil {
		return nil
	}
	return append([]string(nil), set.names...)
}

// Ready is nil when every source is connected, else the errors of those
// that are not, each naming its source (for /ready's 503).
func (set *Set) Ready() error {
	if set == nil {
		return nil
	}
	var errs []error
	for _, n := range set.names {
		if err := set.byName[n].Ready(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close closes every source and waits for them.
func (set *Set) Close() {
	if set == nil {
		return
	}
	for _, s := range set.byName {
		s.Close()
	}
}

var (
	descMessages = prometheus.NewDesc("fireboom_source_messages_total",
		"Messages received from each event source.", []string{"source"}, nil)
	descBad = prometheus.NewDesc("fireboom_source_bad_messages_total",
		"Event source messages dropped because they were not JSON or did not fit the operation's type.", []string{"source"}, nil)
	descDropped = prometheus.NewDesc("fireboom_source_dropped_total",
		"Times an event source's client library dropped messages because the gateway read too slowly (NATS slow consumer); each stream was told with a gap.", []string{"source"}, nil)
	descConnected = prometheus.NewDesc("fireboom_source_connected",
		"Whether each event source is connected (1) or not (0).", []string{"source"}, nil)
)

// Collector exposes the sources' counters to Prometheus:
// fireboom_source_messages_total, fireboom_source_bad_messages_total,
// fireboom_source_dropped_total and fireboom_source_connected, each
// labelled by source.
func (set *Set) Collector() prometheus.Collector { return collector{set} }

type collector struct{ set *Set }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMessages
	ch <- descBad
	ch <- descDropped
	ch <- descConnected
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, n := range c.set.Names() {
		st := c.set.byName[n].Stats()
		conn := 0.0
		if st.Connected {
			conn = 1
		}
		ch <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, float64(st.Messages), n)
		ch <- prometheus.MustNewConstMetric(descBad, prometheus.CounterValue, float64(st.BadMessages), n)
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.Dropped), n)
		ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, conn, n)
	}
}
