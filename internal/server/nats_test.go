package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

func (h *harness) natsConn() *nats.Conn {
	h.t.Helper()
	nc, err := nats.Connect(h.srv.NATSURL())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(nc.Close)
	return nc
}

func TestNATSDeliveryPublishesEachSETOnceInOrder(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	cfg, err := h.client.CreateStream(ctx, receiver.StreamRequest{
		EventsRequested: []schemas.EventType{schemas.EventSessionRevoked},
		Delivery:        &schemas.Delivery{Method: schemas.DeliveryNATS}})
	if err != nil || cfg.Delivery.Method != schemas.DeliveryNATS {
		t.Fatalf("create: %+v %v", cfg, err)
	}
	want := emitTxns(t, h, 30, "nats")

	nc := h.natsConn()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, natsbus.StreamSETs, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{natsbus.SubjectSETPrefix + cfg.StreamID}})
	if err != nil {
		t.Fatal(err)
	}
	v := h.verifier(cfg.Audience[0])
	var got []string
	var items []streams.Item
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		batch, err := cons.Fetch(len(want)-len(got), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			set, err := v.Verify(ctx, string(m.Data()))
			if err != nil {
				t.Fatalf("a SET on NATS does not verify: %v", err)
			}
			if m.Headers().Get(jetstream.MsgIDHeader) != set.ID {
				t.Fatalf("Nats-Msg-Id %q is not the jti %s", m.Headers().Get(jetstream.MsgIDHeader), set.ID)
			}
			got = append(got, set.Txn)
			items = append(items, streams.Item{Stream: streams.ID(cfg.StreamID), JTI: set.ID, SET: string(m.Data())})
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("SETs on ssf.set.<id>:\n got %v\nwant %v", got, want)
	}
	// Publishing the same SETs again, as a relay that crashed before acknowledging would, stores nothing new.
	pub, err := natsbus.NewSETPublisher(ctx, nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishSETs(ctx, streams.ID(cfg.StreamID), items); err != nil {
		t.Fatal(err)
	}
	info, err := js.Stream(ctx, natsbus.StreamSETs)
	if err != nil {
		t.Fatal(err)
	}
	st, err := info.Info(ctx, jetstream.WithSubjectFilter(natsbus.SubjectSETPrefix+cfg.StreamID))
	if err != nil {
		t.Fatal(err)
	}
	if n := st.State.Subjects[natsbus.SubjectSETPrefix+cfg.StreamID]; n != uint64(len(want)) {
		t.Fatalf("dedup by jti: %d messages, want %d", n, len(want))
	}
}

func TestNATSIntakeAnswersAndQueuesNothingForBadEvents(t *testing.T) {
	h := newHarness(t)
	cfg := h.createPollStream()
	nc := h.natsConn()
	request := func(body string) map[string]any {
		t.Helper()
		msg, err := nc.Request(natsbus.SubjectIntakePrefix+"acme", []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var reply map[string]any
		if err := json.Unmarshal(msg.Data, &reply); err != nil {
			t.Fatalf("reply %q: %v", msg.Data, err)
		}
		return reply
	}
	bad := request(`{"event_type":"https://schemas.openid.net/secevent/caep/event-type/session-revoked","subject":{"format":"email"},"event":{"reason_admin":"x"}}`)
	if bad["error"] != "invalid_request" || !strings.Contains(mustJSON(bad["problems"]), "/subject/email") || !strings.Contains(mustJSON(bad["problems"]), "/event/reason_admin") {
		t.Fatalf("bad event reply: %v", bad)
	}
	if resp := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true}); len(resp.Sets) != 0 {
		t.Fatalf("a refused event queued %d SETs", len(resp.Sets))
	}
	good := request(revoked)
	if good["error"] != nil || !strings.Contains(mustJSON(good["accepted"]), cfg.StreamID) {
		t.Fatalf("good event reply: %v", good)
	}
	if resp := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true}); len(resp.Sets) != 1 {
		t.Fatalf("the accepted event queued %d SETs", len(resp.Sets))
	}
}

func mustJSON(v any) string {
	out, _ := json.Marshal(v)
	return string(out)
}
