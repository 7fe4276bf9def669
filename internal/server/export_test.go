package server

// HeartbeatStaleAt exposes the heartbeat staleness rule to the tests.
var HeartbeatStaleAt = heartbeatStaleAt
