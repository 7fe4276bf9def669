package receiver

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
)

// follow is Follow's session: it discovers the transmitter, then keeps the verifier up to date every
// CheckInterval, leaving it to Run while Run runs in this process, until an error occurs or ctx is done.
func (k *Keeper) follow(ctx context.Context) error {
	client, jwks, iss, err := k.discover(ctx)
	if err != nil {
		return err
	}
	tick := time.NewTicker(k.reg.CheckInterval)
	defer tick.Stop()
	for {
		if !k.owned() {
			aud, id := k.reg.Audience, ""
			if len(aud) == 0 {
				stream, err := k.find(ctx, client)
				if err != nil {
					return err
				}
				aud, id = stream.Audience, stream.StreamID
			}
			if err := k.setVerifier(jwks, iss, aud, false, func(s *Status) { s.StreamID, s.Error = cmp.Or(id, s.StreamID), "" }); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// discover fetches the transmitter's metadata and returns a client for it, its JWKS and its issuer.
func (k *Keeper) discover(ctx context.Context) (*Client, keys.KeySource, string, error) {
	client, err := Discover(ctx, k.reg.Issuer, WithHTTPClient(k.reg.HTTPClient), WithTokenSource(k.reg.Token))
	if err != nil {
		return nil, nil, "", err
	}
	md := client.Metadata()
	jwks, err := keys.NewRemoteJWKS(md.JWKSURI, keys.WithHTTPClient(k.reg.HTTPClient),
		keys.WithMinRefetchInterval(10*time.Second))
	if err != nil {
		return nil, nil, "", fmt.Errorf("receiver: jwks_uri: %w", err)
	}
	return client, jwks, md.Issuer, nil
}
