package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	"github.com/ssfd/ssfd/streams"
)

// fakeSET is the size of an ES256 SET.
var fakeSET = string(make([]byte, 620))

// BenchmarkEnqueue measures durable SETs/s with N concurrent callers each enqueueing one SET per call, the shape
// of many concurrent emits: the group commit turns them into one fsync per batch.
func BenchmarkEnqueue(b *testing.B) {
	for _, callers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "ssfd.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			id := streams.NewID()
			if err := db.CreateStream(context.Background(), &streams.Stream{Config: schemas.StreamConfiguration{StreamID: string(id)}}); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			b.ResetTimer()
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n.Add(1) <= int64(b.N) {
						it := streams.Item{Stream: id, JTI: fmt.Sprint(n.Load()), SET: fakeSET, Queued: time.Now()}
						if err := db.Enqueue(context.Background(), []streams.Item{it}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "SETs/s")
		})
	}
}

// BenchmarkRawBoltCommit is the raw limit of one fsynced bbolt transaction per SET.
func BenchmarkRawBoltCommit(b *testing.B) {
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		if err := db.Update(func(tx *bbolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("q"))
			if err != nil {
				return err
			}
			return bk.Put([]byte(fmt.Sprint(i)), []byte(fakeSET))
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "SETs/s")
}
