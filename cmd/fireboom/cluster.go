package main

import (
	"log/slog"

	"github.com/fireboom/fireboom/cluster"
	"github.com/fireboom/fireboom/config"
)

// startCluster joins the cluster of the config's "cluster" section (nil
// without one). NATS refusing the credentials is a start-up error; NATS
// unreachable is not: the engine logs it, keeps trying, and /ready says
// "cluster unavailable" meanwhile.
func startCluster(cfg *config.Config, log *slog.Logger) (*cluster.Engine, error) {
	c := cfg.Cluster
	if c == nil {
		return nil, nil
	}
	return cluster.New(cluster.Config{
		URL:              c.NATS.URL,
		Token:            c.NATS.Token,
		CredsFile:        c.NATS.CredsFile,
		Name:             c.Name,
		MaxEvents:        c.Replay.MaxEvents,
		MaxAge:           c.Replay.MaxAge.D(),
		LeaseTTL:         c.LeaseTTL.D(),
		ReconnectTimeout: c.ReconnectTimeout.D(),
		Logger:           log,
	})
}

// shutdowner is the cluster engine as the lifecycle sees it.
type shutdowner interface {
	BeginShutdown()
	Close() error
}
