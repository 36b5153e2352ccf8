package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report is what a run measured. JSON field names are stable for scripts.
type report struct {
	Command string  `json:"command"`
	Mode    string  `json:"mode"` // shared, idle, distinct or postgres (-source)
	Clients int     `json:"clients"`
	Rate    float64 `json:"rate,omitempty"`
	Hold    string  `json:"hold"`
	// -source: distinct users (one topic each; each tick NOTIFYs once
	// per user), the payload size, and the gateway's connections counted
	// in pg_stat_activity.
	Users             int `json:"users,omitempty"`
	PayloadBytes      int `json:"payloadBytes,omitempty"`
	SourceConnections int `json:"sourceConnections,omitempty"`

	Connected   int64            `json:"connected"`
	Failed      int64            `json:"failed"`
	Ended       int64            `json:"ended"`
	Failures    map[string]int64 `json:"failures,omitempty"`
	Endings     map[string]int64 `json:"endings,omitempty"`
	FailSample  string           `json:"failSample,omitempty"`
	RampSeconds float64          `json:"rampSeconds"`

	// Counted at the upstream (demo Stats); -1 when unknown.
	UpstreamSubscriptions int            `json:"upstreamSubscriptions"`
	UpstreamByField       map[string]int `json:"upstreamByField,omitempty"`
	UpstreamConnections   int            `json:"upstreamConnections"`
	// As the gateway sees it (/metrics).
	GatewayUpstreamSubscriptions float64 `json:"gatewayUpstreamSubscriptions"`
	GatewayUpstreamConnections   float64 `json:"gatewayUpstreamConnections"`

	HeldSeconds      float64 `json:"heldSeconds"`
	UpstreamEvents   float64 `json:"upstreamEvents"`   // received by the gateway during the hold
	Deliveries       int64   `json:"deliveries"`       // events read by the clients during the hold
	Expected         float64 `json:"expected"`         // upstreamEvents × connected
	DeliveriesPerSec float64 `json:"deliveriesPerSec"` // deliveries / heldSeconds
	GatewayWritten   float64 `json:"gatewayWritten"`   // fireboom_events_out_total during the hold
	Lost             int64   `json:"lost"`             // seq gaps during the hold
	Dups             int64   `json:"dups"`
	LostTotal        int64   `json:"lostTotal"` // seq gaps since the clients connected
	Gaps             int64   `json:"gapEvents"`
	ErrorEvents      int64   `json:"errorEvents"`
	SlowCut          int64   `json:"slowConsumerCuts"`
	GatewayCut       float64 `json:"gatewaySlowConsumerCutoffs"`

	P50MS float64 `json:"p50Ms"`
	P99MS float64 `json:"p99Ms"`
	MaxMS float64 `json:"maxMs"`

	BaselineRSS       int64   `json:"baselineRssBytes"`
	RSS               int64   `json:"rssBytes"` // at the end of the hold
	MaxRSS            int64   `json:"maxRssBytes"`
	RSSPerStream      float64 `json:"rssPerStreamBytes"`
	Goroutines        float64 `json:"goroutines"`
	HeapInuse         float64 `json:"heapInuseBytes"`    // go_memstats_heap_inuse_bytes at the end
	HeapAlloc         float64 `json:"heapAllocBytes"`    // go_memstats_heap_alloc_bytes
	StackInuse        float64 `json:"stackInuseBytes"`   // go_memstats_stack_inuse_bytes
	GatewayCPUSeconds float64 `json:"gatewayCpuSeconds"` // over the hold
	CPUPerEventUS     float64 `json:"cpuPerEventUs"`
	// User and system CPU per delivered event apart (utime and stime of
	// /proc/<pid>/stat); zero when the gateway's pid is unknown.
	UserPerEventUS    float64 `json:"userPerEventUs"`
	SysPerEventUS     float64 `json:"sysPerEventUs"`
	ToolCPUSeconds    float64 `json:"toolCpuSeconds"`    // client workers, over the hold
	MachineCPUPercent float64 `json:"machineCpuPercent"` // all cores, over the hold
	// MachineIdleLoadPercent is the machine's load before any client
	// connected: work that is not the benchmark's.
	MachineIdleLoadPercent float64 `json:"machineIdleLoadPercent"`

	GatewayLog string `json:"gatewayLog,omitempty"`
}

