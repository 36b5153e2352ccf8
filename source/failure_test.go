package source

import (
	"context"
	"errors"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Past the reconnect timeout every stream ends with UpstreamUnavailable;
// meanwhile new streams and publishes are refused at once, /ready names
// the source, and once the server is back everything works again.
func TestReconnectTimeoutEndsStreams(t *testing.T) {
	srv := natsServer(t, 0)
	port := srv.Addr().(*net.TCPAddr).Port
	s := newSource(t, NATS, srv.ClientURL(), Options{ReconnectTimeout: 300 * time.Millisecond})
	sink := newSink()
	open(t, s, "a.b", raw, sink)

	srv.Shutdown()
	srv.WaitForShutdown()
	sink.expect(t, `end {"errors":[{"message":"the event source `+s.Name()+` was lost and did not come back within 300ms","extensions":{"code":"UpstreamUnavailable"}}]}`)
	err := s.Ready()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), s.Name()+" (nats)") {
		t.Errorf("ready: %v", err)
	}
	if _, err := s.Stream("a.b", raw).Open(context.Background(), newSink()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("open while down: %v", err)
	}
	if err := s.Publish(context.Background(), "a.b", []byte("1")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("publish while down: %v", err)
	}
	if st := s.Stats(); st.Connected {
		t.Error("connected while down")
	}

	srv = natsServer(t, port)
	waitFor(t, "the source to come back", func() bool { return s.Ready() == nil })
	again := newSink()
	open(t, s, "a.b", raw, again)
	natsPublish(t, srv.ClientURL(), "a.b", `"back"`)
	again.expect(t, "next back")
	sink.none(t) // the ended stream hears nothing more, not even a gap
}

func natsPublish(t *testing.T, url, subject, payload string) {
	t.Helper()
	nc := natsClient(t, url)
	if err := nc.Publish(subject, []byte(payload)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// A stream opened while the source is still connecting waits for it.
func TestOpenWaitsForTheFirstConnection(t *testing.T) {
	srv := natsServer(t, 0)
	s, err := New("early", NATS, srv.ClientURL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	sink := newSink()
	open(t, s, "x", raw, sink)
	natsPublish(t, srv.ClientURL(), "x", `"first"`)
	sink.expect(t, "next first")
}

// A source that cannot connect refuses streams with ErrUnavailable, and
// Close ends the open ones.
func TestUnreachableAndClose(t *testing.T) {
	s, err := New("down", Redis, "redis://127.0.0.1:1/0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first attempt to fail", func() bool { return s.Ready() != nil && s.Stats() == (Stats{}) && s.lastAttemptFailed() })
	if _, err := s.Stream("c", raw).Open(context.Background(), newSink()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("open: %v", err)
	}
	s.Close()
	s.Close() // twice is fine

	srv := natsServer(t, 0)
	s2 := newSource(t, NATS, srv.ClientURL(), Options{})
	sink := newSink()
	open(t, s2, "x", raw, sink)
	s2.Close()
	sink.expect(t, `end {"errors":[{"message":"the event source `+s2.Name()+` was closed","extensions":{"code":"UpstreamUnavailable"}}]}`)
	if err := s2.Ready(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ready after close: %v", err)
	}
}

func (s *Source) lastAttemptFailed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == down
}

// pg_notify takes payloads shorter than 8,000 bytes; a larger one is
// refused before anything is sent.
func TestPostgresPayloadLimit(t *testing.T) {
	url := pgURL(t)
	e := pgEnv(t)
	s := newSource(t, Postgres, url, Options{})
	ch := e.channel("big")
	next := e.receive(t, ch)
	big := `"` + strings.Repeat("x", 7997) + `"`
	if err := s.Publish(context.Background(), ch, []byte(big+" ")); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("8000 bytes: %v", err)
	}
	if err := s.Publish(context.Background(), ch, []byte(big)); err != nil {
		t.Fatalf("7999 bytes: %v", err)
	}
	if got := next(); got != big {
		t.Errorf("received %d bytes, want the 7999 sent", len(got))
	}
	if err := s.CheckChannel(strings.Repeat("c", 64), false); !errors.Is(err, ErrInvalidChannel) {
		t.Errorf("64-byte channel: %v", err)
	}
}

func TestNATSSubjects(t *testing.T) {
	e := &natsEngine{}
	for _, tc := range []struct {
		subject string
		publish bool
		ok      bool
	}{
		{"sensors.1", true, true},
		{"sensors.*", false, true},
		{"sensors.>", false, true},
		{"sensors.*", true, false},
		{"sensors.>", true, false},
		{">.a", false, false},
		{"a..b", false, false},
		{".a", false, false},
		{"a.b*", false, false},
		{"a b", false, false},
		{"", false, false},
	} {
		if err := e.check(tc.subject, tc.publish); (err == nil) != tc.ok {
			t.Errorf("%q publish=%v: %v", tc.subject, tc.publish, err)
		}
	}
}

// New never echoes a URL: it may hold a password.
func TestBadURLNotEchoed(t *testing.T) {
	for kind, url := range map[string]string{
		Postgres: "postgres://u:s3cret@h:notaport/db",
		Redis:    "redis://u:s3cret@h:6379/notadb",
		NATS:     ",",
	} {
		_, err := New("x", kind, url, Options{})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v", kind, err)
		}
	}
	if _, err := New("x", "kafka", "k://h", Options{}); err == nil {
		t.Error("unknown kind accepted")
	}
}

// The Set answers /ready naming the sources that are down, and exports
// the three metrics per source.
func TestSetReadyAndMetrics(t *testing.T) {
	srv := natsServer(t, 0)
	set, err := NewSet([]Spec{
		{Name: "bus", Kind: NATS, URL: srv.ClientURL()},
		{Name: "gone", Kind: Redis, URL: "redis://127.0.0.1:1/0"},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	waitFor(t, "bus to connect", func() bool { return set.Get("bus").Ready() == nil })
	err = set.Ready()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "gone (redis)") || strings.Contains(err.Error(), "bus") {
		t.Errorf("ready: %v", err)
	}
	sink := newSink()
	open(t, set.Get("bus"), "m", raw, sink)
	natsPublish(t, srv.ClientURL(), "m", `"ok"`)
	natsPublish(t, srv.ClientURL(), "m", `{`)
	natsPublish(t, srv.ClientURL(), "m", `"ok"`)
	sink.expect(t, "next ok", "next ok")

	reg := prometheus.NewRegistry()
	reg.MustRegister(set.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got = append(got, mf.GetName()+"{"+m.GetLabel()[0].GetValue()+"} "+strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	sort.Strings(got)
	want := []string{
		"fireboom_source_bad_messages_total{bus} 1",
		"fireboom_source_bad_messages_total{gone} 0",
		"fireboom_source_connected{bus} 1",
		"fireboom_source_connected{gone} 0",
		"fireboom_source_dropped_total{bus} 0",
		"fireboom_source_dropped_total{gone} 0",
		"fireboom_source_messages_total{bus} 3",
		"fireboom_source_messages_total{gone} 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("metrics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := NewSet([]Spec{{Name: "a", Kind: NATS, URL: srv.ClientURL()}, {Name: "a", Kind: NATS, URL: srv.ClientURL()}}, Options{}); err == nil {
		t.Error("a name declared twice accepted")
	}
}
