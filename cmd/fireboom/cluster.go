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
	return cluster.New(cluster.FromConfig(c, log))
}

// shutdowner is the cluster engine as the lifecycle sees it.
type shutdowner interface {
	BeginShutdown()
	Close() error
}
