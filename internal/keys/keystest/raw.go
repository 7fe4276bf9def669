// Package keystest gives tests and benchmarks outside internal/keys the raw limit that ssfd's own code is measured
// against: go-jose used directly, with none of ssfd's checks. Nothing but tests imports it.
package keystest

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ssfd/ssfd/internal/keys"
)

// RawVerifyRate returns how many times per second go-jose alone parses and verifies token with k, on workers
// goroutines for the duration d: the ceiling of any SET receiver on this machine, in the same run.
func RawVerifyRate(k *keys.Key, token string, workers int, d time.Duration) (float64, error) {
	pub := k.Public()
	algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(k.Algorithm())}
	if obj, err := jose.ParseSignedCompact(token, algs); err != nil {
		return 0, err
	} else if _, err := obj.Verify(pub); err != nil {
		return 0, err
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				obj, err := jose.ParseSignedCompact(token, algs)
				if err != nil {
					return
				}
				if _, err := obj.Verify(pub); err == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}
