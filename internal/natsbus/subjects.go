package natsbus

// The NATS subjects of ssfd (DESIGN.md "NATS"), in one place.
const (
	// SubjectIntakePrefix + <tenant>: events to transmit, request/reply.
	SubjectIntakePrefix = "ssf.intake."
	// SubjectSETPrefix + <stream_id>: SETs of NATS-delivered streams, in JetStream stream StreamSETs.
	SubjectSETPrefix = "ssf.set."
	// SubjectEventsPrefix + <event name>: verified events republished by the receiver.
	SubjectEventsPrefix = "ssf.events."
	// SubjectRevocationPrefix + <tenant>: revocation operations for resource servers.
	SubjectRevocationPrefix = "ssf.revocation."
	// SubjectWakePrefix + <stream_id>: long-poll wake-ups across replicas.
	SubjectWakePrefix = "ssf.wake."
)

// StreamSETs is the JetStream stream that holds the SETs of NATS-delivered streams.
const StreamSETs = "SSF_SETS"
