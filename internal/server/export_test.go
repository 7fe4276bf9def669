package server

import (
	"context"

	"github.com/ssfd/ssfd/streams"
)

// HeartbeatStaleAt exposes the heartbeat staleness rule to the tests.
var HeartbeatStaleAt = heartbeatStaleAt

// PollWaiting reports whether a long poll waits on the stream in this process.
func (s *Server) PollWaiting(streamID string) bool { return s.waker.Waiting(streams.ID(streamID)) }

// Kill stops the server the way a crash would, as far as a process can do it to itself: its NATS connections
// drop at once (its work leases are neither renewed nor given back, so they expire), its HTTP connections are
// cut, and nothing is flushed or acknowledged on the way out.
func (s *Server) Kill() {
	s.nc.Close()
	for _, nc := range s.extraConns {
		nc.Close()
	}
	_ = s.http.Close()
	s.stop()
}

// OwnsStream reports whether this replica delivers the stream (push, NATS); always true on one node.
func (s *Server) OwnsStream(streamID string) bool {
	if s.leases == nil {
		return true
	}
	_, ok := s.leases.Own(streamID)
	return ok
}

// LeasesHeld is how many work partitions this replica holds; 0 on one node.
func (s *Server) LeasesHeld() int {
	if s.leases == nil {
		return 0
	}
	return s.leases.Held()
}

// StoredStream reads a stream straight from the store: unlike a status request, it is not receiver activity.
func (s *Server) StoredStream(streamID string) (*streams.Stream, error) {
	return s.store.GetStream(context.Background(), streams.ID(streamID))
}
