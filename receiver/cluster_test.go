package receiver_test

// Replicas of a clustered receiver, without the cluster: each replica is a Receiver on its own inbox with its own
// push endpoint and Keeper for the emulator's registration "emu"; one runs Run, the others Follow (spec/ssf.md
// VAL-11 for the verification states they share).

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
)

// replica is one receiver process of a cluster.
type replica struct {
	rcv     *receiver.Receiver
	k       *receiver.Keeper
	pushURL string // this replica's push endpoint for "emu"
	handled atomic.Int64
}

// newReplica starts a receiver serving its push endpoint, and draining its inbox; keep builds its Keeper.
func newReplica(t *testing.T, opts ...receiver.Option) *replica {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "rx.db"))
	if err != nil {
		t.Fatal(err)
	}
	rp := &replica{}
	d := receiver.NewDispatcher()
	d.HandleAll(func(context.Context, receiver.Delivery) error { rp.handled.Add(1); return nil })
	rp.rcv = receiver.New(db, d, opts...)
	e := echo.New()
	rp.rcv.RegisterPush(e)
	srv := httptest.NewServer(e)
	rp.pushURL = srv.URL + receiver.PushPath + "emu"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = rp.rcv.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		_ = db.Close()
	})
	return rp
}

// keep gives the replica its Keeper for reg (named "emu", with the emulator's issuer and token).
func (rp *replica) keep(t *testing.T, emu *emulator, reg receiver.Registration) *receiver.Keeper {
	t.Helper()
	reg.Name, reg.Issuer, reg.Token = "emu", emu.issuer(), receiver.StaticToken(emuToken)
	reg.VerifyInterval, reg.CheckInterval = -1, 100*time.Millisecond
	k, err := receiver.NewKeeper(rp.rcv, reg)
	if err != nil {
		t.Fatal(err)
	}
	rp.k = k
	return k
}

