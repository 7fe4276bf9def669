package revocation

import (
	"strings"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// Claims are the claims of an ssfd access token a resource server looks at (RFC 9068 plus spec/agent-auth.md
// §2.5). The issuer package writes them; this package reads them without importing it.
type Claims struct {
	Issuer        string           `json:"iss"`
	Subject       string           `json:"sub"`
	SubjectIssuer string           `json:"sub_iss,omitempty"`
	Audience      schemas.Audience `json:"aud"`
	ClientID      string           `json:"client_id"`
	IssuedAt      int64            `json:"iat"`
	ExpiresAt     int64            `json:"exp"`
	NotBefore     int64            `json:"nbf,omitempty"`
	JTI           string           `json:"jti"`
	Scope         string           `json:"scope,omitempty"`
	Act           *Actor           `json:"act,omitempty"`
	SID           string           `json:"sid,omitempty"`
	Delegation    *Delegation      `json:"dlg,omitempty"`
	Tenant        string           `json:"tenant,omitempty"`
	AgentClass    string           `json:"agent_class,omitempty"`
	Cnf           *Confirmation    `json:"cnf,omitempty"`
}

// Actor is an RFC 8693 act claim.
type Actor struct {
	Subject string `json:"sub"`
	Act     *Actor `json:"act,omitempty"`
}

// Delegation is the dlg claim: the node path from the root to the token's node.
type Delegation struct {
	Depth    int      `json:"depth"`
	MaxDepth int      `json:"max_depth"`
	Path     []string `json:"path"`
}

// Confirmation is the cnf claim of a DPoP-bound token.
type Confirmation struct {
	JKT string `json:"jkt,omitempty"`
}

// Scopes returns the scope claim as a list.
func (c *Claims) Scopes() []string { return strings.Fields(c.Scope) }

// Actors returns the act chain, the current actor first; at most maxActors deep.
func (c *Claims) Actors() []string {
	var out []string
	for a := c.Act; a != nil && len(out) < maxActors; a = a.Act {
		out = append(out, a.Subject)
	}
	return out
}

// maxActors bounds how deep an act chain is read (the issuer's hard cap is 6 hops).
const maxActors = 16

// Token returns what the index checks for these claims, kid being the key that signed them: the jti, iat, the
// dlg path, and the watermark keys — the root principal ("iss|sub"), the client, the client and every actor as
// actor keys, the tenant, the agent class and the signing key (spec/agent-auth.md §3.4 step 3).
func (c *Claims) Token(kid string) Token {
	iss := c.SubjectIssuer
	if iss == "" {
		iss = c.Issuer
	}
	keys := make([]Key, 0, 8)
	keys = append(keys, Key{KeySubject, iss + "|" + c.Subject}, Key{KeyClient, c.ClientID}, Key{KeyActor, c.ClientID})
	for _, a := range c.Actors() {
		if a != c.ClientID {
			keys = append(keys, Key{KeyActor, a})
		}
	}
	if c.Tenant != "" {
		keys = append(keys, Key{KeyTenant, c.Tenant})
	}
	if c.AgentClass != "" {
		keys = append(keys, Key{KeyClass, c.AgentClass})
	}
	if kid != "" {
		keys = append(keys, Key{KeySigningKey, kid})
	}
	var path []string
	if c.Delegation != nil {
		path = c.Delegation.Path
	}
	if len(path) == 0 && c.SID != "" {
		path = []string{c.SID}
	}
	return Token{JTI: c.JTI, IssuedAt: time.Unix(c.IssuedAt, 0), Path: path, Keys: keys}
}
