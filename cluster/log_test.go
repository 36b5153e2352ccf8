package cluster

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fireboom/fireboom/topic"
	"github.com/fireboom/fireboom/topic/logtest"
)

// TestLogConforms runs the topic.Log conformance suite against the
// JetStream log: one stream per log (each keeps size results per
// subject), a publisher of its own, a reader.
func TestLogConforms(t *testing.T) {
	srv := startNATS(t)
	_, js := connectJS(t, srv.URL())
	var streams atomic.Int64
	logtest.Run(t, func(t *testing.T, run string, size int) topic.Log {
		name := fmt.Sprintf("suite%d", streams.Add(1))
		ctx := ctxT(t)
		st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, MaxMsgsPerSubject: int64(size)})
		if err != nil {
			t.Fatal(err)
		}
		hash := topicHash(run)
		subject := name + ".t." + hash
		l := newLog(idTag(st.CachedInfo().Created.UnixNano(), hash), size, false, nil)
		l.pub = &publisher{js: js, subject: subject, inst: "suite", term: 1}
		rd, err := startReader(ctx, st, subject, l)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rd.stop)
		return l
	})
}
