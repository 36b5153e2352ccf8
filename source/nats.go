package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// natsPending bounds the messages waiting for the session's reader; past
// it the NATS client drops messages (and reports a slow consumer), it
// never blocks its own reader.
const natsPending = 4096

// natsEngine subscribes and publishes on one NATS connection. The
// client's own reconnect is off: the Source re-dials, so that a reconnect
// is the same event (a gap, a timeout) for every kind of source.
type natsEngine struct {
	name, url string
}

func newNATS(name, url string) (*natsEngine, error) {
	for _, u := range strings.Split(url, ",") {
		if strings.TrimSpace(u) == "" {
			return nil, errors.New("empty server URL")
		}
	}
	return &natsEngine{name: clientName(name), url: url}, nil
}

// check accepts a subject of non-empty tokens without whitespace;
// wildcards (*, >) only to listen.
func (e *natsEngine) check(subject string, publish bool) error {
	if subject == "" || strings.ContainsAny(subject, " \t\r\n") {
		return errors.New("a NATS subject is non-empty and has no whitespace")
	}
	toks := strings.Split(subject, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return errors.New("a NATS subject has no empty token")
		case (t == "*" || t == ">") && publish:
			return errors.New("a NATS subject to publish to has no wildcard")
		case t == ">" && i != len(toks)-1:
			return errors.New("'>' is a NATS subject's last token")
		case len(t) > 1 && strings.ContainsAny(t, "*>"):
			return errors.New("a NATS wildcard is a whole token")
		}
	}
	return nil
}

func (e *natsEngine) maxPayload() int      { return 0 }
func (e *natsEngine) publishesAlone() bool { return false }
func (e *natsEngine) close()               {}

func (e *natsEngine) dial(ctx context.Context, deliver func(string, []byte), missed func(string)) (session, error) {
	s := &natsSession{
		deliver: deliver,
		msgs:    make(chan *nats.Msg, natsPending),
		subs:    map[string]*nats.Subscription{},
		doneCh:  make(chan struct{}),
		stop:    make(chan struct{}),
	}
	timeout := dialTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	nc, err := nats.Connect(e.url,
		nats.Name(e.name),
		nats.NoReconnect(),
		nats.Timeout(timeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { s.lost(err) }),
		nats.ClosedHandler(func(*nats.Conn) { s.lost(nil) }),
		// The client library drops messages a full subscription cannot
		// take (our reader fell behind): the streams are told with a gap.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) && sub != nil {
				missed(sub.Subject)
			}
		}),
	)
	if err != nil {
		return nil, err
	}
	s.nc = nc
	s.wg.Add(1)
	go s.read()
	return s, nil
}

func (e *natsEngine) publish(ctx context.Context, sess session, subject string, payload []byte) error {
	s, ok := sess.(*natsSession)
	if !ok {
		return ErrUnavailable
	}
	// LastError is the connection's latest asynchronous error, and it
	// stays set: only one that came during this publish is its refusal.
	before := s.nc.LastError()
	if limit := s.nc.MaxPayload(); int64(len(payload)) > limit {
		return fmt.Errorf("%w: %d bytes, the NATS server takes at most %d", ErrPayloadTooLarge, len(payload), limit)
	}
	if err := s.nc.Publish(subject, payload); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			return fmt.Errorf("%w: %v", ErrPayloadTooLarge, err)
		}
		return err
	}
	// The flush is answered once the server processed the publish, so a
	// refusal (a permission violation, a closed connection) is seen.
	timeout := commandTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(d), time.Millisecond))
	}
	if err := s.nc.FlushTimeout(timeout); err != nil {
		return err
	}
	if err := s.nc.LastError(); err != nil && err != before && refuses(err, subject) {
		return err
	}
	return nil
}

// refuses reports whether an asynchronous error of the connection may be
// the refusal of a publish to subject: a permission violation names the
// subject it refused (another publish's is not this one's).
func refuses(err error, subject string) bool {
	if errors.Is(err, nats.ErrPermissionViolation) {
		return strings.Contains(err.Error(), `"`+subject+`"`)
	}
	return true
}

// natsSession is one NATS connection. Every subscription delivers into
// msgs, which one reader goroutine drains.
type natsSession struct {
	nc      *nats.Conn
	deliver func(string, []byte)
	msgs    chan *nats.Msg

	mu      sync.Mutex
	subs    map[string]*nats.Subscription
	lostErr error
	isDone  bool
	doneCh  chan struct{}

	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// lost records that the connection is gone (the client's handlers call it).
func (s *natsSession) lost(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isDone {
		return
	}
	if err == nil {
		err = errors.New("connection closed")
	}
	s.lostErr, s.isDone = err, true
	close(s.doneCh)
}

func (s *natsSession) read() {
	defer s.wg.Done()
	for {
		select {
		case m := <-s.msgs:
			s.deliver(m.Sub.Subject, m.Data)
		case <-s.stop:
			return
		}
	}
}

func (s *natsSession) listen(ctx context.Context, subjects []string) error {
	s.mu.Lock()
	for _, subj := range subjects {
		if s.subs[subj] != nil {
			continue
		}
		sub, err := s.nc.ChanSubscribe(subj, s.msgs)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		_ = sub.SetPendingLimits(natsPending, -1)
		s.subs[subj] = sub
	}
	s.mu.Unlock()
	return s.flush(ctx)
}

func (s *natsSession) unlisten(ctx context.Context, subjects []string) error {
	s.mu.Lock()
	for _, subj := range subjects {
		if sub := s.subs[subj]; sub != nil {
			delete(s.subs, subj)
			if err := sub.Unsubscribe(); err != nil {
				s.mu.Unlock()
				return err
			}
		}
	}
	s.mu.Unlock()
	return s.flush(ctx)
}

// flush returns once the server processed what was sent before it.
func (s *natsSession) flush(ctx context.Context) error {
	timeout := commandTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	return s.nc.FlushTimeout(timeout)
}

func (s *natsSession) done() <-chan struct{} { return s.doneCh }

func (s *natsSession) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lostErr
}

func (s *natsSession) close() {
	s.once.Do(func() {
		s.nc.Close()
		close(s.stop)
		s.wg.Wait()
	})
}
