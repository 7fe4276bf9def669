package issuer

import "time"

// NodeKind says where a node sits in the session/delegation tree (spec/agent-auth.md §3.1).
type NodeKind string

// The node kinds.
const (
	// NodeUser is a root node for a human session, created by the sessions API or, later, by exchanging an
	// external IdP's token.
	NodeUser NodeKind = "user"
	// NodeWorkload is a root node for an agent acting as itself (client credentials): one per run, shared by
	// every token of that run.
	NodeWorkload NodeKind = "workload"
	// NodeDelegated is a node created by a token exchange: one hop of delegation.
	NodeDelegated NodeKind = "delegated"
)

// Principal is the root principal of a tree: a human as issued by an IdP, or an autonomous agent (then Issuer is
// this issuer and Subject the client ID).
type Principal struct {
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
}

// Node is one node of the session/delegation tree (spec/agent-auth.md §3.1). Tokens carry its ID as sid and
// the path from the root to it as dlg.path, so revoking a node rejects every token below it without listing them.
type Node struct {
	// ID is the session id ("s_" and 128 random bits).
	ID string `json:"sid"`
	// Kind is user, workload or delegated.
	Kind NodeKind `json:"kind"`
	// Parent is the parent's ID; empty for a root.
	Parent string `json:"parent_sid,omitempty"`
	// Path lists the node ids from the root to this node; its last element is ID.
	Path []string `json:"path"`
	// Depth is the number of delegation hops from the root (the root is 0).
	Depth int `json:"depth"`
	// MaxDepth is the deepest a descendant may be.
	MaxDepth int `json:"max_depth"`
	// Tenant is the tenant the tree belongs to.
	Tenant string `json:"tenant"`
	// Principal is the root principal: the sub of every token in the tree.
	Principal Principal `json:"principal"`
	// ClientID is the client acting in this node (the current actor); for a user root, the agent the session
	// was opened for.
	ClientID string `json:"client_id"`
	// Actors is the act chain of the node's tokens, the current actor first and the oldest last; empty for roots.
	Actors []string `json:"actors,omitempty"`
	// Class is the acting client's agent class (blueprint), if it has one.
	Class string `json:"agent_class,omitempty"`
	// JKT is the thumbprint of the DPoP key the node's tokens are bound to; "" when unbound.
	JKT string `json:"jkt,omitempty"`
	// Scopes and Resources are the ceiling of the node's tokens and of every descendant.
	Scopes    []string `json:"scopes"`
	Resources []string `json:"resources"`
	// ACR, AMR and AuthTime come from a human root and are copied into every token of the tree.
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	// CreatedAt and ExpiresAt bound its life; a child never outlives its parent.
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// RevokedAt is when the node was revoked (zero while active); RevokedBy is the op that did it.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Active reports whether the node is neither revoked nor expired at now.
func (n *Node) Active(now time.Time) bool { return n.RevokedAt.IsZero() && now.Before(n.ExpiresAt) }

// Keys returns the watermark keys a node matches: its principal, its client, every actor, its tenant and its
// class.
func (n *Node) Keys() []MarkKey {
	keys := []MarkKey{
		{Kind: MarkSubject, Value: n.Principal.Key()},
		{Kind: MarkClient, Value: n.ClientID},
		{Kind: MarkTenant, Value: n.Tenant},
	}
	for _, a := range n.Actors {
		keys = append(keys, MarkKey{Kind: MarkActor, Value: a})
	}
	if n.Kind == NodeWorkload {
		keys = append(keys, MarkKey{Kind: MarkActor, Value: n.ClientID})
	}
	if n.Class != "" {
		keys = append(keys, MarkKey{Kind: MarkClass, Value: n.Class})
	}
	return keys
}

// Key is the watermark value of a principal: "iss|sub".
func (p Principal) Key() string { return p.Issuer + "|" + p.Subject }
