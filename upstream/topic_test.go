package upstream

import (
	"context"
	"sync"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

// The tests of this package watch subscriptions through the topic layer,
// as the gateway does: Subscribe joins (or starts) the topic of a
// Subscription of h.

// SubscribeOptions are one test client's topic options.
type SubscribeOptions struct {
	Dedup       bool // share the topic of an identical subscription
	ReplayLast  bool
	LastEventID string
	Queue       event.Limits
}

// testTopics is the topic layer over one upstream hub in a test.
type testTopics struct {
	*topic.Hub
	replay int // Spec.Replay of the topics it starts
}

var (
	topicsMu sync.Mutex
	topics   = map[*Hub]*testTopics{}
)

// setTopics makes the topic hub over h with cfg and ring size replay;
// without it, topicsOf makes one with defaults on first use.
func setTopics(h *Hub, cfg topic.Config, replay int) {
	topicsMu.Lock()
	defer topicsMu.Unlock()
	topics[h] = &testTopics{topic.NewHub(cfg), replay}
}

// topicsOf is the topic hub over h; closeTopics closes it (before h
// closes, as the gateway does).
func topicsOf(h *Hub) *testTopics {
	topicsMu.Lock()
	defer topicsMu.Unlock()
	th := topics[h]
	if th == nil {
		th = &testTopics{Hub: topic.NewHub(topic.Config{})}
		topics[h] = th
	}
	return th
}

func closeTopics(h *Hub) {
	topicsMu.Lock()
	th := topics[h]
	delete(topics, h)
	topicsMu.Unlock()
	if th != nil {
		th.Close()
	}
}

// topicStats are the topic counters over h.
func topicStats(h *Hub) topic.Stats { return topicsOf(h).Stats("") }

// Subscribe joins req's topic as the gateway does.
func (h *Hub) Subscribe(ctx context.Context, req Request, opt SubscribeOptions) (*topic.Client, error) {
	src, err := h.Subscription(req)
	if err != nil {
		return nil, err
	}
	th := topicsOf(h)
	spec := topic.Spec{Kind: "subscription", Source: src, Replay: th.replay}
	if opt.Dedup {
		spec.Key = src.Key()
	}
	return th.Join(ctx, spec, topic.JoinOptions{
		ReplayLast: opt.ReplayLast, LastEventID: opt.LastEventID, Queue: opt.Queue,
	})
}
