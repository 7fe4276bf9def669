package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// newStream returns a stream with a fresh ID, created at the given second.
func newStream(sec int64) *streams.Stream {
	id := streams.NewID()
	return &streams.Stream{
		Config: schemas.StreamConfiguration{StreamID: string(id), Issuer: "https://tx.example.net",
			Audience: schemas.Audience{"https://rx"}, EventsDelivered: []schemas.EventType{schemas.EventSessionRevoked},
			Delivery: schemas.Delivery{Method: schemas.DeliveryPoll, EndpointURL: "https://tx.example.net/ssf/poll/" + string(id)}},
		Owner: "client-a", Status: schemas.StatusEnabled, SigningAlgorithm: "RS256",
		CreatedAt: time.Unix(sec, 0).UTC(), UpdatedAt: time.Unix(sec, 0).UTC(),
	}
}

func mustSubject(t *testing.T, doc string) schemas.Subject {
	t.Helper()
	s, err := schemas.ParseSubject([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStore runs the streams.Store conformance suite against the stores open returns, one per subtest.
func TestStore(t *testing.T, open func(t *testing.T) streams.Store) {
	ctx := context.Background()
	t.Run("creates, gets and lists streams oldest first", func(t *testing.T) {
		st := open(t)
		newer, older := newStream(200), newStream(100)
		for _, s := range []*streams.Stream{newer, older} {
			if err := st.CreateStream(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.GetStream(ctx, older.ID())
		if err != nil || got.Config.StreamID != older.Config.StreamID || got.Owner != "client-a" || !got.CreatedAt.Equal(older.CreatedAt) {
			t.Fatalf("GetStream = %+v, %v", got, err)
		}
		list, err := st.ListStreams(ctx)
		if err != nil || len(list) != 2 || list[0].ID() != older.ID() || list[1].ID() != newer.ID() {
			t.Fatalf("ListStreams = %v, %v", list, err)
		}
	})
	t.Run("refuses a second stream with the same ID", func(t *testing.T) {
		st := open(t)
		s := newStream(1)
		if err := st.CreateStream(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateStream(ctx, s); !errors.Is(err, streams.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
	})
	t.Run("reports unknown streams as not found", func(t *testing.T) {
		st := open(t)
		id := streams.NewID()
		if _, err := st.GetStream(ctx, id); !errors.Is(err, streams.ErrNotFound) {
			t.Fatalf("GetStream: %v", err)
		}
		if _, err := st.UpdateStream(ctx, id, func(*streams.Stream) error { return nil }); !errors.Is(err, streams.ErrNotFound) {
			t.Fatalf("UpdateStream: %v", err)
		}
		if err := st.DeleteStream(ctx, id); !errors.Is(err, streams.ErrNotFound) {
			t.Fatalf("DeleteStream: %v", err)
		}
		if err := st.SetSubject(ctx, id, streams.SubjectEntry{Subject: mustSubject(t, `{"format":"opaque","id":"x"}`), Included: true}); !errors.Is(err, streams.ErrNotFound) {
			t.Fatalf("SetSubject: %v", err)
		}
		if _, err := st.Subjects(ctx, id); !errors.Is(err, streams.ErrNotFound) {
			t.Fatalf("Subjects: %v", err)
		}
	})
	t.Run("updates in one step and writes nothing when the change fails", func(t *testing.T) {
		st := open(t)
		s := newStream(1)
		if err := st.CreateStream(ctx, s); err != nil {
			t.Fatal(err)
		}
		got, err := st.UpdateStream(ctx, s.ID(), func(s *streams.Stream) error { s.Status = schemas.StatusPaused; return nil })
		if err != nil || got.Status != schemas.StatusPaused {
			t.Fatalf("UpdateStream = %+v, %v", got, err)
		}
		boom := errors.New("boom")
		if _, err := st.UpdateStream(ctx, s.ID(), func(s *streams.Stream) error { s.Status = schemas.StatusDisabled; return boom }); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the change's error", err)
		}
		if got, _ := st.GetStream(ctx, s.ID()); got.Status != schemas.StatusPaused {
			t.Fatalf("a failed change was written: %s", got.Status)
		}
	})
	t.Run("returns copies", func(t *testing.T) {
		st := open(t)
		s := newStream(1)
		if err := st.CreateStream(ctx, s); err != nil {
			t.Fatal(err)
		}
		got, _ := st.GetStream(ctx, s.ID())
		got.Status = schemas.StatusDisabled
		got.Config.EventsDelivered[0] = "urn:changed"
		again, _ := st.GetStream(ctx, s.ID())
		if again.Status != schemas.StatusEnabled || again.Config.EventsDelivered[0] != schemas.EventSessionRevoked {
			t.Fatal("changing a returned stream changed the store")
		}
	})
	t.Run("keeps subject entries in first-set order and replaces equal subjects", func(t *testing.T) {
		st := open(t)
		s := newStream(1)
		if err := st.CreateStream(ctx, s); err != nil {
			t.Fatal(err)
		}
		a := mustSubject(t, `{"format":"email","email":"a@example.com"}`)
		b := mustSubject(t, `{"format":"email","email":"b@example.com"}`)
		for _, e := range []streams.SubjectEntry{{Subject: a, Included: true}, {Subject: b, Included: true}, {Subject: a, Included: false}, {Subject: b, Included: true}} {
			if err := st.SetSubject(ctx, s.ID(), e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.Subjects(ctx, s.ID())
		if err != nil || len(got) != 2 || !got[0].Subject.Equal(a) || got[0].Included || !got[1].Subject.Equal(b) || !got[1].Included {
			t.Fatalf("Subjects = %+v, %v", got, err)
		}
	})
	t.Run("deletes a stream with its subjects", func(t *testing.T) {
		st := open(t)
		s := newStream(1)
		if err := st.CreateStream(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := st.SetSubject(ctx, s.ID(), streams.SubjectEntry{Subject: mustSubject(t, `{"format":"opaque","id":"x"}`), Included: true}); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteStream(ctx, s.ID()); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateStream(ctx, s); err != nil {
			t.Fatalf("the ID of a deleted stream is free again: %v", err)
		}
		if got, err := st.Subjects(ctx, s.ID()); err != nil || len(got) != 0 {
			t.Fatalf("subjects outlived their stream: %v %v", got, err)
		}
	})
	t.Run("honours a cancelled context", func(t *testing.T) {
		st := open(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := st.CreateStream(cctx, newStream(1)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}
