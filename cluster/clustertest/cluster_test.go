package clustertest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fireboom/fireboom/upstream/demo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// leaseTTL is the cluster's: a killed owner is replaced within it + 1s.
// 5s (the default) rather than less: on a busy 2-core machine a NATS
// client's reconnect after the one-second outage of scenario 5 can take
// longer than a shorter lease, which would then (rightly) fail over.
const leaseTTL = 5 * time.Second

// stream is the subscription every scenario reads: the ticks of one
// symbol, 20 a second.
const stream = "/operations/stocks/Prices?symbols=ACME&wg_sse=true"

type cluster struct {
	t     *testing.T
	up    *demo.Server
	nats  *nats
	gws   []*gateway
	proxy string // nginx's base URL
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	dir := t.TempDir()
	bin := buildGateway(t, dir)
	up, err := demo.Start(demo.Options{TickInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	c := &cluster{t: t, up: up, nats: &nats{t: t, port: freePort(t), dir: filepath.Join(dir, "nats")}}
	defer c.nats.stop()
	for i, name := range []string{"a", "b", "c"} {
		gdir := filepath.Join(dir, name)
		_ = os.MkdirAll(gdir, 0o755)
		port := freePort(t)
		g := &gateway{t: t, name: name, bin: bin, port: port, logf: filepath.Join(gdir, "gateway.log"),
			config: writeGatewayConfig(t, gdir, port, up.URL(), c.nats.url())}
		c.gws = append(c.gws, g)
		_ = i
	}
	for _, g := range c.gws {
		g.start()
	}
	defer func() {
		for _, g := range c.gws {
			g.kill()
		}
		if t.Failed() {
			for _, g := range c.gws {
				t.Logf("%s log:\n%s", g.name, g.tail())
			}
		}
	}()
	proxyPort := freePort(t)
	startNginx(t, filepath.Join(dir), proxyPort, c.gws)
	c.proxy = fmt.Sprintf("http://127.0.0.1:%d", proxyPort)

	start := time.Now()
	t.Run("6 NATS down at start", c.natsDownAtStart)
	t.Run("1 one upstream subscription for three instances", c.oneSubscription)
	t.Run("2 resume on another instance", c.resumeElsewhere)
	t.Run("5 NATS restarted during streams", c.natsRestart)
	t.Run("3 kill -9 of the owner", c.killOwner)
	t.Run("4 rolling restart", c.rollingRestart)
	t.Logf("scenarios took %v", time.Since(start).Round(time.Millisecond))
}

// use makes t the test that helpers fail (each scenario is a subtest).
func (c *cluster) use(t *testing.T) {
	c.t = t
	c.nats.t = t
	for _, g := range c.gws {
		g.t = t
	}
}

// subscriptions is how many stockPricesChanged subscriptions the upstream has.
func (c *cluster) subscriptions() int { return c.up.Stats().ActiveByField["stockPricesChanged"] }

// owner is the gateway that runs the topic (-1 when none does).
func (c *cluster) owner() int {
	for i, g := range c.gws {
		if g.metric("fireboom_cluster_topics_owned") == 1 {
			return i
		}
	}
	return -1
}

func (c *cluster) eventually(what string, within time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clients opens n EventSources on base (each on its own connection).
func (c *cluster) clients(prefix string, n int, base func(i int) string) []*client {
	var cs []*client
	for i := range n {
		cs = append(cs, newClient(fmt.Sprintf("%s%d", prefix, i), base(i)+stream, ""))
	}
	c.t.Cleanup(func() {
		for _, cl := range cs {
			cl.close()
		}
	})
	return cs
}

// waitTicks waits until every client got past tick.
func (c *cluster) waitTicks(cs []*client, tick int, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		behind := 0
		for _, cl := range cs {
			if cl.lastTick() <= tick {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, cl := range cs {
				items, conns, stopped := cl.snapshot()
				c.t.Logf("%s: %d connections, stopped %q, last items %+v", cl.name, conns, stopped, items[max(0, len(items)-3):])
			}
			for _, g := range c.gws {
				c.t.Logf("%s: owns %v, streams %v", g.name, g.metric("fireboom_cluster_topics_owned"), g.metric("fireboom_upstream_subscriptions"))
			}
			c.t.Fatalf("%d clients not past tick %d after %v; upstream subscriptions %d", behind, tick, within, c.subscriptions())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verify checks each client: nothing lost outside a declared gap, no
// duplicate, still running; it returns the checks.
func (c *cluster) verify(cs []*client) []check {
	c.t.Helper()
	var ks []check
	for _, cl := range cs {
		items, conns, stopped := cl.snapshot()
		k := checkItems(items)
		c.t.Logf("%s: %v, %d connections", cl.name, k, conns)
		if k.lost != 0 || k.dups != 0 || stopped != "" {
			c.t.Errorf("%s: %v; stopped: %q; received %+v", cl.name, k, stopped, items)
		}
		ks = append(ks, k)
	}
	return ks
}

func (c *cluster) natsDownAtStart(t *testing.T) {
	c.use(t)
	for _, g := range c.gws {
		g.waitStatus("/health", http.StatusOK, 30*time.Second)
		code, body := get(g.base() + "/ready")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, `"reason":"cluster unavailable"`) {
			t.Errorf("%s /ready: %d %s", g.name, code, body)
		}
		resp, err := http.Get(g.base() + stream)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s stream: %d, Retry-After %q", g.name, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if code, body := get(g.base() + "/operations/stocks/Price?symbol=ACME"); code != http.StatusOK || !strings.Contains(body, `"symbol":"ACME"`) {
			t.Errorf("%s query: %d %s", g.name, code, body)
		}
	}
	c.nats.start()
	for _, g := range c.gws {
		g.waitStatus("/ready", http.StatusOK, 10*time.Second)
	}
}

func (c *cluster) oneSubscription(t *testing.T) {
	c.use(t)
	cs := c.clients("spread", 6, func(i int) string { return c.gws[i%3].base() })
	tick := -1
	c.eventually("every client's first event", 10*time.Second, func() bool {
		for _, cl := range cs {
			if cl.lastTick() < 0 {
				return false
			}
			tick = max(tick, cl.lastTick())
		}
		return true
	})
	c.waitTicks(cs, tick+20, 10*time.Second)
	if n := c.subscriptions(); n != 1 {
		t.Errorf("%d upstream subscriptions for clients on three instances, want 1", n)
	}
	var sum float64
	for _, g := range c.gws {
		sum += g.metric("fireboom_upstream_subscriptions")
	}
	if sum != 1 {
		t.Errorf("fireboom_upstream_subscriptions summed over instances: %v, want 1", sum)
	}
	ks := c.verify(cs)
	// The same tick has the same id on every instance.
	ids := map[int]string{}
	for _, cl := range cs {
		items, _, _ := cl.snapshot()
		for _, it := range items {
			if it.gap != "" {
				t.Errorf("%s: a gap %q", cl.name, it.gap)
			} else if id, ok := ids[it.tick]; ok && id != it.id {
				t.Errorf("tick %d: id %q on one client, %q on %s", it.tick, id, it.id, cl.name)
			} else {
				ids[it.tick] = it.id
			}
		}
	}
	_ = ks
	for _, cl := range cs {
		cl.close()
	}
	// The last instance to lose interest completes the subscription.
	c.eventually("the upstream subscription completed", 5*time.Second, func() bool { return c.subscriptions() == 0 })
}

func (c *cluster) resumeElsewhere(t *testing.T) {
	c.use(t)
	// Another client keeps the topic running meanwhile.
	keep := c.clients("keep", 1, func(int) string { return c.gws[2].base() })
	a := newClient("reader", c.gws[0].base()+stream, "")
	c.waitTicks([]*client{a}, a.lastTick()+10, 10*time.Second)
	a.close()
	first, _, _ := a.snapshot()
	last := first[len(first)-1]
	c.waitTicks(keep, last.tick+15, 10*time.Second) // it misses about 15
	b := newClient("resumer", c.gws[1].base()+stream, last.id)
	defer b.close()
	c.waitTicks([]*client{b}, last.tick+25, 10*time.Second)
	items, conns, _ := b.snapshot()
	for i, it := range items {
		if it.gap != "" || it.tick != last.tick+1+i {
			t.Fatalf("after tick %d the resume got %+v at %d, want tick %d", last.tick, it, i, last.tick+1+i)
		}
	}
	if conns != 1 {
		t.Errorf("%d connections", conns)
	}
	t.Logf("resumed on b after tick %d: %d events, each once, in order", last.tick, len(items))
	c.verify(keep)
}

func (c *cluster) natsRestart(t *testing.T) {
	c.use(t)
	cs := c.clients("nats", 6, func(int) string { return c.proxy })
	c.waitTicks(cs, c.up.Stats().ActiveSubscriptions, 10*time.Second)
	c.waitTicks(cs, cs[0].lastTick()+5, 10*time.Second)
	before := cs[0].lastTick()
	c.nats.stop()
	time.Sleep(time.Second)
	c.nats.start()
	c.waitTicks(cs, before+60, 15*time.Second)
	for _, k := range c.verify(cs) {
		if len(k.gaps) != 0 {
			t.Errorf("gaps %v across a short NATS outage, want none", k.gaps)
		}
	}
	for _, cl := range cs {
		if _, conns, _ := cl.snapshot(); conns != 1 {
			t.Errorf("%s reconnected %d times", cl.name, conns-1)
		}
	}
}

func (c *cluster) killOwner(t *testing.T) {
	c.use(t)
	cs := c.clients("kill", 6, func(int) string { return c.proxy })
	c.waitTicks(cs, cs[0].lastTick()+5, 10*time.Second)
	var own int
	c.eventually("an owner", 5*time.Second, func() bool { own = c.owner(); return own >= 0 })
	killed := time.Now()
	c.gws[own].kill()
	c.eventually("a takeover", leaseTTL+3*time.Second, func() bool { return c.owner() >= 0 })
	took := time.Since(killed)
	t.Logf("%s killed; taken over after %v", c.gws[own].name, took.Round(time.Millisecond))
	if took > leaseTTL+time.Second+500*time.Millisecond { // + the metric polling
		t.Errorf("takeover after %v, want within leaseTTL + 1s", took)
	}
	tick := 0
	for _, cl := range cs {
		tick = max(tick, cl.lastTick())
	}
	c.waitTicks(cs, tick+20, 15*time.Second)
	ks := c.verify(cs)
	for i, cl := range cs {
		_, conns, _ := cl.snapshot()
		switch {
		case conns == 1 && ks[i].gaps["failover"] != 1:
			t.Errorf("%s stayed connected with gaps %v, want one failover gap", cl.name, ks[i].gaps)
		case conns > 1 && ks[i].gaps["failover"] > 1:
			t.Errorf("%s came back with gaps %v", cl.name, ks[i].gaps)
		}
	}
	c.gws[own].start()
	c.gws[own].waitStatus("/ready", http.StatusOK, 15*time.Second)
}

func (c *cluster) rollingRestart(t *testing.T) {
	c.use(t)
	cs := c.clients("roll", 9, func(int) string { return c.proxy })
	c.waitTicks(cs, cs[0].lastTick()+5, 10*time.Second)
	for _, g := range c.gws {
		g.term()
		g.start()
		g.waitStatus("/ready", http.StatusOK, 15*time.Second)
		time.Sleep(500 * time.Millisecond)
	}
	tick := 0
	for _, cl := range cs {
		tick = max(tick, cl.lastTick())
	}
	c.waitTicks(cs, tick+20, 15*time.Second)
	total := check{gaps: map[string]int{}}
	for _, k := range c.verify(cs) {
		total.events += k.events
		total.lost += k.lost
		total.dups += k.dups
		for r, n := range k.gaps {
			total.gaps[r] += n
		}
	}
	t.Logf("rolling restart, %d clients: %v", len(cs), total)
	if c.subscriptions() != 1 {
		t.Errorf("%d upstream subscriptions after the restarts", c.subscriptions())
	}
}
