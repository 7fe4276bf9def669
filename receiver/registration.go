package receiver

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

// Registration is one transmitter the receiver subscribes to: where it is, how to authenticate to it, how SETs
// travel, which events to ask for, and what to expect of them.
type Registration struct {
	// Name identifies the registration; it names the push endpoint (/receiver/push/<Name>) and the NATS consumer.
	Name string
	// Issuer is the transmitter's issuer; its metadata is fetched from MetadataURL(Issuer) and must name exactly
	// this issuer, and every SET must carry it as iss.
	Issuer string
	// Token returns a bearer token for the transmitter's management and poll APIs (StaticToken or
	// ClientCredentials).
	Token func(context.Context) (string, error)
	// Delivery is the delivery method: poll (the default), push, or urn:ssfd:delivery:nats.
	Delivery schemas.DeliveryMethod
	// PushURL is this receiver's push endpoint as the transmitter reaches it (push only).
	PushURL string
	// PushAuthorization is the Authorization value the transmitter must send with each push (push only); it is
	// handed to the transmitter as delivery.authorization_header. Empty requires none.
	PushAuthorization string
	// EventsRequested lists the event types to ask for; empty asks for every CAEP and RISC type, of which the
	// transmitter keeps those it supports.
	EventsRequested []schemas.EventType
	// Description is the stream's description (default "ssfd receiver <Name>"); it tells this registration's
	// stream from those of other registrations that use the same credentials.
	Description string
	// Audience lists the aud values that name this receiver; empty accepts the aud of the stream the
	// transmitter created (spec/ssf.md VAL-06).
	Audience []string
	// StreamID adopts an existing stream instead of finding or creating one.
	StreamID string
	// Algorithms is the signature algorithm allow-list (default RS256, PS256, ES256, EdDSA).
	Algorithms []keys.Algorithm
	// SigningAlgorithm asks an ssfd transmitter to sign this stream's SETs with it (for example ES256).
	SigningAlgorithm string
	// Legacy accepts the legacy identifiers of spec/ssf.md §14.2.
	Legacy bool
	// VerifyInterval is how often verification is requested again (default 1 h; negative: only at start).
	VerifyInterval time.Duration
	// CheckInterval is how often the stream's configuration and status are checked (default 1 min).
	CheckInterval time.Duration
	// HTTPClient calls the transmitter (default: a 60 s timeout, enough for a long poll of up to 55 s).
	HTTPClient *http.Client
	// ConsumeNATS reads a stream delivered over NATS (urn:ssfd:delivery:nats) until ctx is done, handing its SETs
	// to the receiver (Receiver.ReceiveAll); required for that method only. internal/server provides it.
	ConsumeNATS func(ctx context.Context, streamID string) error
}

// StaticToken returns a token source that always returns token.
func StaticToken(token string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return token, nil }
}

// ClientCredentials returns a token source that gets tokens from an OAuth 2.0 token endpoint with the client
// credentials grant (RFC 6749 §4.4), asking for scopes (ssf.manage and ssf.read for a receiver), and reuses each
// until shortly before it expires. A request to the token endpoint ends with its caller's ctx, and after 30 s.
func ClientCredentials(tokenURL, clientID, clientSecret string, scopes []string) func(context.Context) (string, error) {
	cfg := &clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: tokenURL, Scopes: scopes}
	hc := &http.Client{Timeout: 30 * time.Second}
	var mu sync.Mutex
	var cached *oauth2.Token
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if !cached.Valid() { // also when nil; Valid counts a token as expired a little before it is
			tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
			if err != nil {
				return "", err
			}
			cached = tok
		}
		return cached.AccessToken, nil
	}
}
