package bolt_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ssfd/ssfd/issuer"
)

// UseOnceAt decides by the time it is given, not by the wall clock: a replica replaying a log reaches the state
// every other replica reached.
func TestUseOnceAtDecidesByTheGivenTime(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Unix(1000000000, 0) // 2001: long past on the wall clock
	mustDo(t, db.UseOnceAt(ctx, "k", t0.Add(time.Minute), t0))
	for _, tc := range []struct {
		name string
		now  time.Time
		want error
	}{
		{"refuses the key before its time", t0.Add(30 * time.Second), issuer.ErrReplay},
		{"refuses the key a nanosecond before its time", t0.Add(time.Minute - 1), issuer.ErrReplay},
		{"takes the key again once its time passed", t0.Add(time.Minute), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := db.UseOnceAt(ctx, "k", t0.Add(2*time.Minute), tc.now); !errors.Is(err, tc.want) {
				t.Fatalf("UseOnceAt at %v: %v, want %v", tc.now, err, tc.want)
			}
		})
	}
	if err := db.UseOnceAt(ctx, "", t0, t0); err == nil {
		t.Fatal("an empty key was recorded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.UseOnceAt(cctx, "other", t0, t0); !errors.Is(err, context.Canceled) {
		t.Fatalf("UseOnceAt with a cancelled context: %v", err)
	}
}
