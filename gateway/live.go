package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fireboom/fireboom/live"
	"github.com/fireboom/fireboom/operation"
	"github.com/fireboom/fireboom/sse"
	"github.com/fireboom/fireboom/topic"
	"github.com/fireboom/fireboom/upstream"
)

// serveLive streams a query as a live query (?wg_live=true): the first
// result at once, then each changed result, from a poller shared by every
// client whose upstream request is identical (one topic). Auth, limits,
// modes, heartbeats, expiry and ids are those of subscriptions.
func (g *Gateway) serveLive(w http.ResponseWriter, r *http.Request, c *call) {
	if c.ep.Kind != operation.Query {
		inputError("/wg_live", "wg_live=true is for queries; "+c.ep.Name+" is a "+string(c.ep.Kind), "for queries only").write(w)
		return
	}
	if c.ep.live <= 0 {
		inputError("/wg_live", c.ep.Name+` is not a live query: set "operations": {"`+c.ep.Name+`": {"liveInterval": "2s"}} in fireboom.json`, "not a live query").write(w)
		return
	}
	req := c.req
	p, err := live.NewPoller(live.Query{
		Interval: c.ep.live,
		Fetch: func(ctx context.Context) ([]byte, error) {
			body, _, err := g.client.Do(ctx, req)
			return body, err
		},
		OnPoll: func(outcome string) { g.met.livePolls.WithLabelValues(outcome).Inc() },
	})
	if err != nil {
		g.log.Error("live query could not be prepared", "operation", c.ep.Name, "err", err)
		newError(http.StatusInternalServerError, codeInternal, "the live query could not be prepared").write(w)
		return
	}
	opt := topic.JoinOptions{Patch: c.patch}
	if c.mode != sse.Once && c.mode != sse.OnceSSE {
		// Once wants a result, even when the client held the newest one.
		opt.LastEventID = lastEventID(r)
	}
	spec := topic.Spec{Key: liveKey(req, c.ep.live), Kind: kindLive, Source: p,
		Replay: liveReplay, State: true, Diff: live.Diff}
	g.openStream(w, r, c, spec, opt)
}

// liveReplay is how many results a live query keeps for resume: its
// results are states, so a few patches back are all a resume can use.
const liveReplay = 16

// liveKey is what makes two live queries one: the interval and exactly
// what is sent upstream (headers with sorted names, operation, document,
// variables with sorted keys). It holds secrets: never log it.
func liveKey(req upstream.Request, interval time.Duration) string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(int64(interval), 10))
	b.WriteByte(0)
	names := make([]string, 0, len(req.Header))
	for k, v := range req.Header {
		if len(v) > 0 {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		b.WriteString(http.CanonicalHeaderKey(k))
		for _, v := range req.Header[k] {
			b.WriteByte(1)
			b.WriteString(v)
		}
		b.WriteByte(2)
	}
	b.WriteByte(0)
	b.WriteString(req.OperationName)
	b.WriteByte(0)
	b.WriteString(req.Query)
	b.WriteByte(0)
	b.Write(canonicalJSON(req.Variables))
	return b.String()
}

// canonicalJSON re-encodes a JSON value with sorted object keys and numbers
// as written, so that equal variables give equal keys; input that does not
// decode is returned as is.
func canonicalJSON(raw json.RawMessage) []byte {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return raw
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}