// fill computes the figures from the worker reports and the gateway
// samples taken at both ends of the hold.
func (r *report) fill(ws []workerMsg, held time.Duration, s0, s1 procSample, m0, m1 map[string]float64) {
	var lat latencies
	r.Failures, r.Endings = map[string]int64{}, map[string]int64{}
	for _, w := range ws {
		r.Connected += w.Connected
		r.Failed += w.Failed
		r.Ended += w.Ended
		r.Deliveries += w.Events
		r.Lost += w.Lost
		r.Dups += w.Dups
		r.LostTotal += w.AllLost
		r.Gaps += w.Gaps
		r.ErrorEvents += w.Errors
		r.SlowCut += w.SlowCut
		for k, v := range w.Failures {
			r.Failures[k] += v
		}
		for k, v := range w.Endings {
			r.Endings[k] += v
		}
		if r.FailSample == "" {
			r.FailSample = w.Sample
		}
		lat.add(w.Hist, w.MaxNS)
	}
	r.HeldSeconds = held.Seconds()
	r.UpstreamEvents = m1["fireboom_upstream_events_total"] - m0["fireboom_upstream_events_total"]
	r.Expected = r.UpstreamEvents * float64(r.Connected)
	if r.Users > 0 { // NOTIFYs received; each is one user's, for 1/users of the clients
		r.UpstreamEvents = m1["fireboom_source_messages_total"] - m0["fireboom_source_messages_total"]
		r.Expected = r.UpstreamEvents * float64(r.Connected) / float64(r.Users)
	}
	r.DeliveriesPerSec = float64(r.Deliveries) / r.HeldSeconds
	r.GatewayWritten = m1["fireboom_events_out_total"] - m0["fireboom_events_out_total"]
	r.GatewayCut = m1["fireboom_slow_consumer_cutoffs_total"]
	r.GatewayUpstreamSubscriptions = m1["fireboom_upstream_subscriptions"]
	r.GatewayUpstreamConnections = m1["fireboom_upstream_connections"]
	r.Goroutines = m1["go_goroutines"]
	r.HeapInuse, r.HeapAlloc, r.StackInuse = m1["go_memstats_heap_inuse_bytes"], m1["go_memstats_heap_alloc_bytes"], m1["go_memstats_stack_inuse_bytes"]
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r.P50MS, r.P99MS, r.MaxMS = ms(lat.quantile(0.50)), ms(lat.quantile(0.99)), ms(lat.max)
	r.RSS = s1.rss
	r.MaxRSS = max(r.MaxRSS, s1.rss)
	if r.Connected > 0 {
		r.RSSPerStream = float64(r.RSS-r.BaselineRSS) / float64(r.Connected)
	}
	r.GatewayCPUSeconds = (s1.cpu - s0.cpu).Seconds()
	if r.Deliveries > 0 {
		r.CPUPerEventUS = r.GatewayCPUSeconds * 1e6 / float64(r.Deliveries)
		r.UserPerEventUS = (s1.user - s0.user).Seconds() * 1e6 / float64(r.Deliveries)
		r.SysPerEventUS = (s1.sys - s0.sys).Seconds() * 1e6 / float64(r.Deliveries)
	}
}

// streaming reports whether the mode carries events whose delivery,
// losses and latency are measured.
func (r *report) streaming() bool { return r.Mode == "shared" || r.Users > 0 }

func (r *report) writeJSON(file string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}

