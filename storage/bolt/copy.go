package bolt

import (
	"fmt"
	"io"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssfd/ssfd/streams"
)

// Copy is a read transaction held open to copy the whole database as it was when BeginCopy returned: writes
// committed later are not in it. Close it soon: while it is open, Close of the DB waits for it, and a commit that
// must grow the file waits for it too (bbolt cannot remap the file under an open read transaction).
type Copy struct {
	tx      *bbolt.Tx
	release sync.Once
	unlock  func()
}

// BeginCopy opens a Copy of the database. It returns streams.ErrClosed after Close.
func (db *DB) BeginCopy() (*Copy, error) {
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return nil, streams.ErrClosed
	}
	tx, err := db.db.Begin(false)
	if err != nil {
		db.mu.RUnlock()
		return nil, fmt.Errorf("bolt: begin a copy: %w", err)
	}
	return &Copy{tx: tx, unlock: db.mu.RUnlock}, nil
}

// WriteTo writes the copy to w as a database file that Open accepts.
func (c *Copy) WriteTo(w io.Writer) (int64, error) {
	n, err := c.tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("bolt: write a copy: %w", err)
	}
	return n, nil
}

// Close ends the copy's read transaction; calls after the first do nothing.
func (c *Copy) Close() error {
	var err error
	c.release.Do(func() {
		err = c.tx.Rollback()
		c.unlock()
	})
	return err
}
