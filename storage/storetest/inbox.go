package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/receiver"
)

func entry(iss, jti string, at time.Time) receiver.Entry {
	return receiver.Entry{Registration: "tx", Issuer: iss, JTI: jti, Claims: []byte(`{"jti":"` + jti + `"}`), Received: at}
}

// TestInbox runs the receiver.Inbox conformance suite against the inboxes open returns, one per subtest.
func TestInbox(t *testing.T, open func(t *testing.T) receiver.Inbox) {
	ctx := context.Background()
	now := time.Unix(1767225600, 0)
	t.Run("accepts a SET once and refuses its replay inside the window", func(t *testing.T) {
		in := open(t)
		fresh, err := in.Accept(ctx, entry("https://tx", "j1", now), now.Add(time.Hour))
		if err != nil || !fresh {
			t.Fatalf("first Accept = %v %v", fresh, err)
		}
		fresh, err = in.Accept(ctx, entry("https://tx", "j1", now.Add(time.Minute)), now.Add(2*time.Hour))
		if err != nil || fresh {
			t.Fatalf("VAL-12: a replay must not be accepted again: %v %v", fresh, err)
		}
		if fresh, _ := in.Accept(ctx, entry("https://other-tx", "j1", now), now.Add(time.Hour)); !fresh {
			t.Fatal("the same jti from another issuer is another SET")
		}
		got, err := in.Waiting(ctx, 0, 10)
		if err != nil || len(got) != 2 || got[0].JTI != "j1" || got[0].Issuer != "https://tx" || string(got[0].Claims) != `{"jti":"j1"}` {
			t.Fatalf("Waiting = %+v %v", got, err)
		}
	})
	t.Run("hands out entries oldest first and forgets handled ones", func(t *testing.T) {
		in := open(t)
		for i := range 5 {
			if _, err := in.Accept(ctx, entry("https://tx", fmt.Sprint("j", i), now), now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := in.Waiting(ctx, 0, 3)
		if len(got) != 3 || got[0].JTI != "j0" || got[2].JTI != "j2" || got[0].Seq >= got[1].Seq {
			t.Fatalf("Waiting(3) = %+v", got)
		}
		if err := in.Handled(ctx, []uint64{got[0].Seq, got[1].Seq}); err != nil {
			t.Fatal(err)
		}
		rest, _ := in.Waiting(ctx, 0, 10)
		if len(rest) != 3 || rest[0].JTI != "j2" {
			t.Fatalf("after Handled: %+v", rest)
		}
		if n, err := in.Len(ctx); err != nil || n != 3 {
			t.Fatalf("Len after Handled = %d %v, want 3", n, err)
		}
		if tail, _ := in.Waiting(ctx, rest[1].Seq, 10); len(tail) != 1 || tail[0].JTI != "j4" {
			t.Fatalf("Waiting(after %d) = %+v", rest[1].Seq, tail)
		}
		if fresh, _ := in.Accept(ctx, entry("https://tx", "j0", now), now.Add(time.Hour)); fresh {
			t.Fatal("a handled SET is still remembered until its time passes")
		}
	})
	t.Run("forgets expired replay records", func(t *testing.T) {
		in := open(t)
		if _, err := in.Accept(ctx, entry("https://tx", "old", now), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Accept(ctx, entry("https://tx", "new", now), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		n, err := in.Forget(ctx, now.Add(10*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("Forget = %d %v", n, err)
		}
		if fresh, _ := in.Accept(ctx, entry("https://tx", "old", now.Add(11*time.Minute)), now.Add(time.Hour)); !fresh {
			t.Fatal("a forgotten (iss, jti) is accepted again")
		}
	})
	t.Run("concurrent replays of one SET are accepted exactly once", func(t *testing.T) {
		in := open(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		accepted := 0
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fresh, err := in.Accept(ctx, entry("https://tx", "same", now), now.Add(time.Hour))
				if err != nil {
					t.Error(err)
				}
				if fresh {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if accepted != 1 {
			t.Fatalf("accepted %d times", accepted)
		}
	})
}
