package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/sse"
	"github.com/fireboom/fireboom/topic"
	"github.com/fireboom/fireboom/upstream"
)

// streamLimits counts open streams gateway-wide and per identity.
type streamLimits struct {
	mu    sync.Mutex
	total int
	per   map[string]int
}

// admitStream reserves a stream slot or answers 503 (gateway full) or 429
// (this identity has too many), both with Retry-After. The returned
// release must be called when the stream ends.
func (g *Gateway) admitStream(r *http.Request, id *auth.Identity) (release func(), _ *apiError) {
	s := g.settings().Subscriptions
	key := "ip:" + g.proxies.clientIP(r)
	if id != nil && id.Subject != "" {
		key = "sub:" + id.Subject
	}
	l := &g.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.MaxStreams > 0 && l.total >= s.MaxStreams {
		g.met.rejected.WithLabelValues("gateway").Inc()
		return nil, newError(http.StatusServiceUnavailable, codeTooManyStreams,
			"the gateway holds as many streams as it may; try again shortly").with("Retry-After", "5")
	}
	if s.MaxStreamsPerIdentity > 0 && l.per[key] >= s.MaxStreamsPerIdentity {
		g.met.rejected.WithLabelValues("identity").Inc()
		return nil, newError(http.StatusTooManyRequests, codeTooManyStreams,
			"too many open streams for this identity (limit "+strconv.Itoa(s.MaxStreamsPerIdentity)+")").with("Retry-After", "5")
	}
	if l.per == nil {
		l.per = map[string]int{}
	}
	l.total++
	l.per[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.total--
			if l.per[key]--; l.per[key] <= 0 {
				delete(l.per, key)
			}
			l.mu.Unlock()
		})
	}, nil
}

// openStream does what every stream does before its first byte: reserve a
// slot (admitStream), join the topic within 15 s, and answer a join that
// failed with a status (503 shutting down or at the upstream connection
// limit, 502 otherwise). Then it streams (streamTo) in c.mode. A client
// whose stream the gateway ended and which is expected back at once (the
// lifetime cap, a slow-consumer cut-off) is suspended, not closed: the
// topic waits for its resume.
func (g *Gateway) openStream(w http.ResponseWriter, r *http.Request, c *call, spec topic.Spec, opt topic.JoinOptions) {
	release, aerr := g.admitStream(r, c.id)
	if aerr != nil {
		aerr.write(w)
		return
	}
	handedOff := false
	defer func() {
		if !handedOff {
			release()
		}
	}()
	opt.Queue = g.queueLimits()
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	cl, err := g.topics.Join(ctx, spec, opt)
	cancel()
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		g.log.Warn("stream could not start", "operation", c.ep.Name, "err", err)
		switch {
		case errors.Is(err, upstream.ErrTooManyConnections):
			newError(http.StatusServiceUnavailable, codeTooManyStreams, "the gateway's upstream connection limit is reached").
				with("Retry-After", "5").write(w)
		case errors.Is(err, topic.ErrUnavailable):
			newError(http.StatusServiceUnavailable, codeShuttingDown, "the cluster is unavailable; try again shortly").with("Retry-After", "5").write(w)
		case errors.Is(err, upstream.ErrClosed), errors.Is(err, topic.ErrClosed):
			newError(http.StatusServiceUnavailable, codeShuttingDown, "the gateway is shutting down").with("Retry-After", "5").write(w)
		default:
			newError(http.StatusBadGateway, codeUnavailable, "the upstream could not be reached").write(w)
		}
		return
	}
	handedOff = true
	g.streamTo(w, r, c, cl.Queue(), func(reason string) {
		switch reason {
		case sse.ReasonLifetime, sse.ReasonSlowConsumer:
			cl.Suspend()
		default:
			cl.Close()
		}
		release()
	})
}

