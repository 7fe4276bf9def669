package transmitter

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// newJTI returns a fresh SET id: 128 random bits in hex (spec/ssf.md SET table, jti).
func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
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
