package bolt

import (
	"math"
	"testing"
	"time"
)

// TestUsualBatchSizeHalvesEveryHalfLife: the commit delay's idea of how many writers write at once is the largest
// recent commit, halving every peakHalfLife, whatever the commits in between carried.
func TestUsualBatchSizeHalvesEveryHalfLife(t *testing.T) {
	var st delayState
	t0 := time.Unix(1767225600, 0)
	st.observe(2, t0)
	st.observe(248, t0)
	st.observe(1, t0) // a lone write does not lower it at once
	for _, c := range []struct {
		after time.Duration
		want  float64
	}{{0, 248}, {peakHalfLife, 124}, {6 * peakHalfLife, 3.875}} {
		if got := st.usual(t0.Add(c.after)); math.Abs(got-c.want) > 1e-9 {
			t.Fatalf("usual %v after a commit of 248: %v, want %v", c.after, got, c.want)
		}
	}
	st.observe(10, t0.Add(6*peakHalfLife)) // a larger commit than the decayed peak raises it
	if got := st.usual(t0.Add(6 * peakHalfLife)); got != 10 {
		t.Fatalf("usual after a commit of 10: %v", got)
	}
}
