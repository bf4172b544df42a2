package e2e

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startHub runs a real NATS server (nats-server, as a library) with a
// leafnodes port that takes the user leaf/leafpw, and returns that port.
func startHub(t *testing.T) int {
	t.Helper()
	port := freePort(t)
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: port, Username: "leaf", Password: "leafpw"},
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("the hub does not start")
	}
	t.Cleanup(s.Shutdown)
	return port
}
