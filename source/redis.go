package source

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// redisEngine subscribes on one pub/sub connection and publishes on a
// small pool of its own: a connection in subscribed mode cannot PUBLISH.
type redisEngine struct {
	client *redis.Client
}

func newRedis(name, url string) (*redisEngine, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	if opt.ClientName == "" {
		opt.ClientName = clientName(name) // CLIENT LIST says whose it is
	}
	opt.DialTimeout = dialTimeout
	// A PUBLISH that may have reached the server is not sent again: a
	// client would see the event twice.
	opt.MaxRetries = -1
	opt.PoolSize = 4
	opt.MinIdleConns = 0
	return &redisEngine{client: redis.NewClient(opt)}, nil
}

func (e *redisEngine) check(ch string, _ bool) error {
	if ch == "" {
		return errors.New("empty channel")
	}
	return nil
}

func (e *redisEngine) maxPayload() int      { return 0 }
func (e *redisEngine) publishesAlone() bool { return true }
func (e *redisEngine) close()               { _ = e.client.Close() }

func (e *redisEngine) publish(ctx context.Context, _ session, ch string, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	return e.client.Publish(ctx, ch, payload).Err()
}

func (e *redisEngine) dial(ctx context.Context, deliver func(string, []byte), _ func(string)) (session, error) {
	ps := e.client.Subscribe(ctx)
	// Subscribe connects lazily; a PING makes it connect now.
	if err := ps.Ping(ctx); err != nil {
		_ = ps.Close()
		return nil, err
	}
	s := &redisSession{ps: ps, deliver: deliver, waiting: map[string][]chan struct{}{}, doneCh: make(chan struct{})}
	go s.read()
	return s, nil
}

// redisSession is one pub/sub connection and its reader. go-redis would
// reconnect a PubSub by itself on the next Receive; the reader stops at
// the first error instead and the Source dials a new one.
type redisSession struct {
	ps      *redis.PubSub
	deliver func(string, []byte)

	mu      sync.Mutex
	waiting map[string][]chan struct{} // SUBSCRIBE confirmations awaited

	doneCh  chan struct{}
	lostErr error // set before doneCh is closed
}

func (s *redisSession) read() {
	defer close(s.doneCh)
	for {
		msg, err := s.ps.Receive(context.Background())
		if err != nil {
			s.lostErr = err
			return
		}
		switch m := msg.(type) {
		case *redis.Message:
			s.deliver(m.Channel, []byte(m.Payload))
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				s.mu.Lock()
				for _, w := range s.waiting[m.Channel] {
					close(w)
				}
				delete(s.waiting, m.Channel)
				s.mu.Unlock()
			}
		}
	}
}

// listen subscribes and waits for the server's confirmation of each
// channel, so that a message published after it returns is received.
func (s *redisSession) listen(ctx context.Context, chs []string) error {
	ws := make([]chan struct{}, len(chs))
	s.mu.Lock()
	for i, ch := range chs {
		ws[i] = make(chan struct{})
		s.waiting[ch] = append(s.waiting[ch], ws[i])
	}
	s.mu.Unlock()
	if err := s.ps.Subscribe(ctx, chs...); err != nil {
		return err
	}
	for _, w := range ws {
		select {
		case <-w:
		case <-s.doneCh:
			return fmt.Errorf("connection lost: %w", s.lostErr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *redisSession) unlisten(ctx context.Context, chs []string) error {
	return s.ps.Unsubscribe(ctx, chs...)
}

func (s *redisSession) done() <-chan struct{} { return s.doneCh }
func (s *redisSession) err() error            { <-s.doneCh; return s.lostErr }

func (s *redisSession) close() {
	_ = s.ps.Close()
	<-s.doneCh
}
