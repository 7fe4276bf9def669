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
	// SubjectWakePrefix + <stream_id>: SETs were queued for the stream on one replica, or it changed; the others
	// wake their long polls and the stream's push or NATS worker. The payload names the replica that sent it; a
	// HeaderQueued header says SETs were queued and nothing else changed.
	SubjectWakePrefix = "ssf.wake."
	// SubjectInboxWake: a replica accepted a SET into the shared receiver inbox; the replica draining it wakes.
	SubjectInboxWake = "ssf.receiver.wake"
	// SubjectVerificationStates: a replica asked a transmitter for a verification event with this state; every
	// replica accepts it when the event is pushed to it (spec/ssf.md VAL-11).
	SubjectVerificationStates = "ssf.receiver.verify"
	// SubjectVerificationSync: a replica that starts asks the others to publish again the states they asked for
	// in the last receiver.StateLifetime.
	SubjectVerificationSync = "ssf.receiver.verify.sync"
)

// WakeSubject is the wake-up subject of a stream.
func WakeSubject(streamID string) string { return SubjectWakePrefix + streamID }

// HeaderQueued on a wake-up carries the delivery method of a stream that only got new SETs: the receiving replica
// wakes that method's worker without making it read the stream again. A wake-up without it is a change.
const HeaderQueued = "Ssfd-Queued"

// StreamSETs is the JetStream stream that holds the SETs of NATS-delivered streams.
const StreamSETs = "SSF_SETS"
