package main

import (
	"os"

	"github.com/fireboom/fireboom/cluster/natsd"
)

// startNATS runs a NATS JetStream server in the tool's process, on a free
// loopback port with its store in a temporary folder, for -cluster: its
// CPU is the tool's, so the gateway's figures are its own.
func startNATS() (stop func(), url string, err error) {
	dir, err := os.MkdirTemp("", "fireboom-bench-nats-")
	if err != nil {
		return nil, "", err
	}
	s, err := natsd.Start(natsd.Options{StoreDir: dir})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	return func() {
		s.Shutdown()
		_ = os.RemoveAll(dir)
	}, s.URL(), nil
}
