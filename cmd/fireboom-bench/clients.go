package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gosse "github.com/tmaxmax/go-sse"

	"github.com/fireboom/fireboom/auth"
)

// workerConfig is one worker process's share of the clients.
type workerConfig struct {
	addr     string        // gateway host:port (loopback)
	path     string        // request target; "{i}" becomes the client's index
	bearer   string        // Authorization: Bearer token, "" for none
	n        int           // clients in this worker
	first    int           // global index of its first client
	ramp     float64       // clients per second (this worker's share)
	sources  int           // source addresses 127.0.0.2 .. 127.0.0.(1+sources)
	lifetime time.Duration // the worker exits after this long, whatever happens
	users    int           // > 0: client i is user i%users, with a token of its own
	secret   string        // signs the users' tokens
}

// worker runs the clients of one process. Counters are atomics: a
// client's goroutine updates them on every event.
type worker struct {
	cfg     workerConfig
	tokens  []string    // per user, when cfg.users > 0
	holding atomic.Bool // count into the hold-phase counters

	connected, failed, ended     atomic.Int64
	events, lost, dups           atomic.Int64 // during the hold
	allEvents, allLost, allDups  atomic.Int64 // since the start
	gaps, errEvents              atomic.Int64
	slowCut, doneEvents, badData atomic.Int64
	lat                          hist
	h2                           *h2Pool // -http2: the HTTP/2 connections (http2.go); nil for HTTP/1.1

	mu       sync.Mutex
	failures map[string]int64 // reason → clients
	endings  map[string]int64
	sample   string // one failure message, for the report
}

// workerMsg is one line a worker writes on stdout (JSON).
type workerMsg struct {
	Type      string           `json:"type"` // "progress" or "report"
	Connected int64            `json:"connected"`
	Failed    int64            `json:"failed"`
	Ended     int64            `json:"ended"`
	Events    int64            `json:"events,omitempty"`
	Lost      int64            `json:"lost,omitempty"`
	Dups      int64            `json:"dups,omitempty"`
	AllEvents int64            `json:"allEvents,omitempty"`
	AllLost   int64            `json:"allLost,omitempty"`
	AllDups   int64            `json:"allDups,omitempty"`
	Gaps      int64            `json:"gaps,omitempty"`
	Errors    int64            `json:"errors,omitempty"`
	SlowCut   int64            `json:"slowCut,omitempty"`
	Done      int64            `json:"done,omitempty"`
	BadData   int64            `json:"badData,omitempty"`
	Failures  map[string]int64 `json:"failures,omitempty"`
	Endings   map[string]int64 `json:"endings,omitempty"`
	Sample    string           `json:"sample,omitempty"`
	Hist      map[int]int64    `json:"hist,omitempty"`
	MaxNS     int64            `json:"maxNs,omitempty"`
}

// runWorker is "fireboom-bench clients": it opens its clients, prints
// progress lines, and obeys the commands on stdin ("hold", "report",
// "quit"; end of input quits too).
func runWorker(args []string, stdin io.Reader, stdout io.Writer) error {
	var c workerConfig
	fs := flag.NewFlagSet("clients", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "", "gateway host:port")
	fs.StringVar(&c.path, "path", "", "request target")
	fs.StringVar(&c.bearer, "bearer", "", "bearer token")
	fs.IntVar(&c.n, "n", 0, "clients")
	fs.IntVar(&c.first, "first", 0, "index of the first client")
	fs.Float64Var(&c.ramp, "ramp", 1000, "clients per second")
	fs.IntVar(&c.sources, "sources", 16, "source addresses")
	fs.DurationVar(&c.lifetime, "lifetime", 10*time.Minute, "exit after this long")
	fs.IntVar(&c.users, "users", 0, "clients are users u0..u<N-1>, round-robin, each with a token")
	fs.StringVar(&c.secret, "jwt-secret", benchSecret, "HMAC secret of the users' tokens")
	cpuProfile := fs.String("cpuprofile", "", "write this worker's CPU profile over the hold to FILE")
	h2 := h2WorkerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(c.addr); err != nil {
		return err
	}
	if c.n <= 0 || c.ramp <= 0 || c.sources < 1 || c.sources > 250 || !strings.HasPrefix(c.path, "/") {
		return errors.New("clients: bad flags")
	}
	// The clients allocate little per event; a lazier GC leaves the CPU
	// to the gateway.
	debug.SetGCPercent(400)
	w := &worker{cfg: c, failures: map[string]int64{}, endings: map[string]int64{}}
	var err error
	if w.h2, err = h2.pool(c); err != nil {
		return err
	}
	for k := range c.users {
		tok, err := auth.Mint(auth.Config{Secret: c.secret}, benchUser(k), nil, nil, c.lifetime+time.Hour)
		if err != nil {
			return err
		}
		w.tokens = append(w.tokens, tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.lifetime)
	defer cancel()

	out := json.NewEncoder(stdout)
	var outMu sync.Mutex
	emit := func(m workerMsg) {
		outMu.Lock()
		_ = out.Encode(m)
		outMu.Unlock()
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // clients, ramped
		defer wg.Done()
		w.rampUp(ctx)
	}()
	go func() { // progress
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				emit(w.progress())
			}
		}
	}()
	cmds := make(chan string)
	go func() { // stdin: not waited for, it may block in Read until exit
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			cmds <- strings.TrimSpace(sc.Text())
		}
		close(cmds)
	}()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case cmd, ok := <-cmds:
			switch {
			case !ok || cmd == "quit":
				break loop
			case cmd == "hold":
				w.startHold()
				if *cpuProfile != "" {
					if f, err := os.Create(*cpuProfile); err == nil {
						defer f.Close()
						if pprof.StartCPUProfile(f) == nil {
							defer pprof.StopCPUProfile()
						}
					}
				}
			case cmd == "report":
				w.holding.Store(false)
				pprof.StopCPUProfile()
				emit(w.report())
			}
		}
	}
	cancel()
	wg.Wait()
	if w.h2 != nil {
		w.h2.close()
	}
	return nil
}

