package push

import (
	"math/rand/v2"
	"time"
)

// Backoff is the retry policy of push delivery (spec/ssf.md PU-30): exponential with full jitter between Min
// and Max, honouring a longer Retry-After, until a SET is older than MaxAge, when it becomes a dead letter.
type Backoff struct {
	Min    time.Duration
	Max    time.Duration
	MaxAge time.Duration
}

// DefaultBackoff retries from 1 s to 5 min and gives up after 24 h.
var DefaultBackoff = Backoff{Min: time.Second, Max: 5 * time.Minute, MaxAge: 24 * time.Hour}

// Delay returns the wait before retry number attempt (1 for the first retry): a random duration up to
// min(Max, Min·2^(attempt-1)), but at least retryAfter.
func (b Backoff) Delay(attempt int, retryAfter time.Duration) time.Duration {
	ceiling := b.Min
	for i := 1; i < attempt && ceiling < b.Max; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, b.Max)
	d := time.Duration(rand.Int64N(int64(ceiling) + 1))
	return max(d, retryAfter)
}
