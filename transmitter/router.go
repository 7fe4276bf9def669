package transmitter

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// route is one stream as the router sees it: the stream and its subject entries.
type route struct {
	stream   *streams.Stream
	subjects []streams.SubjectEntry
}

// routeCache holds the routing table in memory, so that an emit costs no storage read and no lock: emits read it
// through an atomic pointer. Every change to a stream or its subjects invalidates it (under the mutex, so a
// reload that read the old state can never be stored after the invalidation); the next emit reloads it.
type routeCache struct {
	cur  atomic.Pointer[[]route]
	mu   sync.Mutex
	load func(context.Context) ([]route, error)
}

func (c *routeCache) get(ctx context.Context) ([]route, error) {
	if p := c.cur.Load(); p != nil {
		return *p, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.cur.Load(); p != nil {
		return *p, nil
	}
	table, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	c.cur.Store(&table)
	return table, nil
}

func (c *routeCache) invalidate() {
	c.mu.Lock()
	c.cur.Store(nil)
	c.mu.Unlock()
}

func (t *Transmitter) loadRoutes(ctx context.Context) ([]route, error) {
	all, err := t.store.ListStreams(ctx)
	if err != nil {
		return nil, err
	}
	table := make([]route, 0, len(all))
	for _, s := range all {
		subjects, err := t.store.Subjects(ctx, s.ID())
		if err != nil {
			return nil, err
		}
		table = append(table, route{stream: s, subjects: subjects})
	}
	return table, nil
}

// match returns the streams that must carry an event of type et about subject (DESIGN.md "Router"): status
// enabled or paused, the type in events_delivered, and the subject on the stream by the default_subjects rule
// and SSF 1.0 §8.1.3.1 matching.
func (t *Transmitter) match(table []route, et schemas.EventType, subject schemas.Subject) []*streams.Stream {
	var out []*streams.Stream
	for _, r := range table {
		if r.stream.Accepts() && r.stream.Delivers(et) && streams.Carries(t.subjects, r.subjects, subject) {
			out = append(out, r.stream)
		}
	}
	return out
}
