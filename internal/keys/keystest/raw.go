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
	return rate(workers, d, func() bool {
		obj, err := jose.ParseSignedCompact(token, algs)
		if err != nil {
			return false
		}
		_, err = obj.Verify(pub)
		return err == nil
	}), nil
}

// RawSignRate returns how many times per second go-jose alone signs payload with the private key k (typ header
// only), on workers goroutines for the duration d: the ceiling of anything that mints tokens on this machine,
// measured in the same run.
func RawSignRate(k *keys.Key, payload []byte, workers int, d time.Duration) (float64, error) {
	var priv jose.JSONWebKey
	data, err := k.MarshalJSON()
	if err != nil {
		return 0, err
	}
	if err := priv.UnmarshalJSON(data); err != nil {
		return 0, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm()), Key: priv},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return 0, err
	}
	return rate(workers, d, func() bool {
		obj, err := signer.Sign(payload)
		if err != nil {
			return false
		}
		_, err = obj.CompactSerialize()
		return err == nil
	}), nil
}

// rate runs op on workers goroutines for the duration d and returns how many times per second it succeeded; a
// worker stops at the first failure.
func rate(workers int, d time.Duration, op func() bool) float64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) && op() {
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}
