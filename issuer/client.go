package issuer

import (
	"encoding/json"
	"time"
)

// The grant types the issuer implements (RFC 6749 §4.4, RFC 8693 §2.1, RFC 6749 §6).
const (
	GrantClientCredentials = "client_credentials"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	GrantRefreshToken      = "refresh_token"
)

// The client authentication methods (RFC 6749 §2.3.1, RFC 7523 §2.2, OIDC Core §9).
const (
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
)

// Client is a registered agent or service (spec/agent-auth.md §2.3): who it is, what it may ask for, and how it
// authenticates.
type Client struct {
	// ID is the client_id: an agent's SPIFFE ID (spiffe://example.org/tenant/acme/agent/invoice-bot) or a plain
	// id for services.
	ID string `json:"client_id"`
	// Name is a label for people.
	Name string `json:"client_name,omitempty"`
	// Tenant is the tenant the client belongs to.
	Tenant string `json:"tenant"`
	// Class is the agent class (blueprint), for class-wide kill switches.
	Class string `json:"agent_class,omitempty"`
	// GrantTypes are the grants the client may use.
	GrantTypes []string `json:"grant_types"`
	// Scopes are the most a token of this client may carry.
	Scopes []string `json:"scope"`
	// Resources are the audiences (RFC 8707 resource values) its tokens may name.
	Resources []string `json:"resources"`
	// MaxDelegationDepth caps the depth of nodes this client acts in (default 3, at most 6).
	MaxDelegationDepth int `json:"max_delegation_depth"`
	// Actors are the clients that may act for this one: exchange tokens addressed to them by this client.
	Actors []string `json:"actors,omitempty"`
	// TokenTTL caps the lifetime of its access tokens; zero uses the issuer's default.
	TokenTTL Seconds `json:"access_token_ttl,omitempty"`
	// AuthMethod is private_key_jwt, client_secret_basic or client_secret_post.
	AuthMethod string `json:"token_endpoint_auth_method"`
	// JWKS holds the public keys of private_key_jwt clients (RFC 7591 jwks).
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// SecretHash is the hex SHA-256 of the client secret. Secrets are 256 random bits made by the issuer, so a
	// fast hash is enough; it is never shown.
	SecretHash string `json:"secret_hash,omitempty"`
	// Introspection lets the client call the introspection endpoint (resource servers), for tokens of its tenant.
	Introspection bool `json:"introspection,omitempty"`
	// Disabled blocks every new token of the client; tokens issued before stay valid until revoked or expired.
	Disabled bool `json:"disabled,omitempty"`
	// CreatedAt is when the client was registered.
	CreatedAt time.Time `json:"created_at"`
}

// Seconds is a duration written as a number of seconds in JSON.
type Seconds int64

// Duration returns s as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(s) * time.Second }

// Redacted returns a copy of c without its secret hash, for answers of the management API.
func (c *Client) Redacted() *Client {
	r := *c
	r.SecretHash = ""
	return &r
}