// print writes the figures as an aligned list.
func (r *report) print(w io.Writer) {
	line := func(name, format string, a ...any) {
		fmt.Fprintf(w, "%-26s %s\n", name, fmt.Sprintf(format, a...))
	}
	fmt.Fprintf(w, "\nfireboom-bench: mode %s, %d clients", r.Mode, r.Clients)
	switch {
	case r.Users > 0:
		fmt.Fprintf(w, " over %d users, %g ticks/s × %d NOTIFYs of %d bytes", r.Users, r.Rate, r.Users, r.PayloadBytes)
	case r.Mode == "shared":
		fmt.Fprintf(w, ", %g events/s", r.Rate)
	}
	fmt.Fprintf(w, ", hold %s\n", r.Hold)
	line("clients connected", "%d (failed %d%s, ended early %d%s), ramp %.1fs",
		r.Connected, r.Failed, reasons(r.Failures), r.Ended, reasons(r.Endings), r.RampSeconds)
	if r.FailSample != "" {
		line("first failure", "%s", r.FailSample)
	}
	if r.UpstreamSubscriptions >= 0 {
		line("upstream (counted there)", "%d subscriptions %v, %d connections",
			r.UpstreamSubscriptions, fields(r.UpstreamByField), r.UpstreamConnections)
	}
	if r.Users > 0 {
		line("source (counted there)", "%d PostgreSQL connections of the gateway (pg_stat_activity)", r.SourceConnections)
	} else {
		line("upstream (gateway view)", "%.0f subscriptions, %.0f connections", r.GatewayUpstreamSubscriptions, r.GatewayUpstreamConnections)
	}
	if r.streaming() {
		pct := 0.0
		if r.Expected > 0 {
			pct = 100 * float64(r.Deliveries) / r.Expected
		}
		in := "upstream events (hold)"
		if r.Users > 0 {
			in = "NOTIFYs received (hold)"
		}
		line(in, "%.0f in %.1fs (%.1f/s)", r.UpstreamEvents, r.HeldSeconds, r.UpstreamEvents/r.HeldSeconds)
		line("deliveries (hold)", "%s = %s/s (%.2f%% of %s expected; gateway wrote %s)",
			thousands(float64(r.Deliveries)), thousands(r.DeliveriesPerSec), pct, thousands(r.Expected), thousands(r.GatewayWritten))
		line("lost events", "%d in the hold, %d since connecting (seq gaps); %d duplicates, %d gap events",
			r.Lost, r.LostTotal, r.Dups, r.Gaps)
		line("slow-consumer cut-offs", "%d seen by clients, %.0f counted by the gateway; %d error events",
			r.SlowCut, r.GatewayCut, r.ErrorEvents)
		line("latency publish→read", "p50 %.1f ms, p99 %.1f ms, max %.1f ms", r.P50MS, r.P99MS, r.MaxMS)
	}
	line("gateway RSS", "%s (baseline %s, max %s) → %.1f KB per stream",
		mb(r.RSS), mb(r.BaselineRSS), mb(r.MaxRSS), r.RSSPerStream/1024)
	per := func(v float64) float64 { return v / max(float64(r.Connected), 1) / 1024 }
	line("gateway Go memory", "heap in use %s (%.1f KB/stream), heap alloc %s, stacks %s (%.1f KB/stream)",
		mb(int64(r.HeapInuse)), per(r.HeapInuse), mb(int64(r.HeapAlloc)), mb(int64(r.StackInuse)), per(r.StackInuse))
	line("gateway goroutines", "%.0f (%.2f per stream)", r.Goroutines, r.Goroutines/max(float64(r.Connected), 1))
	cpu := fmt.Sprintf("%.2f s over %.1fs (%.0f%% of one core)", r.GatewayCPUSeconds, r.HeldSeconds, 100*r.GatewayCPUSeconds/r.HeldSeconds)
	if r.Deliveries > 0 {
		cpu += fmt.Sprintf(" → %.2f µs per delivered event", r.CPUPerEventUS)
		if r.UserPerEventUS+r.SysPerEventUS > 0 {
			cpu += fmt.Sprintf(" (%.2f user + %.2f system)", r.UserPerEventUS, r.SysPerEventUS)
		}
	}
	line("gateway CPU (hold)", "%s", cpu)
	line("load tool CPU (hold)", "%.2f s; machine busy %.0f%% of all cores (%.0f%% before the clients)",
		r.ToolCPUSeconds, r.MachineCPUPercent, r.MachineIdleLoadPercent)
	if r.GatewayLog != "" {
		fmt.Fprintf(w, "gateway log (last lines):\n%s\n", r.GatewayLog)
	}
}

func reasons(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+": "+strconv.FormatInt(m[k], 10))
	}
	return " [" + strings.Join(parts, ", ") + "]"
}

func fields(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+": "+strconv.Itoa(m[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// thousands renders 1234567.8 as "1,234,568".
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// cpuTimes is the first line of /proc/stat: busy and total jiffies.
type cpuTimes struct{ busy, total int64 }

func machineCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	first, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(first)
	var t cpuTimes
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest times are already in user and nice
			break
		}
		t.total += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
	}
	return t
}

// busySince is the share of all cores that was busy since t0, in percent.
func (t cpuTimes) busySince(t0 cpuTimes) float64 {
	if t.total <= t0.total {
		return 0
	}
	return 100 * float64(t.busy-t0.busy) / float64(t.total-t0.total)
}
