package issuer

import (
	"slices"
	"strings"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// The token type URIs of RFC 8693 §3.
const (
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeJWT          = "urn:ietf:params:oauth:token-type:jwt"
)

// HardMaxDepth is the deepest delegation the issuer ever allows, whatever clients ask (spec/agent-auth.md §6.2).
const HardMaxDepth = 6

// DefaultMaxDepth is the delegation depth allowed when neither the issuer nor the client says otherwise:
// human → A → B → C.
const DefaultMaxDepth = 3

// MaxAccessTokenTTL bounds every access token's life; it sizes the window revocation entries must be kept
// (spec/agent-auth.md §2.5).
const MaxAccessTokenTTL = 15 * time.Minute

// DelegationClaim is the name of the private claim that carries the node path (spec/agent-auth.md §6.1).
const DelegationClaim = "dlg"

// Claims are the claims of the issuer's access tokens (RFC 9068 §2.2 plus spec/agent-auth.md §2.5).
type Claims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  schemas.Audience `json:"aud"`
	ClientID  string           `json:"client_id"`
	IssuedAt  int64            `json:"iat"`
	ExpiresAt int64            `json:"exp"`
	JTI       string           `json:"jti"`
	Scope     string           `json:"scope,omitempty"`
	// SubjectIssuer is the issuer of sub when it is not this issuer: the IdP of a human root principal.
	SubjectIssuer string `json:"sub_iss,omitempty"`
	// Act is the RFC 8693 §4.1 actor chain, the current actor outermost.
	Act *Actor `json:"act,omitempty"`
	// MayAct names the party allowed to exchange this token (RFC 8693 §4.4).
	MayAct *Actor `json:"may_act,omitempty"`
	// SID is the node the token belongs to; empty for SSF management tokens, which are not part of the tree.
	SID string `json:"sid,omitempty"`
	// Delegation is the dlg claim: the path from the root to SID.
	Delegation *Delegation `json:"dlg,omitempty"`
	Tenant     string      `json:"tenant"`
	// AgentClass is the acting client's class (blueprint), for class-wide kill switches.
	AgentClass string        `json:"agent_class,omitempty"`
	Cnf        *Confirmation `json:"cnf,omitempty"`
	ACR        string        `json:"acr,omitempty"`
	AMR        []string      `json:"amr,omitempty"`
	AuthTime   int64         `json:"auth_time,omitempty"`
}

// Actor is an RFC 8693 act (or may_act) object: the actor and, nested, the one before it.
type Actor struct {
	Subject string `json:"sub"`
	Act     *Actor `json:"act,omitempty"`
}

// Delegation is the dlg claim (spec/agent-auth.md §2.5).
type Delegation struct {
	Depth     int      `json:"depth"`
	MaxDepth  int      `json:"max_depth"`
	Path      []string `json:"path"`
	ParentJTI string   `json:"parent_jti,omitempty"`
}

// Confirmation is the cnf claim of a sender-constrained token (RFC 9449 §6.1).
type Confirmation struct {
	JKT string `json:"jkt,omitempty"`
}

// Scopes returns the scope claim as a list.
func (c *Claims) Scopes() []string { return strings.Fields(c.Scope) }

// Actors returns the act chain as a list, the current actor first.
func (c *Claims) Actors() []string {
	var out []string
	for a := c.Act; a != nil; a = a.Act {
		out = append(out, a.Subject)
	}
	return out
}

// Path returns dlg.path, or nil for tokens outside the tree.
func (c *Claims) Path() []string {
	if c.Delegation == nil {
		return nil
	}
	return c.Delegation.Path
}

// PrincipalKey is the sub watermark value of the token: "iss|sub" with the issuer of sub.
func (c *Claims) PrincipalKey() string {
	iss := c.SubjectIssuer
	if iss == "" {
		iss = c.Issuer
	}
	return iss + "|" + c.Subject
}

// Keys returns every watermark key the token carries: its principal, client, every actor, tenant, class and the
// kid that signed it (spec/agent-auth.md §3.4 step 3).
func (c *Claims) Keys(kid string) []MarkKey {
	keys := []MarkKey{{MarkSubject, c.PrincipalKey()}, {MarkClient, c.ClientID}, {MarkActor, c.ClientID}}
	for _, a := range c.Actors() {
		if a != c.ClientID {
			keys = append(keys, MarkKey{MarkActor, a})
		}
	}
	if c.Tenant != "" {
		keys = append(keys, MarkKey{MarkTenant, c.Tenant})
	}
	if c.AgentClass != "" {
		keys = append(keys, MarkKey{MarkClass, c.AgentClass})
	}
	if kid != "" {
		keys = append(keys, MarkKey{MarkSigningKey, kid})
	}
	return keys
}

// actorChain builds an act claim from a list, the current actor first.
func actorChain(actors []string) *Actor {
	var act *Actor
	for _, a := range slices.Backward(actors) {
		act = &Actor{Subject: a, Act: act}
	}
	return act
}
