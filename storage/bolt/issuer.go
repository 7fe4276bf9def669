package bolt

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/streams"
)

// The issuer's buckets. Keys made of several strings join them with a 0 byte; times are stored as timeValue.
var (
	bucketIssClients   = []byte("iss_clients")   // client id → JSON issuer.Client
	bucketIssNodes     = []byte("iss_nodes")     // sid → JSON issuer.Node
	bucketIssChildren  = []byte("iss_children")  // parent sid 0x00 child sid → empty
	bucketIssNodeKeys  = []byte("iss_nodekeys")  // mark kind 0x00 value 0x00 sid → empty: the nodes a watermark hits
	bucketIssWorkloads = []byte("iss_workloads") // client id 0x00 jkt 0x00 created-at (sortable) sid → empty
	bucketIssJTIs      = []byte("iss_jtis")      // revoked jti → expiry
	bucketIssSIDs      = []byte("iss_sids")      // sid named by a revoke_node op → expiry, known node or not
	bucketIssMarks     = []byte("iss_marks")     // mark kind 0x00 value → latest watermark time
	bucketIssBlocks    = []byte("iss_blocks")    // mark kind 0x00 value → id of the disable op, while disabled
	bucketIssOps       = []byte("iss_ops")       // seq → JSON issuer.Op: the revocation log
	bucketIssOpIDs     = []byte("iss_opids")     // op id → seq
	bucketIssRefresh   = []byte("iss_refresh")   // token hash → JSON issuer.Refresh
	bucketIssOnce      = []byte("iss_once")      // SHA-256 of a one-time key → expiry
	keyIssEmitted      = []byte("iss_emitted")   // in meta: seq of the last op handed to the EventSink
	keyIssOnceSweep    = []byte("iss_sweep")     // in meta: the one-time key the next sweep of expired ones starts at
)

// issuerBuckets are created by initLayout.
var issuerBuckets = [][]byte{bucketIssClients, bucketIssNodes, bucketIssChildren, bucketIssNodeKeys,
	bucketIssWorkloads, bucketIssJTIs, bucketIssSIDs, bucketIssMarks, bucketIssBlocks, bucketIssOps, bucketIssOpIDs,
	bucketIssRefresh, bucketIssOnce}

// defaultOpsLimit is how many ops Ops returns when asked for limit <= 0; onceSweep is how many one-time keys
// UseOnce looks at for expired ones.
const (
	defaultOpsLimit = 100
	onceSweep       = 100
)

var _ issuer.Store = (*DB)(nil)

// issView and issUpdate run a transaction and report a closed store as issuer.ErrClosed.
func (db *DB) issView(fn func(*bbolt.Tx) error) error { return closedAsIssuer(db.view(fn)) }

func (db *DB) issUpdate(fn func(*bbolt.Tx) error) error { return closedAsIssuer(db.update(fn)) }

func closedAsIssuer(err error) error {
	if errors.Is(err, streams.ErrClosed) {
		return fmt.Errorf("bolt: %w", issuer.ErrClosed)
	}
	return err
}

// joinKey joins parts with 0 bytes; joinKey(a, "") is the prefix of every joinKey(a, b).
func joinKey(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

func markKey(k issuer.MarkKey) []byte { return joinKey(string(k.Kind), k.Value) }

// timeValue encodes t as 8 bytes of Unix seconds and 4 of nanoseconds, the seconds with the sign bit flipped so
// that the bytes sort like the times.
func timeValue(t time.Time) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func parseTime(b []byte) (time.Time, bool) {
	if len(b) != 12 {
		return time.Time{}, false
	}
	sec := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
	return time.Unix(sec, int64(binary.BigEndian.Uint32(b[8:]))), true
}

func getTime(b *bbolt.Bucket, key []byte) (time.Time, bool) { return parseTime(b.Get(key)) }

// putLater stores t under key unless a later time is stored there already.
func putLater(b *bbolt.Bucket, key []byte, t time.Time) error {
	if old, ok := getTime(b, key); ok && !t.After(old) {
		return nil
	}
	return b.Put(key, timeValue(t))
}

// getJSON decodes the value of key into v and reports whether there was one.
func getJSON(b *bbolt.Bucket, key []byte, what string, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("bolt: decode %s %s: %w", what, key, err)
	}
	return true, nil
}

func putJSON(b *bbolt.Bucket, key []byte, what string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("bolt: encode %s %s: %w", what, key, err)
	}
	return b.Put(key, raw)
}

