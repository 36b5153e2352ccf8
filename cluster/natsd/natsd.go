package natsd

import (
	"errors"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure a server. Zero values: a random free port, no token.
type Options struct {
	// Port is the client port; 0 picks a free one.
	Port int
	// StoreDir holds JetStream's files (required). A server started again
	// on the same folder finds its streams and buckets.
	StoreDir string
	// Token, when set, is required of clients.
	Token string
}

// Server is a running NATS server.
type Server struct {
	s *server.Server
}

// Start starts a server and waits until it accepts clients.
func Start(opt Options) (*Server, error) {
	if opt.StoreDir == "" {
		return nil, errors.New("natsd: StoreDir is required")
	}
	port := opt.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		Host:          "127.0.0.1",
		Port:          port,
		JetStream:     true,
		StoreDir:      opt.StoreDir,
		Authorization: opt.Token,
		NoLog:         true,
		NoSigs:        true,
	})
	if err != nil {
		return nil, err
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("natsd: the server did not start within 10s")
	}
	return &Server{s: s}, nil
}

// URL is the server's client URL (nats://127.0.0.1:port).
func (s *Server) URL() string { return s.s.ClientURL() }

// Shutdown stops the server and waits until it has.
func (s *Server) Shutdown() {
	s.s.Shutdown()
	s.s.WaitForShutdown()
}
