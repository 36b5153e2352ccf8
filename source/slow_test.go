package source

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
)

// blockingSink holds the source's reader in Next until released, so that
// the NATS client library's buffer for the subscription fills up.
type blockingSink struct {
	release chan struct{}
	lines   chan string
}

func (b *blockingSink) Next(data []byte) {
	<-b.release
	b.lines <- "next"
}
func (b *blockingSink) Gap(reason string)      { b.lines <- "gap " + reason }
func (b *blockingSink) End(final *event.Event) { b.lines <- "end " + string(final.Data) }

// Messages the NATS client library drops because the gateway reads too
// slowly (a slow consumer) are not lost silently: the stream gets a
// slow-consumer gap before its next event, and the drop is counted.
func TestNATSSlowConsumerIsAGap(t *testing.T) {
	env := natsEnv(t)
	s, err := New("bus", NATS, env.url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	waitFor(t, "connected", func() bool { return s.Ready() == nil })
	ch := env.channel("slow")
	sink := &blockingSink{release: make(chan struct{}), lines: make(chan string, 3*natsPending)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop, err := s.Stream(ch, func(v any) ([]byte, error) { return []byte(`{}`), nil }).Open(ctx, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	// The reader takes the first message and blocks in Next; the rest
	// fill the library's buffer (natsPending) and overflow it.
	nc := natsClient(t, env.url)
	for i := range 2*natsPending + 100 {
		if err := nc.Publish(ch, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the drop counted", func() bool { return s.Stats().Dropped > 0 })
	close(sink.release)
	// The events still delivered come with a gap before them.
	deadline := time.After(10 * time.Second)
	gaps, nexts := 0, 0
	for gaps == 0 || nexts < natsPending {
		select {
		case l := <-sink.lines:
			switch l {
			case "gap slow-consumer":
				gaps++
			case "next":
				nexts++
			default:
				t.Fatalf("unexpected %q", l)
			}
		case <-deadline:
			t.Fatalf("%d gaps, %d events", gaps, nexts)
		}
	}
	// One gap per drop the library reported (a gap waits for the next
	// event, so drops between two events make one).
	if d := s.Stats().Dropped; uint64(gaps) > d {
		t.Fatalf("%d gaps for %d reported drops", gaps, d)
	}
}