// suffixes returns the rest of every key of b that starts with prefix, in key order.
func suffixes(b *bbolt.Bucket, prefix []byte) []string {
	var out []string
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if rest := k[len(prefix):]; bytes.IndexByte(rest, 0) < 0 { // else it belongs to a longer value
			out = append(out, string(rest))
		}
	}
	return out
}

// Clients.

func getClient(tx *bbolt.Tx, id string) (*issuer.Client, error) {
	var c issuer.Client
	ok, err := getJSON(tx.Bucket(bucketIssClients), []byte(id), "client", &c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("bolt: client %s: %w", id, issuer.ErrNotFound)
	}
	return &c, nil
}

// CreateClient registers c; issuer.ErrExists when its ID is taken.
func (db *DB) CreateClient(ctx context.Context, c *issuer.Client) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.ID == "" {
		return errors.New("bolt: a client needs an ID")
	}
	return db.issUpdate(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketIssClients)
		if b.Get([]byte(c.ID)) != nil {
			return fmt.Errorf("bolt: client %s: %w", c.ID, issuer.ErrExists)
		}
		return putJSON(b, []byte(c.ID), "client", c)
	})
}

// Client returns a copy of the client with id, or issuer.ErrNotFound.
func (db *DB) Client(ctx context.Context, id string) (*issuer.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c *issuer.Client
	err := db.issView(func(tx *bbolt.Tx) error {
		var err error
		c, err = getClient(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Clients lists every client, ordered by ID.
func (db *DB) Clients(ctx context.Context) ([]*issuer.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []*issuer.Client{}
	err := db.issView(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketIssClients).ForEach(func(id, raw []byte) error {
			var c issuer.Client
			if err := json.Unmarshal(raw, &c); err != nil {
				return fmt.Errorf("bolt: decode client %s: %w", id, err)
			}
			out = append(out, &c)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateClient applies change to the stored client in one transaction; an error from change is returned and
// nothing is written. change may not alter the ID.
func (db *DB) UpdateClient(ctx context.Context, id string, change func(*issuer.Client) error) (*issuer.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c *issuer.Client
	err := db.issUpdate(func(tx *bbolt.Tx) error {
		var err error
		if c, err = getClient(tx, id); err != nil {
			return err
		}
		if err := change(c); err != nil {
			return err
		}
		if c.ID != id {
			return fmt.Errorf("bolt: an update may not change the client ID %s", id)
		}
		return putJSON(tx.Bucket(bucketIssClients), []byte(id), "client", c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Nodes.

func getNode(tx *bbolt.Tx, sid string) (*issuer.Node, error) {
	var n issuer.Node
	ok, err := getJSON(tx.Bucket(bucketIssNodes), []byte(sid), "node", &n)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("bolt: node %s: %w", sid, issuer.ErrNotFound)
	}
	return &n, nil
}

func putNode(tx *bbolt.Tx, n *issuer.Node) error {
	return putJSON(tx.Bucket(bucketIssNodes), []byte(n.ID), "node", n)
}

func children(tx *bbolt.Tx, sid string) []string {
	return suffixes(tx.Bucket(bucketIssChildren), joinKey(sid, ""))
}

// workloadKey sorts a client's workload nodes for one jkt by creation time.
func workloadKey(clientID, jkt string, created time.Time, sid string) []byte {
	k := append(joinKey(clientID, jkt, ""), timeValue(created)...)
	return append(k, sid...)
}

// checkParent refuses a node whose parent is unknown, or revoked or expired at the node's creation.
func checkParent(tx *bbolt.Tx, n *issuer.Node) error {
	p, err := getNode(tx, n.Parent)
	if err != nil {
		return fmt.Errorf("bolt: parent of node %s: %w", n.ID, err)
	}
	if !p.Active(n.CreatedAt) || tx.Bucket(bucketIssSIDs).Get([]byte(p.ID)) != nil {
		return fmt.Errorf("bolt: parent %s of node %s: %w", p.ID, n.ID, issuer.ErrRevoked)
	}
	return nil
}

// indexNode writes the children, watermark and workload index entries of a new node.
func indexNode(tx *bbolt.Tx, n *issuer.Node) error {
	if n.Parent != "" {
		if err := tx.Bucket(bucketIssChildren).Put(joinKey(n.Parent, n.ID), nil); err != nil {
			return err
		}
	}
	keys := tx.Bucket(bucketIssNodeKeys)
	for _, k := range n.Keys() {
		if k.Value == "" {
			continue // no watermark has an empty value
		}
		if err := keys.Put(joinKey(string(k.Kind), k.Value, n.ID), nil); err != nil {
			return err
		}
	}
	if n.Kind != issuer.NodeWorkload || n.Parent != "" {
		return nil
	}
	return tx.Bucket(bucketIssWorkloads).Put(workloadKey(n.ClientID, n.JKT, n.CreatedAt, n.ID), nil)
}

// CreateNode stores n. A node with a parent needs the parent to exist (else issuer.ErrNotFound) and to be active
// at n.CreatedAt (else issuer.ErrRevoked), checked in the transaction that writes n.
func (db *DB) CreateNode(ctx context.Context, n *issuer.Node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n.ID == "" {
		return errors.New("bolt: a node needs an ID")
	}
	return closedAsIssuer(db.batch(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketIssNodes).Get([]byte(n.ID)) != nil {
			return fmt.Errorf("bolt: node %s: %w", n.ID, issuer.ErrExists)
		}
		if n.Parent != "" {
			if err := checkParent(tx, n); err != nil {
				return err
			}
		}
		if err := putNode(tx, n); err != nil {
			return err
		}
		return indexNode(tx, n)
	}))
}

// Node returns a copy of the node with sid, or issuer.ErrNotFound.
func (db *DB) Node(ctx context.Context, sid string) (*issuer.Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var n *issuer.Node
	err := db.issView(func(tx *bbolt.Tx) error {
		var err error
		n, err = getNode(tx, sid)
		return err
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// Subtree returns the node with sid and its descendants breadth first, so each parent comes before its children;
// issuer.ErrNotFound when sid is unknown.
func (db *DB) Subtree(ctx context.Context, sid string) ([]*issuer.Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*issuer.Node
	err := db.issView(func(tx *bbolt.Tx) error {
		for queue := []string{sid}; len(queue) > 0; queue = queue[1:] {
			n, err := getNode(tx, queue[0])
			if err != nil {
				return err
			}
			out = append(out, n)
			queue = append(queue, children(tx, n.ID)...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WorkloadNode returns the newest root workload node of clientID bound to jkt that is active at now, or
// issuer.ErrNotFound.
func (db *DB) WorkloadNode(ctx context.Context, clientID, jkt string, now time.Time) (*issuer.Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var found *issuer.Node
	err := db.issView(func(tx *bbolt.Tx) error {
		var err error
		found, err = newestWorkload(tx, clientID, jkt, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// newestWorkload walks the workload index of (clientID, jkt) from the newest node back to the first active one.
func newestWorkload(tx *bbolt.Tx, clientID, jkt string, now time.Time) (*issuer.Node, error) {
	prefix := joinKey(clientID, jkt, "")
	end := bytes.Clone(prefix)
	end[len(end)-1] = 1 // the first key after every key with prefix
	c := tx.Bucket(bucketIssWorkloads).Cursor()
	k, _ := c.Seek(end)
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
		if len(k) < len(prefix)+12 {
			continue
		}
		n, err := getNode(tx, string(k[len(prefix)+12:]))
		if err != nil {
			return nil, err
		}
		if n.Kind == issuer.NodeWorkload && n.Active(now) {
			return n, nil
		}
	}
	return nil, fmt.Errorf("bolt: workload node of %s: %w", clientID, issuer.ErrNotFound)
}

// Revocation.

func getOp(tx *bbolt.Tx, seq []byte) (issuer.Op, error) {
	var op issuer.Op
	ok, err := getJSON(tx.Bucket(bucketIssOps), seq, "op", &op)
	if err == nil && !ok {
		err = fmt.Errorf("bolt: op %x is indexed but missing", seq)
	}
	return op, err
}

// Revoke validates op, appends it to the log and applies it, in one transaction. An op whose ID is logged already
// writes nothing and comes back as stored, with its Seq and without Nodes.
func (db *DB) Revoke(ctx context.Context, op issuer.Op) (issuer.Op, error) {
	if err := ctx.Err(); err != nil {
		return issuer.Op{}, err
	}
	if err := op.Validate(); err != nil {
		return issuer.Op{}, fmt.Errorf("bolt: revoke: %w", err)
	}
	var out issuer.Op
	err := db.issUpdate(func(tx *bbolt.Tx) error {
		var err error
		if seq := tx.Bucket(bucketIssOpIDs).Get([]byte(op.ID)); seq != nil {
			out, err = getOp(tx, seq)
			out.Nodes = nil
			return err
		}
		out, err = appendOp(tx, op)
		return err
	})
	if err != nil {
		return issuer.Op{}, err
	}
	return out, nil
}

// appendOp applies a new op and logs it with its Seq and the nodes it revoked.
func appendOp(tx *bbolt.Tx, op issuer.Op) (issuer.Op, error) {
	ops := tx.Bucket(bucketIssOps)
	seq, err := ops.NextSequence()
	if err != nil {
		return issuer.Op{}, fmt.Errorf("bolt: next op seq: %w", err)
	}
	op.Seq = seq
	if op.Nodes, err = applyOp(tx, op); err != nil {
		return issuer.Op{}, err
	}
	if err := putJSON(ops, seqKey(seq), "op", op); err != nil {
		return issuer.Op{}, err
	}
	if err := tx.Bucket(bucketIssOpIDs).Put([]byte(op.ID), seqKey(seq)); err != nil {
		return issuer.Op{}, err
	}
	return op, nil
}

// applyOp carries out op and returns the sids it revoked.
func applyOp(tx *bbolt.Tx, op issuer.Op) ([]string, error) {
	switch op.Kind {
	case issuer.OpRevokeJTI:
		return nil, putLater(tx.Bucket(bucketIssJTIs), []byte(op.JTI), op.ExpiresAt)
	case issuer.OpRevokeNode:
		if err := putLater(tx.Bucket(bucketIssSIDs), []byte(op.SID), op.ExpiresAt); err != nil {
			return nil, err
		}
		return revokeSubtrees(tx, []string{op.SID}, op)
	case issuer.OpWatermark:
		if err := putLater(tx.Bucket(bucketIssMarks), markKey(op.Key), op.At); err != nil {
			return nil, err
		}
		roots, err := matchingNodes(tx, op.Key)
		if err != nil {
			return nil, err
		}
		return revokeSubtrees(tx, roots, op)
	case issuer.OpDisable:
		return nil, tx.Bucket(bucketIssBlocks).Put(markKey(op.Key), []byte(op.ID))
	case issuer.OpEnable:
		return nil, tx.Bucket(bucketIssBlocks).Delete(markKey(op.Key))
	}
	return nil, fmt.Errorf("bolt: unknown op kind %q", op.Kind)
}

// matchingNodes returns the sids of the nodes a watermark on key hits, shallowest first, so that where a node
// and its descendant both match, the node's subtree is revoked (and listed) from the node down.
func matchingNodes(tx *bbolt.Tx, key issuer.MarkKey) ([]string, error) {
	var nodes []*issuer.Node
	for _, sid := range suffixes(tx.Bucket(bucketIssNodeKeys), joinKey(string(key.Kind), key.Value, "")) {
		n, err := getNode(tx, sid)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	slices.SortStableFunc(nodes, func(a, b *issuer.Node) int { return cmp.Compare(a.Depth, b.Depth) })
	sids := make([]string, len(nodes))
	for i, n := range nodes {
		sids[i] = n.ID
	}
	return sids, nil
}

// revokeSubtrees marks every node of roots that is not revoked yet, and its descendants, revoked by op, breadth
// first. Unknown sids are skipped, and so are revoked nodes with their subtrees: revoking a node revokes its
// descendants, and nothing can be created below a revoked node.
func revokeSubtrees(tx *bbolt.Tx, roots []string, op issuer.Op) ([]string, error) {
	var revoked []string
	for _, root := range roots {
		for queue := []string{root}; len(queue) > 0; queue = queue[1:] {
			n, err := getNode(tx, queue[0])
			if errors.Is(err, issuer.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if !n.RevokedAt.IsZero() {
				continue
			}
			n.RevokedAt, n.RevokedBy = op.At, op.ID
			if err := putNode(tx, n); err != nil {
				return nil, err
			}
			revoked = append(revoked, n.ID)
			queue = append(queue, children(tx, n.ID)...)
		}
	}
	return revoked, nil
}

// Standing answers q in one read transaction.
func (db *DB) Standing(ctx context.Context, q issuer.Query) (issuer.Standing, error) {
	if err := ctx.Err(); err != nil {
		return issuer.Standing{}, err
	}
	var s issuer.Standing
	err := db.issView(func(tx *bbolt.Tx) error {
		var err error
		if s.Revoked, err = revokedReason(tx, q); err != nil {
			return err
		}
		s.Blocked = firstBlocked(tx, q.Keys)
		s.LatestMark = latestMark(tx, q.Keys)
		return nil
	})
	if err != nil {
		return issuer.Standing{}, err
	}
	return s, nil
}

// revokedReason checks the jti, then the path from the root, then (for a token) the watermarks of its keys.
func revokedReason(tx *bbolt.Tx, q issuer.Query) (string, error) {
	if q.JTI != "" && tx.Bucket(bucketIssJTIs).Get([]byte(q.JTI)) != nil {
		return "jti", nil
	}
	for _, sid := range q.Path {
		revoked, err := nodeRevoked(tx, sid)
		if err != nil {
			return "", err
		}
		if revoked {
			return "node " + sid, nil
		}
	}
	if q.IssuedAt.IsZero() {
		return "", nil
	}
	marks := tx.Bucket(bucketIssMarks)
	for _, k := range q.Keys {
		// Ops are decided at whole seconds: a watermark rejects tokens with iat ≤ At.
		if at, ok := getTime(marks, markKey(k)); ok && q.IssuedAt.Unix() <= at.Unix() {
			return "watermark " + string(k.Kind), nil
		}
	}
	return "", nil
}

// nodeRevoked reports whether a revoke_node op named sid or its node record is revoked.
func nodeRevoked(tx *bbolt.Tx, sid string) (bool, error) {
	if tx.Bucket(bucketIssSIDs).Get([]byte(sid)) != nil {
		return true, nil
	}
	n, err := getNode(tx, sid)
	if errors.Is(err, issuer.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !n.RevokedAt.IsZero(), nil
}

func firstBlocked(tx *bbolt.Tx, keys []issuer.MarkKey) issuer.MarkKey {
	blocks := tx.Bucket(bucketIssBlocks)
	for _, k := range keys {
		if blocks.Get(markKey(k)) != nil {
			return k
		}
	}
	return issuer.MarkKey{}
}

func latestMark(tx *bbolt.Tx, keys []issuer.MarkKey) time.Time {
	var latest time.Time
	marks := tx.Bucket(bucketIssMarks)
	for _, k := range keys {
		if at, ok := getTime(marks, markKey(k)); ok && at.After(latest) {
			latest = at
		}
	}
	return latest
}

// Ops returns up to limit ops with Seq > after in Seq order; limit <= 0 means 100.
func (db *DB) Ops(ctx context.Context, after uint64, limit int) ([]issuer.Op, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = defaultOpsLimit
	}
	out := []issuer.Op{}
	if after == math.MaxUint64 {
		return out, nil
	}
	err := db.issView(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketIssOps).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var op issuer.Op
			if err := json.Unmarshal(v, &op); err != nil {
				return fmt.Errorf("bolt: decode op %x: %w", k, err)
			}
			out = append(out, op)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func emitted(tx *bbolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keyIssEmitted); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Emitted returns the outbox cursor: the Seq of the last op handed to the EventSink, 0 before the first.
func (db *DB) Emitted(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var seq uint64
	err := db.issView(func(tx *bbolt.Tx) error {
		seq = emitted(tx)
		return nil
	})
	return seq, err
}

// SetEmitted moves the outbox cursor forward to seq; a seq at or before the cursor changes nothing.
func (db *DB) SetEmitted(ctx context.Context, seq uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.issUpdate(func(tx *bbolt.Tx) error {
		if seq <= emitted(tx) {
			return nil
		}
		return tx.Bucket(bucketMeta).Put(keyIssEmitted, seqKey(seq))
	})
}

// Refresh tokens.

func putRefresh(tx *bbolt.Tx, r *issuer.Refresh) error {
	if r.Hash == "" {
		return errors.New("bolt: a refresh token needs a hash")
	}
	b := tx.Bucket(bucketIssRefresh)
	if b.Get([]byte(r.Hash)) != nil {
		return fmt.Errorf("bolt: refresh token %s: %w", r.Hash, issuer.ErrExists)
	}
	return putJSON(b, []byte(r.Hash), "refresh token", r)
}

// PutRefresh stores a new refresh token record; issuer.ErrExists when its hash is stored already.
func (db *DB) PutRefresh(ctx context.Context, r *issuer.Refresh) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.issUpdate(func(tx *bbolt.Tx) error { return putRefresh(tx, r) })
}

// Refresh returns a copy of the refresh token record with hash, used or not, or issuer.ErrNotFound.
func (db *DB) Refresh(ctx context.Context, hash string) (*issuer.Refresh, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var r *issuer.Refresh
	err := db.issView(func(tx *bbolt.Tx) error {
		var err error
		r, err = getRefresh(tx, hash)
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func getRefresh(tx *bbolt.Tx, hash string) (*issuer.Refresh, error) {
	var r issuer.Refresh
	ok, err := getJSON(tx.Bucket(bucketIssRefresh), []byte(hash), "refresh token", &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("bolt: refresh token %s: %w", hash, issuer.ErrNotFound)
	}
	return &r, nil
}

// RotateRefresh marks the refresh token with hash used and stores next (when not nil) in one transaction, and
// returns the used record. issuer.ErrNotFound for an unknown hash; issuer.ErrReplay with the record, writing
// nothing, when it was used before.
func (db *DB) RotateRefresh(ctx context.Context, hash string, next *issuer.Refresh) (*issuer.Refresh, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var used *issuer.Refresh
	err := db.issUpdate(func(tx *bbolt.Tx) error {
		var err error
		used, err = rotate(tx, hash, next)
		return err
	})
	switch {
	case errors.Is(err, issuer.ErrReplay):
		return used, err
	case err != nil:
		return nil, err
	}
	return used, nil
}

func rotate(tx *bbolt.Tx, hash string, next *issuer.Refresh) (*issuer.Refresh, error) {
	r, err := getRefresh(tx, hash)
	if err != nil {
		return nil, err
	}
	if r.Used {
		return r, fmt.Errorf("bolt: refresh token %s: %w", hash, issuer.ErrReplay)
	}
	r.Used = true
	if err := putJSON(tx.Bucket(bucketIssRefresh), []byte(hash), "refresh token", r); err != nil {
		return nil, err
	}
	if next != nil {
		if err := putRefresh(tx, next); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// One-time values.

// UseOnce records key until the given time; issuer.ErrReplay when key is recorded and its time is still ahead.
// Each call also forgets up to 100 expired keys, resuming where the previous call stopped. It is UseOnceAt at
// time.Now().
func (db *DB) UseOnce(ctx context.Context, key string, until time.Time) error {
	return db.UseOnceAt(ctx, key, until, time.Now())
}

// UseOnceAt is UseOnce with the current time given: key counts as recorded while its time is after now, and the
// sweep forgets keys expired at now. Its effect depends on its arguments only, never on the wall clock, so a
// replica of a replicated log (storage/jetstream) reaches the same state as every other replica.
func (db *DB) UseOnceAt(ctx context.Context, key string, until, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return errors.New("bolt: a one-time key may not be empty")
	}
	sum := sha256.Sum256([]byte(key)) // keys come from requests: hashed, any length fits
	return db.issUpdate(func(tx *bbolt.Tx) error {
		once := tx.Bucket(bucketIssOnce)
		if t, ok := getTime(once, sum[:]); ok && t.After(now) {
			return fmt.Errorf("bolt: one-time key: %w", issuer.ErrReplay)
		}
		if err := sweepOnce(tx, now); err != nil {
			return err
		}
		return once.Put(sum[:], timeValue(until))
	})
}

// sweepOnce deletes the expired keys among the next onceSweep one-time keys and remembers where to go on.
func sweepOnce(tx *bbolt.Tx, now time.Time) error {
	meta, once := tx.Bucket(bucketMeta), tx.Bucket(bucketIssOnce)
	start := bytes.Clone(meta.Get(keyIssOnceSweep))
	c := once.Cursor()
	k, v := c.First()
	if start != nil {
		k, v = c.Seek(start)
	}
	var expired [][]byte
	for i := 0; k != nil && i < onceSweep; i++ {
		if t, ok := parseTime(v); !ok || !t.After(now) {
			expired = append(expired, bytes.Clone(k))
		}
		k, v = c.Next()
	}
	next := bytes.Clone(k) // nil at the end: the next sweep starts from the first key
	for _, k := range expired {
		if err := once.Delete(k); err != nil {
			return err
		}
	}
	switch {
	case next != nil:
		return meta.Put(keyIssOnceSweep, next)
	case start != nil:
		return meta.Delete(keyIssOnceSweep)
	}
	return nil
}