// checkLoopback refuses any target that is not a loopback address.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s is not a loopback address: the load tool only targets loopback", addr)
	}
	return nil
}

func (w *worker) startHold() {
	w.events.Store(0)
	w.lost.Store(0)
	w.dups.Store(0)
	w.lat.reset()
	w.holding.Store(true)
}

func (w *worker) progress() workerMsg {
	return workerMsg{Type: "progress", Connected: w.connected.Load(), Failed: w.failed.Load(), Ended: w.ended.Load()}
}

func (w *worker) report() workerMsg {
	m := w.progress()
	m.Type = "report"
	m.Events, m.Lost, m.Dups = w.events.Load(), w.lost.Load(), w.dups.Load()
	m.AllEvents, m.AllLost, m.AllDups = w.allEvents.Load(), w.allLost.Load(), w.allDups.Load()
	m.Gaps, m.Errors = w.gaps.Load(), w.errEvents.Load()
	m.SlowCut, m.Done, m.BadData = w.slowCut.Load(), w.doneEvents.Load(), w.badData.Load()
	m.Hist, m.MaxNS = w.lat.snapshot()
	w.mu.Lock()
	m.Failures = copyMap(w.failures)
	m.Endings = copyMap(w.endings)
	m.Sample = w.sample
	w.mu.Unlock()
	return m
}

