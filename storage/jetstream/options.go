package jetstream

import (
	"fmt"
	"regexp"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options name and size the JetStream assets of one ssfd deployment. Every replica of a deployment uses the
// same Options.
type Options struct {
	// Replicas is the replica count of every stream and KV bucket: 1 for a single NATS node, 3 (or 5) on a NATS
	// cluster, where a stream survives the loss of a minority of its replicas. Zero means 1.
	Replicas int
	// Prefix starts the name of every stream and bucket, so that several deployments (or tests) share one NATS
	// cluster without meeting. Empty means DefaultPrefix.
	Prefix string
	// SnapshotKeep is how many commands a snapshot of the state log leaves in the log below its sequence (see
	// State.Snapshot), so that a replica following that far behind is not cut off. Zero means 10,000.
	SnapshotKeep uint64
}

// defaultSnapshotKeep is SnapshotKeep's default: over three minutes of the log at 50 commands/s, five seconds
// at the most the log takes (about 2,000 commands/s).
const defaultSnapshotKeep = 10000

// snapshotKeep is SnapshotKeep or its default.
func (o Options) snapshotKeep() uint64 {
	if o.SnapshotKeep == 0 {
		return defaultSnapshotKeep
	}
	return o.SnapshotKeep
}

// DefaultPrefix is the Prefix of a deployment that names none.
const DefaultPrefix = "SSFD"

var prefixShape = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// normalize fills the defaults and checks the prefix is a valid stream and bucket name part.
func (o Options) normalize() (Options, error) {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !prefixShape.MatchString(o.Prefix) {
		return o, fmt.Errorf("jetstream: prefix %q must be 1 to 32 letters, digits, '-' or '_'", o.Prefix)
	}
	return o, nil
}

// open normalizes opts and returns them with a JetStream context on nc: the start of every Open function.
func open(nc *nats.Conn, opts Options) (Options, jetstream.JetStream, error) {
	opts, err := opts.normalize()
	if err != nil {
		return opts, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return opts, nil, fmt.Errorf("jetstream: JetStream context: %w", err)
	}
	return opts, js, nil
}
