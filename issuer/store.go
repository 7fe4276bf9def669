package issuer

import (
	"context"
	"errors"
	"time"
)

// Errors of the issuer's stores. Handlers translate them to OAuth errors; stores wrap them with %w.
var (
	// ErrNotFound: no client, node or refresh token with this id.
	ErrNotFound = errors.New("issuer: not found")
	// ErrExists: a client with this id is registered already.
	ErrExists = errors.New("issuer: already exists")
	// ErrRevoked: the node (or an ancestor) is revoked or expired, so nothing may hang below it.
	ErrRevoked = errors.New("issuer: revoked")
	// ErrReplay: a one-time value (client assertion jti, DPoP proof jti, used refresh token) was seen before.
	ErrReplay = errors.New("issuer: replayed")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("issuer: store closed")
)

// Store is the issuer's durable state: clients, the session/delegation tree, the append-only revocation log with
// its outbox cursor, refresh tokens and one-time values. It is shaped for backends without multi-key
// transactions too (a JetStream KV backend): every method is one atomic step.
//
// storage/bolt implements it; storage/storetest.TestIssuerStore is its conformance suite.
type Store interface {
	// CreateClient registers c; ErrExists when its ID is taken.
	CreateClient(ctx context.Context, c *Client) error
	// Client returns the client with id, or ErrNotFound.
	Client(ctx context.Context, id string) (*Client, error)
	// Clients lists every client, ordered by ID.
	Clients(ctx context.Context) ([]*Client, error)
	// UpdateClient applies change to the stored client and stores the result atomically; an error from change
	// is returned and nothing is written.
	UpdateClient(ctx context.Context, id string, change func(*Client) error) (*Client, error)

	// CreateNode stores n. When n has a parent, the parent must exist (else ErrNotFound) and be active at
	// n.CreatedAt, neither revoked nor expired (else ErrRevoked), checked in the same step as the write, so a
	// node can never be created below a node whose revocation was committed first.
	CreateNode(ctx context.Context, n *Node) error
	// Node returns the node with sid, or ErrNotFound.
	Node(ctx context.Context, sid string) (*Node, error)
	// Subtree returns the node with sid and all its descendants, each parent before its children; ErrNotFound
	// when sid is unknown.
	Subtree(ctx context.Context, sid string) ([]*Node, error)
	// WorkloadNode returns the newest active (not revoked, not expired at now) root workload node of clientID
	// bound to the key thumbprint jkt ("" for bearer tokens), or ErrNotFound.
	WorkloadNode(ctx context.Context, clientID, jkt string, now time.Time) (*Node, error)

	// Revoke appends op to the revocation log and applies it in the same step: revoke_jti records the jti;
	// revoke_node marks the node and every descendant revoked; watermark keeps the latest time per key and
	// revokes every active node matching the key (with their descendants); disable and enable set or lift the
	// issuance block of the key. An op whose ID is in the log already changes nothing and is returned as
	// stored. The returned op has Seq set and Nodes listing the sids this op revoked (none for a repeat).
	Revoke(ctx context.Context, op Op) (Op, error)
	// Standing answers the revocation questions about one token or one request in one consistent read.
	Standing(ctx context.Context, q Query) (Standing, error)
	// Ops returns up to limit ops of the log with Seq > after, in Seq order.
	Ops(ctx context.Context, after uint64, limit int) ([]Op, error)
	// Emitted returns the outbox cursor: the Seq of the last op handed to the EventSink.
	Emitted(ctx context.Context) (uint64, error)
	// SetEmitted moves the outbox cursor forward to seq; it never moves back.
	SetEmitted(ctx context.Context, seq uint64) error

	// Refresh returns the refresh token record with hash, or ErrNotFound.
	Refresh(ctx context.Context, hash string) (*Refresh, error)
	// PutRefresh stores a new refresh token record.
	PutRefresh(ctx context.Context, r *Refresh) error
	// RotateRefresh marks the refresh token with hash used and stores next, in one step, and returns the used
	// record. ErrNotFound for an unknown hash; ErrReplay, with the record, when it was used before.
	RotateRefresh(ctx context.Context, hash string, next *Refresh) (*Refresh, error)

	// UseOnce records key until the given time; ErrReplay when key was recorded before and has not expired.
	// Expired keys may be forgotten.
	UseOnce(ctx context.Context, key string, until time.Time) error
}

// Query asks Store.Standing about a token (JTI, Path, Keys, IssuedAt) or a request about to mint one (Path, Keys,
// with IssuedAt zero).
type Query struct {
	// JTI is the token's id; empty for a request.
	JTI string
	// Path lists the node ids from the root to the token's node.
	Path []string
	// Keys are the watermark and block keys the token carries: its sub, client, every actor, tenant, class, kid.
	Keys []MarkKey
	// IssuedAt is the token's iat; watermarks at or after it revoke it.
	IssuedAt time.Time
}

// Standing is what Store.Standing found.
type Standing struct {
	// Revoked says why the token is revoked ("jti", "node <sid>", "watermark <kind>"), "" when it is not. For a
	// request (IssuedAt zero) only the jti and nodes count.
	Revoked string
	// Blocked is the first key of the query whose issuance is disabled, zero when none is.
	Blocked MarkKey
	// LatestMark is the latest watermark time over the query's keys, zero when none has one. A token minted for
	// these keys must have iat after it (spec/agent-auth.md §3.2 rule 1).
	LatestMark time.Time
}

// Refresh is a stored refresh token: bound to one node and one client, rotating on every use (spec/agent-auth.md
// §2.4). Only its SHA-256 hash is stored.
type Refresh struct {
	// Hash is the hex SHA-256 of the token value.
	Hash string `json:"hash"`
	// NodeID is the node the token belongs to; tokens minted from it carry this sid.
	NodeID string `json:"sid"`
	// ClientID is the client it was issued to; only that client may use it.
	ClientID string `json:"client_id"`
	// Scopes and Resources bound what it can mint.
	Scopes    []string `json:"scopes"`
	Resources []string `json:"resources"`
	// JKT is the DPoP key thumbprint it is bound to, "" when unbound.
	JKT string `json:"jkt,omitempty"`
	// ParentJTI is the jti of the subject token of the exchange that created the node.
	ParentJTI string `json:"parent_jti,omitempty"`
	// IssuedAt and ExpiresAt bound its life.
	IssuedAt  time.Time `json:"iat"`
	ExpiresAt time.Time `json:"exp"`
	// Used is set when it was exchanged for its successor.
	Used bool `json:"used,omitempty"`
}
