package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// reader feeds one topic subject into a jsLog: the retained history
// first (DeliverAll, filtered to the subject), then every record as it is
// stored. It is an ordered consumer: after a NATS outage it resumes after
// the last record it handed over, so nothing is read twice or skipped.
type reader struct {
	st   jetstream.Stream
	cons jetstream.Consumer
	cc   jetstream.ConsumeContext
}

// startReader starts reading subject into l and returns once the history
// is applied (the newest record stored when it started was read).
func startReader(ctx context.Context, st jetstream.Stream, subject string, l *jsLog) (*reader, error) {
	var loadTo uint64
	m, err := st.GetLastMsgForSubject(ctx, subject)
	switch {
	case err == nil:
		loadTo = m.Sequence
	case errors.Is(err, jetstream.ErrMsgNotFound):
	default:
		return nil, err
	}
	l.mu.Lock()
	l.loadTo = loadTo
	if loadTo == 0 {
		l.markLoadedLocked()
	}
	l.mu.Unlock()
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subject},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		r, ok := parseRecord(md.Sequence.Stream, m.Headers(), m.Data())
		if !ok {
			r = record{seq: md.Sequence.Stream} // not ours: skipped, but read
		}
		if l.apply(r, md.NumPending) {
			l.notify()
		}
	})
	if err != nil {
		return nil, err
	}
	rd := &reader{st: st, cons: cons, cc: cc}
	// The newest record may be removed (age, limits) before it is read:
	// then the consumer's state says the history is in.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-l.loaded:
			return rd, nil
		case <-ctx.Done():
			rd.stop()
			return nil, ctx.Err()
		case <-tick.C:
			if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 && l.readTo() >= info.Delivered.Stream {
				l.mu.Lock()
				l.markLoadedLocked()
				l.mu.Unlock()
			}
		}
	}
}

// stop ends reading and waits until no record is being applied. It must
// not run on the reader's own goroutine (from notify).
func (rd *reader) stop() {
	rd.cc.Stop()
	<-rd.cc.Closed()
	if info := rd.cons.CachedInfo(); info != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = rd.st.DeleteConsumer(ctx, info.Name)
		cancel()
	}
}
