package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Limits of the countdown subscription's arguments.
const (
	MaxCountdownFrom     = 100000
	MaxCountdownInterval = 60000 // milliseconds
)

// resolver implements the generated ResolverRoot.
type resolver struct{ s *Server }

func (r *resolver) Query() QueryResolver               { return queryResolver{r.s} }
func (r *resolver) Mutation() MutationResolver         { return mutationResolver{r.s} }
func (r *resolver) Subscription() SubscriptionResolver { return subscriptionResolver{r.s} }

type queryResolver struct{ s *Server }

func (q queryResolver) Messages(_ context.Context, room string, filter *MessageFilter, sort *Sort, limit *int) ([]*Message, error) {
	return q.s.chat.query(room, filter, sort, limit), nil
}

func (q queryResolver) MyMessages(_ context.Context, author string) ([]*Message, error) {
	return q.s.chat.list(func(m *Message) bool { return m.Author == author }), nil
}

func (q queryResolver) Room(_ context.Context, name string) (*Room, error) {
	for _, r := range q.s.chat.rooms() {
		if r.Name == name {
			return r, nil
		}
	}
	return nil, nil
}

func (q queryResolver) Rooms(context.Context) ([]*Room, error) { return q.s.chat.rooms(), nil }

func (q queryResolver) StockPrice(_ context.Context, symbol string) (*StockPrice, error) {
	return q.s.ticker.price(symbol), nil
}

func (q queryResolver) ServerTime(context.Context) (string, error) {
	return q.s.now().UTC().Format(time.RFC3339Nano), nil
}

type mutationResolver struct{ s *Server }

func (m mutationResolver) PostMessage(_ context.Context, room, content string, author *string) (*Message, error) {
	a := "anonymous"
	if author != nil {
		a = *author
	}
	msg, drops := m.s.chat.post(room, content, a, m.s.now())
	m.s.countDrops(drops)
	return msg, nil
}

func (m mutationResolver) SetPrice(_ context.Context, symbol string, price float64) (*StockPrice, error) {
	if symbol == "" {
		return nil, gqlerror.Errorf("symbol must not be empty")
	}
	sp, drops := m.s.ticker.set(symbol, price, m.s.now())
	m.s.countDrops(drops)
	return sp, nil
}

type subscriptionResolver struct{ s *Server }

func (r subscriptionResolver) MessageCreated(ctx context.Context, room string) (<-chan *Message, error) {
	f, unsubscribe := r.s.chat.subscribe(room)
	out := make(chan *Message)
	err := r.s.stream(ctx, "messageCreated", func(done <-chan struct{}) {
		defer unsubscribe()
		pump(done, f, out)
	})
	if err != nil {
		unsubscribe()
		return nil, err
	}
	return out, nil
}

func (r subscriptionResolver) StockPricesChanged(ctx context.Context, symbols []string) (<-chan *StockPrice, error) {
	f, unsubscribe := r.s.ticker.subscribe(symbols)
	out := make(chan *StockPrice)
	err := r.s.stream(ctx, "stockPricesChanged", func(done <-chan struct{}) {
		defer unsubscribe()
		pump(done, f, out)
	})
	if err != nil {
		unsubscribe()
		return nil, err
	}
	return out, nil
}

func (r subscriptionResolver) Countdown(ctx context.Context, from int, interval *int) (<-chan int, error) {
	ms := 100
	if interval != nil {
		ms = *interval
	}
	switch {
	case from < 0 || from > MaxCountdownFrom:
		return r.s.reject(ctx, fmt.Sprintf("from must be between 0 and %d", MaxCountdownFrom))
	case ms < 0 || ms > MaxCountdownInterval:
		return r.s.reject(ctx, fmt.Sprintf("interval must be between 0 and %d", MaxCountdownInterval))
	}
	period := max(time.Duration(ms)*time.Millisecond, time.Millisecond)
	out := make(chan int)
	err := r.s.stream(ctx, "countdown", func(done <-chan struct{}) {
		defer close(out) // the end of the stream: gqlgen sends complete
		t := time.NewTicker(period)
		defer t.Stop()
		for n := from; n >= 0; n-- {
			if n < from {
				select {
				case <-t.C:
				case <-done:
					return
				}
			}
			select {
			case out <- n:
			case <-done:
				return
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// reject refuses a subscription so that the client gets an error frame
// ("error" in both protocols) rather than a "next" frame holding errors, which
// is what gqlgen sends for a resolver's returned error.
func (s *Server) reject(ctx context.Context, msg string) (<-chan int, error) {
	s.stats.update(func(st *Stats) { st.SubscriptionsRejected++ })
	transport.AddSubscriptionError(ctx, gqlerror.Errorf("%s", msg))
	ch := make(chan int)
	close(ch)
	return ch, nil
}

// stream runs one subscription's goroutine: run until it returns or ctx ends
// (done is ctx.Done()), and keeps the subscription counted as active until
// ctx ends. gqlgen cancels ctx on complete/stop from the client, on the end of
// the stream and when the connection goes, so ctx's lifetime is the
// subscription's lifetime upstream.
func (s *Server) stream(ctx context.Context, field string, run func(done <-chan struct{})) error {
	if !s.enter() {
		return ErrClosed
	}
	s.stats.subStarted(field)
	go func() {
		defer s.wg.Done()
		defer s.stats.subEnded(field)
		run(ctx.Done())
		<-ctx.Done()
	}()
	return nil
}
