package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/lease"
	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	sjs "github.com/ssfd/ssfd/storage/jetstream"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter"
)

// Work that one replica of a cluster does at a time, named for the leases that decide which: the issuer's
// outbox (each revocation becomes one CAEP event, not one per replica), the inactivity checks and the receiver's
// inbox (each SET is handled once).
const (
	jobOutbox       = "job.issuer-outbox"
	jobInactivity   = "job.inactivity"
	jobReceiverWork = "job.receiver-inbox"
	jobSnapshots    = "job.state-snapshots"
)

// The shared state's snapshots: checked every stateSnapshotEvery, taken once stateSnapshotCommands commands
// were applied since the last one (docs/cluster.md, Sizing).
const (
	stateSnapshotEvery    = 5 * time.Minute
	stateSnapshotCommands = 50000
)

// clustered reports whether this process is a replica sharing its state through JetStream.
func (s *Server) clustered() bool { return s.cfg.Store == config.StoreJetStream }

// natsReplicas is the replica count of the JetStream streams and buckets this process creates: 1 on one node
// (the embedded server, or a NATS server used with the bolt store), nats_replicas (default 3) in a cluster.
func (s *Server) natsReplicas() int {
	if !s.clustered() {
		return 1
	}
	return cmp.Or(s.cfg.NATSReplicas, 3)
}

// openStores opens the storage of every role: the bbolt file on one node, or the cluster's JetStream streams
// and buckets (with the key bucket and the work leases) with --store jetstream. NATS is connected already.
func (s *Server) openStores() error {
	if !s.clustered() {
		db, err := bolt.Open(filepath.Join(s.cfg.DataDir, "ssfd.db"))
		if err != nil {
			return err
		}
		s.db = db
		s.store, s.queue, s.issuerStore, s.inbox = db, db, db, db
		s.rings = fileRings(filepath.Join(s.cfg.DataDir, "keys"))
		return nil
	}
	// Opening loads the state's latest snapshot and replays the log after it into this replica's cache
	// (docs/cluster.md, Sizing): allow for a long log rather than fail a start that would only begin again.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	s.log.Info("clustered: opening the shared state (replaying its log)", "nats", natsbus.Redact(s.cfg.NATSURL))
	opts := sjs.Options{Replicas: s.natsReplicas(), Prefix: s.cfg.NATSPrefix}
	st, err := sjs.OpenStreams(ctx, s.nc, opts)
	if err != nil {
		return err
	}
	s.store, s.queue = st, st
	state, err := sjs.OpenState(ctx, s.nc, opts, filepath.Join(s.cfg.DataDir, "state-cache.db"))
	if err != nil {
		return err
	}
	s.closers = append(s.closers, state.Close)
	s.issuerStore, s.inbox, s.state = state, state, state
	rings, err := sjs.OpenRings(ctx, s.nc, opts, s.log)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() error { rings.Close(); return nil })
	s.rings = func(name string, alg keys.Algorithm) (*keys.Ring, func() error, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ring, err := rings.Open(ctx, name, alg)
		if err != nil {
			return nil, nil, err
		}
		return ring, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return rings.Rotate(ctx, name, ring)
		}, nil
	}
	s.replicaID = cmp.Or(s.cfg.ReplicaID, instanceName())
	s.wakeFrom = ackName(s.replicaID) // this process, even if two share a replica_id
	if s.leases, err = lease.Open(ctx, s.nc, cmp.Or(s.cfg.NATSPrefix, sjs.DefaultPrefix), s.natsReplicas(), s.replicaID, s.log); err != nil {
		return err
	}
	s.log.Info("clustered: state on JetStream", "replica", s.replicaID, "replicas", s.natsReplicas(),
		"prefix", cmp.Or(s.cfg.NATSPrefix, sjs.DefaultPrefix))
	return nil
}

