package poll_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter"
	"github.com/ssfd/ssfd/transmitter/poll"
)

func setup(t *testing.T) (*bolt.DB, streams.ID, transmitter.Principal) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ssfd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	id := streams.NewID()
	s := &streams.Stream{Config: schemas.StreamConfiguration{StreamID: string(id)}, Owner: "rx", Status: schemas.StatusEnabled}
	if err := db.CreateStream(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return db, id, transmitter.Principal{ClientID: "rx"}
}

// waitUntil polls cond until it holds or a deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseAnswersWaitingLongPolls(t *testing.T) {
	db, id, p := setup(t)
	w := poll.NewWaker()
	srv := poll.NewServer(db, db, w, poll.WithTimeout(time.Hour))
	type result struct {
		resp *schemas.PollResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := srv.Poll(context.Background(), p, id, &schemas.PollRequest{})
		done <- result{resp, err}
	}()
	waitUntil(t, "the long poll waits", func() bool { return w.Waiting(id) })
	w.Close()
	r := <-done // an hour-long poll that is not answered here hangs the test until its deadline
	if r.err != nil || r.resp == nil || len(r.resp.Sets) != 0 {
		t.Fatalf("a closed waker answers with no SETs: %+v %v", r.resp, r.err)
	}
	if resp, err := srv.Poll(context.Background(), p, id, &schemas.PollRequest{}); err != nil || len(resp.Sets) != 0 {
		t.Fatalf("a poll after Close is answered at once: %v %v", resp, err)
	}
}

func TestNotifyWakesOnlyTheStreamsNamed(t *testing.T) {
	db, id, p := setup(t)
	w := poll.NewWaker()
	srv := poll.NewServer(db, db, w, poll.WithTimeout(time.Hour))
	done := make(chan *schemas.PollResponse, 1)
	go func() {
		resp, _ := srv.Poll(context.Background(), p, id, &schemas.PollRequest{})
		done <- resp
	}()
	waitUntil(t, "the long poll waits", func() bool { return w.Waiting(id) })
	w.Notify(streams.NewID()) // another stream: the poll keeps waiting
	if err := db.Enqueue(context.Background(), []streams.Item{{Stream: id, JTI: "j1", SET: "a.b.c", Queued: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	w.Notify(id)
	if resp := <-done; len(resp.Sets) != 1 || resp.Sets["j1"] != "a.b.c" {
		t.Fatalf("woken poll answered %v", resp)
	}
}