// streamTo writes one client's stream, counting it, and calls done with
// why it ended (an sse.Reason) once it has. On HTTP/1.1 that is usually
// after streamTo returned: once the headers are out, the stream goes on
// detached (see sse.Options.Detach), so that the handler returns and
// net/http frees what it holds per request; the gateway keeps track of it
// until it ended (addStream).
func (g *Gateway) streamTo(w http.ResponseWriter, r *http.Request, c *call, q *event.Queue, done func(reason string)) {
	set := g.settings().Subscriptions
	opt := sse.Options{
		Mode:         c.mode,
		Heartbeat:    set.Heartbeat.D(),
		WriteTimeout: set.WriteTimeout.D(),
		Shutdown:     g.shutdownCtx,
		MaxLifetime:  jitter(set.MaxLifetime.D()),
		OnEvent:      g.met.eventOut,
		Watcher:      g.watcher,
	}
	if c.id != nil {
		opt.ExpiresAt = g.auth.ValidUntil(c.id)
	}
	name, modeName := c.ep.Name, modeLabel(c.mode) // not c: a detached stream must not keep the request
	open := g.met.openStreams.WithLabelValues(name, modeName)
	open.Inc()
	g.streams.Add(1)
	// A reload that changes or removes the operation ends the stream
	// through q (see track).
	ts := g.track(c.ep, q)
	end := func(res sse.Result) {
		if by := g.untrack(ts); by != "" && res.Reason == sse.ReasonError {
			res.Reason = by
		}
		g.streams.Add(-1)
		open.Dec()
		g.met.streamEnds.WithLabelValues(res.Reason).Inc()
		level := g.log.Debug
		switch res.Reason {
		case "slow-consumer", "write-failed", "error":
			level = g.log.Warn
		}
		level("stream ended", "operation", name, "mode", modeName, "reason", res.Reason, "events", res.Events)
		done(res.Reason)
	}
	opt.Detach = func(abort func()) func(sse.Result) {
		ds := g.addStream(abort)
		if ds == nil {
			return nil
		}
		logLine := holdRequestLog(w)
		return func(res sse.Result) {
			defer g.removeStream(ds)
			if res.Reason == sse.ReasonPanic {
				g.log.Error("stream panicked", "operation", name, "panic", res.Err)
			}
			end(res)
			if logLine != nil {
				logLine(res.Bytes)
			}
		}
	}
	if res := sse.Serve(w, r, q, opt); res.Reason != sse.ReasonDetached {
		end(res)
	}
}

// detachedStream is a stream that outlived its handler: Close waits for
// it, and cuts it when it does not end in time.
type detachedStream struct{ abort func() }

// streamGrace is how long Close lets detached streams end on their own
// after BeginShutdown told them to (a client that stopped reading can hold
// its stream's last write); then their connections are cut.
const streamGrace = 2 * time.Second

// addStream registers a detached stream for Close; it returns nil once
// Close has begun.
func (g *Gateway) addStream(abort func()) *detachedStream {
	g.detachMu.Lock()
	defer g.detachMu.Unlock()
	if g.detachClosed {
		return nil
	}
	ds := &detachedStream{abort: abort}
	if g.detachedSet == nil {
		g.detachedSet = map[*detachedStream]struct{}{}
	}
	g.detachedSet[ds] = struct{}{}
	g.detached.Add(1)
	return ds
}

func (g *Gateway) removeStream(ds *detachedStream) {
	g.detachMu.Lock()
	delete(g.detachedSet, ds)
	g.detachMu.Unlock()
	g.detached.Done()
}

// waitStreams stops detaching streams and waits for the detached ones,
// which end at shutdown, cutting those still there after streamGrace.
func (g *Gateway) waitStreams() {
	g.detachMu.Lock()
	g.detachClosed = true
	g.detachMu.Unlock()
	done := make(chan struct{})
	go func() {
		g.detached.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(streamGrace):
	}
	g.detachMu.Lock()
	for ds := range g.detachedSet {
		ds.abort()
	}
	g.detachMu.Unlock()
	<-done
}

func modeLabel(m sse.Mode) string {
	switch m {
	case sse.SSE:
		return "sse"
	case sse.Once, sse.OnceSSE:
		return "once"
	}
	return "json"
}