// run runs f until the test ends.
func run(t *testing.T, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (rp *replica) status() receiver.Status { return rp.rcv.Statuses()[0] }

// TestKeeperFollowNeverManagesTheStream: a follower waits for the stream instead of creating one, then verifies
// what is pushed to it, including the verification event another replica's Run asked for with a state that
// replica shared (the cluster's NATS is a function call here); one stream is created, one verification asked.
func TestKeeperFollowNeverManagesTheStream(t *testing.T) {
	emu := newEmulator(t)
	follower := newReplica(t)
	owner := newReplica(t, receiver.WithExpectHook(func(registration, state string) {
		if err := follower.rcv.ExpectVerification(registration, state, time.Now()); err != nil {
			t.Error(err)
		}
	}))
	// The transmitter pushes to the follower, as a load balancer in front of the replicas may.
	reg := receiver.Registration{Delivery: schemas.DeliveryPush, PushURL: follower.pushURL, PushAuthorization: "Bearer lb"}
	run(t, follower.keep(t, emu, reg).Follow)
	eventually(t, "the follower looked for the stream twice", func() bool { _, lists, _ := emu.counts(); return lists >= 2 })
	if creates, _, verifies := emu.counts(); creates != 0 || verifies != 0 || emu.streamID() != "" {
		t.Fatalf("a follower created %d streams and asked for %d verifications", creates, verifies)
	}
	if st := follower.status(); !strings.Contains(st.Error, "not at the transmitter yet") {
		t.Fatalf("the follower's status while the stream is missing: %+v", st)
	}

	run(t, owner.keep(t, emu, reg).Run)
	h := &harness{emu: emu, rcv: follower.rcv}
	h.verified(t, "202") // pushed to the follower, which knows the owner's state
	if st := follower.status(); st.StreamID != emu.streamID() || st.Error != "" || st.LastVerificationRequested.IsZero() {
		t.Fatalf("the follower's status: %+v", st)
	}
	s := emu.setFor(supportedEvents[0], caepExamples[supportedEvents[0]], emu.streamSubject(emu.streamID()))
	emu.send(s)
	if got := emu.waitOutcome(s.jti); got != "202" {
		t.Fatalf("an event pushed to the follower was answered %s", got)
	}
	eventually(t, "the follower handled both SETs", func() bool { return follower.handled.Load() == 2 })
	if creates, _, verifies := emu.counts(); creates != 1 || verifies != 1 {
		t.Fatalf("%d streams created and %d verifications asked for, want one each (by the owner)", creates, verifies)
	}
	emu.mu.Lock()
	defer emu.mu.Unlock()
	if len(emu.bodies) != 1 {
		t.Fatalf("the transmitter was sent %d stream configurations, want the owner's create only", len(emu.bodies))
	}
}

// TestKeeperFollowWithAnAudienceNeedsNoStream: a registration that names its audience is ready to verify as soon
// as the follower has the transmitter's keys, without asking for a stream at all.
func TestKeeperFollowWithAnAudienceNeedsNoStream(t *testing.T) {
	emu := newEmulator(t)
	rp := newReplica(t)
	run(t, rp.keep(t, emu, receiver.Registration{Audience: []string{emu.aud}}).Follow)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rp.rcv.WaitReady(ctx, "emu"); err != nil {
		t.Fatal(err)
	}
	s := emu.setFor(supportedEvents[0], caepExamples[supportedEvents[0]], emu.streamSubject("emu-stream-1"))
	if err := rp.rcv.Receive(ctx, "emu", s.token); err != nil {
		t.Fatalf("a SET for the configured audience: %v", err)
	}
	if creates, lists, verifies := emu.counts(); creates != 0 || lists != 0 || verifies != 0 {
		t.Fatalf("the follower asked the transmitter for streams (%d created, %d lists, %d verifications)", creates, lists, verifies)
	}
}

// TestKeeperRunsAndFollowsInOneProcess: the replica holding a registration's lease runs Run beside Follow; both
// set the verifier, the stream is created once and verified, and once Run stops (the lease moved on) the follower
// looks the stream up again and SETs pushed to this replica are still verified.
func TestKeeperRunsAndFollowsInOneProcess(t *testing.T) {
	emu := newEmulator(t)
	rp := newReplica(t)
	k := rp.keep(t, emu, receiver.Registration{Delivery: schemas.DeliveryPush, PushURL: rp.pushURL})
	run(t, k.Follow)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = k.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	h := &harness{emu: emu, rcv: rp.rcv}
	h.verified(t, "202")
	cancel()
	<-stopped
	_, lists, _ := emu.counts()
	eventually(t, "the follower looks the stream up again", func() bool { _, l, _ := emu.counts(); return l > lists })
	s := emu.setFor(supportedEvents[0], caepExamples[supportedEvents[0]], emu.streamSubject(emu.streamID()))
	emu.send(s)
	if got := emu.waitOutcome(s.jti); got != "202" {
		t.Fatalf("an event pushed after Run stopped was answered %s", got)
	}
	if creates, _, verifies := emu.counts(); creates != 1 || verifies != 1 {
		t.Fatalf("%d streams created and %d verifications asked for, want one each", creates, verifies)
	}
	if st := rp.status(); st.Error != "" || st.StreamID != emu.streamID() {
		t.Fatalf("status: %+v", st)
	}
}

// TestVAL11_AStateAnotherReplicaAskedForIsAccepted: ExpectState tells the hook, which shares the state with the
// other replicas; ExpectVerification records a shared state without telling the hook again, and the verification
// event carrying it is accepted and counted, for StateLifetime from when it was asked.
func TestVAL11_AStateAnotherReplicaAskedForIsAccepted(t *testing.T) {
	f := newFixture(t)
	v, err := receiver.NewVerifier(keys.StaticKeys(keys.NewJWKS(f.es)), issuer, []string{audience})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var shared []string
	r := receiver.New(mustBolt(t), receiver.NewDispatcher(), receiver.WithExpectHook(func(registration, state string) {
		mu.Lock()
		shared = append(shared, registration+" "+state)
		mu.Unlock()
	}))
	if err := r.Add("tx"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetVerifier("tx", v); err != nil {
		t.Fatal(err)
	}
	if err := r.ExpectState("tx", "asked-here"); err != nil {
		t.Fatal(err)
	}
	if err := r.ExpectVerification("tx", "asked-by-replica-2", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := r.ExpectVerification("tx", "asked-too-long-ago", time.Now().Add(-receiver.StateLifetime-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.ExpectVerification("other", "s", time.Now()); !errors.Is(err, receiver.ErrUnknownRegistration) {
		t.Fatalf("a state for a registration the receiver lacks: %v", err)
	}
	mu.Lock()
	if len(shared) != 1 || shared[0] != "tx asked-here" {
		t.Fatalf("the hook was told %q, want the state asked for here only", shared)
	}
	mu.Unlock()
	verification := func(jti, state string) string {
		return signWith(t, f.es, keys.TypeSET, claims(map[string]any{"jti": jti, "iat": time.Now().Add(2 * time.Second).Unix(),
			"events": map[string]any{string(schemas.EventVerification): map[string]any{"state": state}}}))
	}
	ctx := context.Background()
	if err := r.Receive(ctx, "tx", verification("v1", "asked-by-replica-2")); err != nil {
		t.Fatalf("the verification another replica asked for: %v", err)
	}
	if st := r.Statuses()[0]; st.LastVerification.IsZero() {
		t.Fatalf("the verification another replica asked for is not counted: %+v", st)
	}
	for _, tc := range []struct{ name, jti, state string }{
		{"refuses a state no replica asked for", "v2", "nobody-asked"},
		{"refuses a state asked for longer ago than StateLifetime", "v3", "asked-too-long-ago"},
	} {
		var ve *receiver.VerifyError
		if err := r.Receive(ctx, "tx", verification(tc.jti, tc.state)); !errors.As(err, &ve) || ve.Code != schemas.ErrInvalidState {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func mustBolt(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "rx.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
