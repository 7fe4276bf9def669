package transmitter_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter"
)

// eventsIn decodes the queued SETs of a stream and returns their event types and payloads, oldest first.
func eventsIn(t *testing.T, q streams.Queue, id streams.ID) ([]schemas.EventType, []string) {
	t.Helper()
	items, _, err := q.Pending(context.Background(), id, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []schemas.EventType
	var payloads []string
	for _, it := range items {
		_, claims, err := keys.Decode(it.SET)
		if err != nil {
			t.Fatal(err)
		}
		set, err := schemas.ParseSET(claims)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, set.Event.Type)
		payloads = append(payloads, string(set.Event.Payload))
	}
	return types, payloads
}

func TestINA01_InactiveStreamsArePausedWithAStreamUpdatedFirst(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ssfd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := keys.NewRing(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1767225600, 0)
	tx, err := transmitter.New("https://tx.example.net", db, db, ringSigner{r},
		transmitter.WithInactivityTimeout(time.Hour), transmitter.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	p := transmitter.Principal{ClientID: "rx", Audience: schemas.Audience{"rx"}}
	s, err := tx.CreateStream(ctx, p, []byte(`{"events_requested":["`+string(schemas.EventSessionRevoked)+`"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Config.InactivityTimeout != 3600 {
		t.Fatalf("inactivity_timeout = %d", s.Config.InactivityTimeout)
	}
	now = now.Add(30 * time.Minute)
	if n, err := tx.CheckInactivity(ctx); err != nil || n != 0 {
		t.Fatalf("paused %d streams before the timeout: %v", n, err)
	}
	now = now.Add(2 * time.Hour)
	if n, err := tx.CheckInactivity(ctx); err != nil || n != 1 {
		t.Fatalf("paused %d streams after the timeout: %v", n, err)
	}
	// Read the store directly: a status request would itself be receiver activity.
	st, err := db.GetStream(ctx, s.ID())
	if err != nil || st.Status != schemas.StatusPaused || st.StatusReason != transmitter.InactivityReason {
		t.Fatalf("status = %+v %v", st, err)
	}
	subject, _ := schemas.NewEmail("ada@example.com")
	ev, _ := transmitter.NewEventFor(subject, &schemas.SessionRevoked{}, "")
	if _, err := tx.Emit(ctx, []transmitter.Event{ev}); err != nil {
		t.Fatal(err)
	}
	// Receiver activity (a poll, here) enables the stream again.
	tx.Touch(ctx, s.ID())
	if st, _ := db.GetStream(ctx, s.ID()); st.Status != schemas.StatusEnabled {
		t.Fatalf("activity must enable the stream again, status %s", st.Status)
	}
	types, payloads := eventsIn(t, db, s.ID())
	want := []schemas.EventType{schemas.EventStreamUpdated, schemas.EventSessionRevoked, schemas.EventStreamUpdated}
	if len(types) != 3 || types[0] != want[0] || types[1] != want[1] || types[2] != want[2] {
		t.Fatalf("ST-31: queued %v, want %v", types, want)
	}
	var first, last schemas.StreamUpdated
	_ = json.Unmarshal([]byte(payloads[0]), &first)
	_ = json.Unmarshal([]byte(payloads[2]), &last)
	if first.Status != schemas.StatusPaused || last.Status != schemas.StatusEnabled {
		t.Fatalf("stream-updated statuses %s then %s", first.Status, last.Status)
	}
}
