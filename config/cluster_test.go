package config

import (
	"testing"
	"time"
)

func TestClusterContractExample(t *testing.T) {
	c, err := Parse([]byte(`{"upstream":{"url":"http://127.0.0.1:4000/graphql"},
  "cluster": {
    "nats": { "url": "nats://127.0.0.1:4222", "token": "${NATS_TOKEN}", "credsFile": "" },
    "name": "fireboom",
    "replay": { "maxEvents": 1000, "maxAge": "10m" },
    "leaseTTL": "5s"
  }}`), env(map[string]string{"NATS_TOKEN": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Cluster{NATS: NATS{URL: "nats://127.0.0.1:4222", Token: "s3cret"}, Name: "fireboom",
		Replay:   ClusterReplay{MaxEvents: 1000, MaxAge: Duration(10 * time.Minute)},
		LeaseTTL: Duration(5 * time.Second), ReconnectTimeout: Duration(30 * time.Second)}
	if *c.Cluster != want {
		t.Fatalf("cluster %+v", *c.Cluster)
	}
}

func TestClusterDefaultsAndAbsence(t *testing.T) {
	c, err := Parse([]byte(`{"upstream":{"demo":true},"cluster":{"nats":{"url":"nats://n:4222"}}}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cl := c.Cluster; cl.Name != "fireboom" || cl.Replay.MaxEvents != 1000 || cl.Replay.MaxAge.D() != 10*time.Minute ||
		cl.LeaseTTL.D() != 5*time.Second || cl.ReconnectTimeout.D() != 30*time.Second {
		t.Fatalf("defaults %+v", *cl)
	}
	c, err = Parse([]byte(`{"upstream":{"demo":true}}`), env(nil))
	if err != nil || c.Cluster != nil {
		t.Fatalf("no cluster section: %+v %v", c.Cluster, err)
	}
}

func TestClusterErrorsNameThePath(t *testing.T) {
	for src, want := range map[string]string{
		`{}`:                               "cluster.nats.url: required (such as nats://127.0.0.1:4222)",
		`{"nats":{"url":"http://x:4222"}}`: `cluster.nats.url: expected a nats:// or tls:// URL, got "http://x:4222"`,
		`{"nats":{"url":"nats://x"},"leaseTTL":"5"}`:              `cluster.leaseTTL: bad duration "5"`,
		`{"nats":{"url":"nats://x"},"leaseTTL":"10ms"}`:           "cluster.leaseTTL: must be at least 1s",
		`{"nats":{"url":"nats://x"},"replay":{"maxAge":"soon"}}`:  `cluster.replay.maxAge: bad duration "soon"`,
		`{"nats":{"url":"nats://x","token":"t","credsFile":"c"}}`: `cluster.nats: set "token" or "credsFile", not both`,
		`{"nats":{"url":"nats://x"},"name":"a.b"}`:                `cluster.name: use letters, digits, '-' and '_', got "a.b"`,
		`{"nats":{"url":"nats://x"},"lease":"5s"}`:                `cluster.lease: unknown key (known: leaseTTL, name, nats, reconnectTimeout, replay)`,
		`{"nats":{"url":"nats://x","token":"${NATS_TOKEN}"}}`:     `cluster.nats.token: environment variable NATS_TOKEN is not set`,
	} {
		_, err := Parse([]byte(`{"upstream":{"demo":true},"cluster":`+src+`}`), env(nil))
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", src, err, want)
		}
	}
}
