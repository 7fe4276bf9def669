package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The revocation feed (spec/agent-auth.md §3.3): ops on ssf.revocation.<tenant> in StreamRevocations, retained
// as long as a token they can reject may live; signing-key withdrawals on SubjectRevokedKeys in
// StreamRevokedKeys, kept for good; acknowledgements of resource servers on SubjectRevocationAcks (core NATS).
const (
	StreamRevocations     = "SSF_REVOCATIONS"
	StreamRevokedKeys     = "SSF_REVOKED_KEYS"
	SubjectRevokedKeys    = "ssf.revoked-keys"
	SubjectRevocationAcks = "ssf.revacks"
)

// RevocationBus publishes revocation ops to JetStream and follows them, for the issuer, the receiver and
// resource servers.
type RevocationBus struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// OpenRevocations creates or updates the two revocation streams (file storage; ops kept for retention, key
// withdrawals kept for good) and returns a bus on them.
func OpenRevocations(ctx context.Context, nc *nats.Conn, replicas int, retention time.Duration) (*RevocationBus, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsbus: JetStream: %w", err)
	}
	for _, cfg := range []jetstream.StreamConfig{
		{Name: StreamRevocations, Description: "revocation ops of ssfd for resource servers (ssf.revocation.<tenant>)",
			Subjects: []string{SubjectRevocationPrefix + ">"}, MaxAge: retention},
		{Name: StreamRevokedKeys, Description: "withdrawn access-token signing keys",
			Subjects: []string{SubjectRevokedKeys}, MaxMsgs: 100_000},
	} {
		cfg.Storage, cfg.Replicas, cfg.Duplicates = jetstream.FileStorage, max(replicas, 1), min(DuplicateWindow, max(retention, time.Minute))
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("natsbus: create stream %s: %w", cfg.Name, err)
		}
	}
	return &RevocationBus{nc: nc, js: js}, nil
}

// RevocationSubject is the subject of a tenant's ops: the tenant itself when it is a plain NATS token, else a
// hash of it (tenants stay out of wildcards and odd characters).
func RevocationSubject(tenant string) string {
	if tenant == "" {
		return SubjectRevocationPrefix + "_"
	}
	for _, r := range tenant {
		if plain := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'; !plain {
			sum := sha256.Sum256([]byte(tenant))
			return SubjectRevocationPrefix + "h" + hex.EncodeToString(sum[:8])
		}
	}
	return SubjectRevocationPrefix + tenant
}

// Publish stores one op (JSON) and waits for JetStream's acknowledgement; opID is its Nats-Msg-Id, so the same op
// published twice within the duplicate window is stored once. keyOp sends it to the key stream.
func (b *RevocationBus) Publish(ctx context.Context, tenant, opID string, op []byte, keyOp bool) error {
	subject := RevocationSubject(tenant)
	if keyOp {
		subject = SubjectRevokedKeys
	}
	if _, err := b.js.Publish(ctx, subject, op, jetstream.WithMsgID(opID)); err != nil {
		return fmt.Errorf("natsbus: publish revocation %s: %w", opID, err)
	}
	return nil
}

// Follow reads both revocation streams from their start with ordered consumers and calls apply with every op,
// one at a time, until ctx is done; caughtUp is called once, when everything stored at the start was applied (or
// has expired from the stream meanwhile: a stream whose first message is past what was there at the start, or
// that holds nothing, is caught up too; checked every second).
func (b *RevocationBus) Follow(ctx context.Context, apply func(op []byte), caughtUp func()) error {
	var mu sync.Mutex // apply is called from one goroutine at a time
	pending := 2
	done := func() {
		pending--
		if pending == 0 {
			caughtUp()
		}
	}
	type started struct {
		st     jetstream.Stream
		last   uint64
		caught *bool
	}
	var streams []started
	var stops []func()
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	for _, name := range []string{StreamRevocations, StreamRevokedKeys} {
		st, err := b.js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("natsbus: stream %s: %w", name, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return fmt.Errorf("natsbus: stream %s: %w", name, err)
		}
		last := info.State.LastSeq
		cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return fmt.Errorf("natsbus: follow %s: %w", name, err)
		}
		caught := false
		mu.Lock()
		if info.State.Msgs == 0 {
			caught = true
			done()
		}
		mu.Unlock()
		cc, err := cons.Consume(func(m jetstream.Msg) {
			mu.Lock()
			defer mu.Unlock()
			apply(m.Data())
			if md, err := m.Metadata(); !caught && err == nil && (md.Sequence.Stream >= last || md.NumPending == 0) {
				caught = true
				done()
			}
		})
		if err != nil {
			return fmt.Errorf("natsbus: follow %s: %w", name, err)
		}
		stops = append(stops, cc.Stop)
		streams = append(streams, started{st: st, last: last, caught: &caught})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, s := range streams {
			mu.Lock()
			waiting := !*s.caught
			mu.Unlock()
			if !waiting {
				continue
			}
			info, err := s.st.Info(ctx)
			if err != nil {
				continue
			}
			mu.Lock()
			if !*s.caught && (info.State.Msgs == 0 || info.State.FirstSeq > s.last) {
				*s.caught = true
				done()
			}
			mu.Unlock()
		}
	}
}

// Ack tells whoever waits for it that the resource server rs applied the ops (core NATS, best effort).
func (b *RevocationBus) Ack(rs string, opIDs ...string) {
	for _, id := range opIDs {
		_ = b.nc.Publish(SubjectRevocationAcks, []byte(id+"\n"+rs))
	}
}

// WatchAcks counts, from now on, the distinct resource servers that acknowledged every one of the given ops;
// changed receives (without blocking, so several acks may fold into one signal) whenever an acknowledgement
// arrives. Call stop when done. Acknowledgements are plain NATS messages: any client allowed to publish on
// SubjectRevocationAcks can forge one, so the count informs, it does not prove.
func (b *RevocationBus) WatchAcks() (count func(opIDs ...string) int, changed <-chan struct{}, stop func(), err error) {
	var mu sync.Mutex
	signal := make(chan struct{}, 1)
	seen := map[string]map[string]bool{} // op id → resource servers
	sub, err := b.nc.Subscribe(SubjectRevocationAcks, func(m *nats.Msg) {
		id, rs, ok := strings.Cut(string(m.Data), "\n")
		if !ok {
			return
		}
		mu.Lock()
		if seen[id] == nil {
			seen[id] = map[string]bool{}
		}
		seen[id][rs] = true
		mu.Unlock()
		select {
		case signal <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("natsbus: watch acknowledgements: %w", err)
	}
	count = func(opIDs ...string) int {
		mu.Lock()
		defer mu.Unlock()
		if len(opIDs) == 0 {
			return 0
		}
		n := 0
		for rs := range seen[opIDs[0]] {
			all := true
			for _, id := range opIDs[1:] {
				all = all && seen[id][rs]
			}
			if all {
				n++
			}
		}
		return n
	}
	return count, signal, func() { _ = sub.Unsubscribe() }, nil
}