func copyMap(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// rampUp starts the clients at cfg.ramp per second and waits for all of
// them to finish (they finish when ctx ends).
func (w *worker) rampUp(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for k := 0; k < w.cfg.n; {
		due := min(int(time.Since(start).Seconds()*w.cfg.ramp)+1, w.cfg.n)
		for ; k < due; k++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				w.client(ctx, w.cfg.first+i)
			}(k)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *worker) fail(reason string, err error) {
	w.failed.Add(1)
	w.mu.Lock()
	w.failures[reason]++
	if w.sample == "" && err != nil {
		w.sample = err.Error()
	}
	w.mu.Unlock()
}

func (w *worker) end(reason string) {
	w.ended.Add(1)
	w.mu.Lock()
	w.endings[reason]++
	w.mu.Unlock()
}

// client is one SSE client: dial from its source address, send the
// request, read the stream until ctx ends or the server ends it.
func (w *worker) client(ctx context.Context, i int) {
	if w.h2 != nil {
		w.clientH2(ctx, i)
		return
	}
	src := net.IPv4(127, 0, 0, byte(2+i%w.cfg.sources))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", w.cfg.addr)
	if err != nil {
		if ctx.Err() == nil {
			w.fail("dial", err)
		}
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	target := strings.ReplaceAll(w.cfg.path, "{i}", strconv.Itoa(i))
	req := "GET " + target + " HTTP/1.1\r\nHost: " + w.cfg.addr + "\r\nAccept: text/event-stream\r\n"
	bearer := w.cfg.bearer
	if len(w.tokens) > 0 {
		bearer = w.tokens[i%len(w.tokens)]
	}
	if bearer != "" {
		req += "Authorization: Bearer " + bearer + "\r\n"
	}
	req += "\r\n"
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		if ctx.Err() == nil {
			w.fail("write", err)
		}
		return
	}
	br := bufio.NewReaderSize(conn, 4<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		if ctx.Err() == nil {
			w.fail("response", err)
		}
		return
	}
	if resp.StatusCode != http.StatusOK {
		w.fail(strconv.Itoa(resp.StatusCode), fmt.Errorf("status %s", resp.Status))
		return
	}
	_ = conn.SetDeadline(time.Time{})
	w.connected.Add(1)
	reason := w.read(resp.Body)
	if ctx.Err() == nil {
		w.connected.Add(-1)
		w.end(reason)
	}
}

// read parses the event stream with go-sse and returns why it ended.
func (w *worker) read(body io.Reader) string {
	var st sseState
	for e, err := range gosse.Read(body, &gosse.ReadConfig{MaxEventSize: 1 << 20}) {
		if err != nil {
			return st.ending("read-error")
		}
		w.event(&st, e)
	}
	return st.ending("eof")
}

// sseState is one client's sequence tracking.
type sseState struct {
	lastSeq int64 // the newest seq seen; 0 before the first
	done    bool
	cut     bool
}

// ending is why a stream ended, given how its reading ended.
func (st *sseState) ending(read string) string {
	switch {
	case st.done:
		return "done"
	case st.cut:
		return "slow-consumer"
	}
	return read
}

// event handles one event of the stream.
func (w *worker) event(st *sseState, e gosse.Event) {
	switch e.Type {
	case "":
		w.data(st, []byte(e.Data))
	case "gap":
		w.gaps.Add(1)
	case "done":
		w.doneEvents.Add(1)
		st.done = true
	}
}

func (w *worker) data(st *sseState, data []byte) {
	if indexOf(data, `"errors"`) >= 0 {
		w.errEvents.Add(1)
		if indexOf(data, `"SlowConsumer"`) >= 0 {
			w.slowCut.Add(1)
			st.cut = true
		}
		return
	}
	now := time.Now()
	seq, okSeq := intAfter(data, `"seq":`)
	pub, okPub := timeAfter(data, `"publishedAt":"`)
	if !okSeq {
		// An idle stream's event (a posted message) or something unknown:
		// not part of the ticker's sequence.
		if !okPub {
			w.badData.Add(1)
		}
		return
	}
	holding := w.holding.Load()
	w.allEvents.Add(1)
	if holding {
		w.events.Add(1)
	}
	if st.lastSeq > 0 {
		switch {
		case seq > st.lastSeq+1:
			w.allLost.Add(seq - st.lastSeq - 1)
			if holding {
				w.lost.Add(seq - st.lastSeq - 1)
			}
		case seq <= st.lastSeq:
			w.allDups.Add(1)
			if holding {
				w.dups.Add(1)
			}
		}
	}
	st.lastSeq = max(st.lastSeq, seq)
	if holding && okPub {
		w.lat.record(now.Sub(pub))
	}
}

// indexOf is bytes.Index for a string needle, without converting.
func indexOf(b []byte, s string) int {
	n := len(s)
	for i := 0; i+n <= len(b); i++ {
		if b[i] == s[0] && string(b[i:i+n]) == s {
			return i
		}
	}
	return -1
}

// intAfter parses the non-negative integer right after key.
func intAfter(b []byte, key string) (int64, bool) {
	i := indexOf(b, key)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	var v int64
	n := 0
	for ; n < len(b) && b[n] >= '0' && b[n] <= '9'; n++ {
		v = v*10 + int64(b[n]-'0')
	}
	return v, n > 0
}

// timeAfter parses the RFC 3339 UTC time ("2006-01-02T15:04:05.999999999Z")
// right after key, without allocating.
func timeAfter(b []byte, key string) (time.Time, bool) {
	i := indexOf(b, key)
	if i < 0 {
		return time.Time{}, false
	}
	return parseUTC(b[i+len(key):])
}

func parseUTC(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		v := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	h, ok4 := num(b[11:13])
	mi, ok5 := num(b[14:16])
	s, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	ns, k := 0, 19
	if b[k] == '.' {
		k++
		digits := 0
		for ; k < len(b) && b[k] >= '0' && b[k] <= '9'; k++ {
			if digits < 9 {
				ns = ns*10 + int(b[k]-'0')
				digits++
			}
		}
		for ; digits < 9; digits++ {
			ns *= 10
		}
	}
	if k >= len(b) || b[k] != 'Z' {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC), true
}
