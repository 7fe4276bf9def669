package transmitter

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// newJTI returns a fresh SET id (spec/ssf.md SET table, jti): 48 bits of Unix milliseconds followed by 80 random
// bits, in hex, like a UUIDv7. The random part makes it unique; the time prefix makes the queue's jti index grow
// at its end instead of scattering writes over the whole B-tree, which keeps group commits small.
func newJTI() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// seal builds one SET for a stream (own jti, the stream's aud, iat now, exactly one event, never sub or exp) and
// signs it with the stream's algorithm (DESIGN.md "Signer").
func (t *Transmitter) seal(s *streams.Stream, subject schemas.Subject, ev schemas.Event, txn string) (streams.Item, error) {
	now := t.now()
	set := &schemas.SET{
		Issuer:   t.issuer,
		ID:       newJTI(),
		IssuedAt: schemas.Unix(now.Unix()), // whole seconds, never ahead of the clock (spec/ssf.md §1.2 iat)
		Audience: s.Config.Audience,
		Txn:      txn,
		Subject:  subject,
		Event:    ev,
	}
	claims, err := set.MarshalJSON()
	if err != nil {
		return streams.Item{}, fmt.Errorf("transmitter: encode SET: %w", err)
	}
	token, err := t.signer.Sign(s.SigningAlgorithm, claims)
	if err != nil {
		return streams.Item{}, fmt.Errorf("transmitter: sign SET for stream %s: %w", s.ID(), err)
	}
	return streams.Item{Stream: s.ID(), JTI: set.ID, SET: token, Queued: now}, nil
}