// runStateSnapshots snapshots the shared state and compacts its log, on one replica at a time, until ctx ends.
func (s *Server) runStateSnapshots(ctx context.Context) {
	s.singleton(ctx, jobSnapshots, func(ctx context.Context) {
		s.state.RunSnapshots(ctx, stateSnapshotEvery, stateSnapshotCommands, s.log)
	})
}

// instanceName names this process: the host name (as letters, digits and '-', the form KV keys and subjects
// take) and a random suffix, so that two processes on one host differ. It is the default replica_id, and with a
// role it names the process in revocation acknowledgements (ackName).
func instanceName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, cmp.Or(host, "ssfd")), "-") + "-" + hex.EncodeToString(b[:])
}

// singleton runs job under the lease named key: at once on one node, and in a cluster only while this replica
// holds the lease, starting again when it takes the lease back, until ctx ends.
func (s *Server) singleton(ctx context.Context, key string, job func(ctx context.Context)) {
	if s.leases == nil {
		job(ctx)
		return
	}
	for ctx.Err() == nil {
		if _, err := s.leases.Wait(ctx, key); err != nil {
			return
		}
		held, release, ok := s.leases.Acquire(key)
		if !ok {
			continue // lost again in between
		}
		jctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(held, cancel)
		job(jctx)
		stop()
		cancel()
		release()
	}
}

// clusterNotifier tells the other replicas that SETs were queued for streams, or that streams changed, on
// ssf.wake.<stream_id>, so that their long polls answer and the replica owning the stream's push or NATS delivery
// acts at once. It implements transmitter.QueueNotifier.
type clusterNotifier struct {
	nc   *nats.Conn
	self string
}

// Notify publishes one wake-up per changed stream; a wake-up lost in transit only delays delivery until the next
// one or the workers' idle check, so it is fire and forget.
func (n clusterNotifier) Notify(ids ...streams.ID) { n.publish("", ids) }

// Queued publishes one wake-up per stream that got SETs, with their delivery method in the HeaderQueued header.
func (n clusterNotifier) Queued(m schemas.DeliveryMethod, ids ...streams.ID) { n.publish(m, ids) }

func (n clusterNotifier) publish(m schemas.DeliveryMethod, ids []streams.ID) {
	for _, id := range ids {
		msg := &nats.Msg{Subject: natsbus.WakeSubject(string(id)), Data: []byte(n.self)}
		if m != "" {
			msg.Header = nats.Header{natsbus.HeaderQueued: []string{string(m)}}
		}
		_ = n.nc.PublishMsg(msg)
	}
}

// followWakes passes every wake-up from another replica to the local notifiers: Queued for new SETs of a known
// delivery method, Notify for anything else (a change, or a replica that does not say).
func (s *Server) followWakes(local transmitter.QueueNotifier) error {
	_, err := s.nc.Subscribe(natsbus.SubjectWakePrefix+">", func(m *nats.Msg) {
		if string(m.Data) == s.wakeFrom {
			return
		}
		id, err := streams.ParseID(strings.TrimPrefix(m.Subject, natsbus.SubjectWakePrefix))
		if err != nil {
			return
		}
		switch method := schemas.DeliveryMethod(m.Header.Get(natsbus.HeaderQueued)); method {
		case schemas.DeliveryPush, schemas.DeliveryPoll, schemas.DeliveryNATS:
			local.Queued(method, id)
		default:
			local.Notify(id)
		}
	})
	if err != nil {
		return fmt.Errorf("server: follow wake-ups: %w", err)
	}
	return nil
}

// followInboxWakes wakes the receiver's inbox drain when another replica accepted a SET.
func (s *Server) followInboxWakes(wake func()) error {
	_, err := s.nc.Subscribe(natsbus.SubjectInboxWake, func(m *nats.Msg) {
		if string(m.Data) != s.wakeFrom {
			wake()
		}
	})
	if err != nil {
		return fmt.Errorf("server: follow inbox wake-ups: %w", err)
	}
	return nil
}
