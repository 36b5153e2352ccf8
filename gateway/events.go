package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/operation"
	"github.com/fireboom/fireboom/source"
	"github.com/fireboom/fireboom/topic"
)

// The wiring of event sources (CONTRACT §10): newSources at start-up,
// serveEventSubscription for a @listen subscription (a topic like any
// other, whose source is the event source's stream), servePublish for a
// @publish mutation, eventError for every failure of either. /ready asks
// sources.Ready(); /metrics registers sources.Collector().

// serveEventSubscription streams a @listen subscription: identical
// requests (same source, channel, filter and selection) share one topic,
// so a message is filtered and shaped once, then fanned out.
func (g *Gateway) serveEventSubscription(w http.ResponseWriter, r *http.Request, c *call) {
	st, key, aerr := eventStream(g.sources, c.ep.Event, c.req.Variables)
	if aerr != nil {
		aerr.write(w)
		return
	}
	spec := topic.Spec{Kind: kindSource, Source: st, Replay: g.settings().Subscriptions.ReplayBuffer}
	if c.ep.dedup {
		spec.Key = key
	}
	g.openStream(w, r, c, spec, topic.JoinOptions{ReplayLast: c.ep.replayLast, LastEventID: lastEventID(r)})
}

// servePublish runs a @publish mutation: 200 with
// {"data":{"<field>":{"success":true}}} once the source took the payload.
func (g *Gateway) servePublish(w http.ResponseWriter, r *http.Request, c *call) {
	body, aerr := publishEvent(r.Context(), g.sources, c.ep.Event, c.req.Variables)
	if aerr != nil {
		if aerr.status >= 500 {
			g.log.Warn("publish failed", "operation", c.ep.Name, "code", aerr.Code)
		}
		aerr.write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// newSources starts the event sources of cfg, each connecting in the
// background; nil without any. Close it on shutdown, after the streams.
func newSources(cfg *config.Config, log *slog.Logger) (*source.Set, error) {
	if len(cfg.Sources) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(cfg.Sources))
	for name := range cfg.Sources {
		names = append(names, name)
	}
	sort.Strings(names)
	specs := make([]source.Spec, 0, len(names))
	for _, name := range names {
		s := cfg.Sources[name]
		specs = append(specs, source.Spec{Name: name, Kind: s.Kind(), URL: s.URL()})
	}
	return source.NewSet(specs, source.Options{ReconnectTimeout: cfg.Upstream.ReconnectTimeout.D(), Logger: log})
}

// eventStream binds a @listen subscription to the request's variables (as
// built for the upstream: coerced, claims injected): the source stream to
// hand to the topic layer, and the key under which identical requests
// share one topic. The error is an answer to give before any stream byte.
func eventStream(sources *source.Set, ev *operation.EventOp, vars json.RawMessage) (*source.Stream, string, *apiError) {
	r, src, apiErr := resolveEvent(sources, ev, vars)
	if apiErr != nil {
		return nil, "", apiErr
	}
	if err := src.CheckChannel(r.Channel, false); err != nil {
		return nil, "", eventError(err)
	}
	return src.Stream(r.Channel, r.Apply), "source\n" + r.Key, nil
}

// publishEvent runs a @publish mutation: the body of the 200 answer
// ({"data":{"<field>":{"success":true}}}) once the source accepted the
// payload, or the error answer.
func publishEvent(ctx context.Context, sources *source.Set, ev *operation.EventOp, vars json.RawMessage) ([]byte, *apiError) {
	r, src, apiErr := resolveEvent(sources, ev, vars)
	if apiErr != nil {
		return nil, apiErr
	}
	if err := src.Publish(ctx, r.Channel, r.Payload); err != nil {
		return nil, eventError(err)
	}
	return r.Result, nil
}

func resolveEvent(sources *source.Set, ev *operation.EventOp, vars json.RawMessage) (*operation.Resolved, *source.Source, *apiError) {
	src := sources.Get(ev.Source)
	if src == nil {
		// The schema checked the name against the config it was built
		// with; a reload may have dropped the source since.
		return nil, nil, newError(http.StatusBadGateway, codeUnavailable, "the event source "+ev.Source+" is not configured")
	}
	r, err := ev.Resolve(vars)
	if err != nil {
		return nil, nil, eventError(err)
	}
	return r, src, nil
}

// eventError maps an error of an event operation to its answer: a bad
// variable 400, an unusable channel 400, a payload over the source's
// limit 413, a source that is down or refused 502. The message names the
// source's trouble, never the server's address or the payload.
func eventError(err error) *apiError {
	var ie *operation.InputError
	switch {
	case errors.As(err, &ie):
		e := newError(http.StatusBadRequest, codeInput, ie.Message)
		e.Errors = ie.Errors
		return e
	case errors.Is(err, source.ErrInvalidChannel):
		return newError(http.StatusBadRequest, codeInput, "the variables make a channel or subject the event source cannot use")
	case errors.Is(err, source.ErrPayloadTooLarge):
		return newError(http.StatusRequestEntityTooLarge, codeTooLarge, "the payload is larger than the event source takes")
	case errors.Is(err, source.ErrUnavailable):
		return newError(http.StatusBadGateway, codeUnavailable, "the event source is unavailable")
	}
	return newError(http.StatusInternalServerError, codeInternal, "the event operation failed")
}
