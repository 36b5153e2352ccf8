package demo

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// maxMessages bounds the chat history; the oldest messages are forgotten.
	maxMessages = 10000
	// chatFeedSize bounds the messages waiting for one slow subscriber.
	chatFeedSize = 4096
)

// chat stores the messages of every room and publishes new ones to the
// messageCreated subscribers of their room.
type chat struct {
	mu       sync.Mutex
	nextID   int
	messages []*Message // posting order; shared read-only with readers
	subs     map[string]map[*feed[*Message]]struct{}
}

func newChat() *chat {
	return &chat{subs: map[string]map[*feed[*Message]]struct{}{}}
}

// post stores a message and queues it for every subscriber of its room. It
// returns the message and how many subscribers had to drop it.
func (c *chat) post(room, content, author string, now time.Time) (*Message, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	m := &Message{
		ID:        strconv.Itoa(c.nextID),
		Room:      room,
		Content:   content,
		Author:    author,
		CreatedAt: now.UTC().Format(time.RFC3339Nano),
	}
	if len(c.messages) >= maxMessages {
		c.messages = slices.Delete(c.messages, 0, len(c.messages)-maxMessages+1)
	}
	c.messages = append(c.messages, m)
	drops := 0
	for f := range c.subs[room] {
		if !f.push(m) {
			drops++
		}
	}
	return m, drops
}

// subscribe registers a feed for room; the returned func unregisters it.
func (c *chat) subscribe(room string) (*feed[*Message], func()) {
	f := newFeed[*Message](chatFeedSize)
	c.mu.Lock()
	if c.subs[room] == nil {
		c.subs[room] = map[*feed[*Message]]struct{}{}
	}
	c.subs[room][f] = struct{}{}
	c.mu.Unlock()
	return f, func() {
		c.mu.Lock()
		delete(c.subs[room], f)
		if len(c.subs[room]) == 0 {
			delete(c.subs, room)
		}
		c.mu.Unlock()
	}
}

// list returns the messages accepted by keep, oldest first.
func (c *chat) list(keep func(*Message) bool) []*Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []*Message{}
	for _, m := range c.messages {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// query implements Query.messages.
func (c *chat) query(room string, filter *MessageFilter, sort *Sort, limit *int) []*Message {
	out := c.list(func(m *Message) bool {
		if m.Room != room {
			return false
		}
		if filter != nil {
			if filter.Author != nil && m.Author != *filter.Author {
				return false
			}
			if filter.Contains != nil && !strings.Contains(m.Content, *filter.Contains) {
				return false
			}
		}
		return true
	})
	if sort != nil && *sort == SortNewest {
		slices.Reverse(out)
	}
	if limit != nil && *limit > 0 && len(out) > *limit {
		out = out[:*limit]
	}
	return out
}

// rooms returns every room with its message count, sorted by name.
func (c *chat) rooms() []*Room {
	c.mu.Lock()
	counts := map[string]int{}
	for _, m := range c.messages {
		counts[m.Room]++
	}
	c.mu.Unlock()
	out := make([]*Room, 0, len(counts))
	for name, n := range counts {
		out = append(out, &Room{Name: name, MessageCount: n})
	}
	slices.SortFunc(out, func(a, b *Room) int { return strings.Compare(a.Name, b.Name) })
	return out
}
