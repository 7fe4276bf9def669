package jetstream

import (
	"path/filepath"
	"testing"

	"github.com/ssfd/ssfd/storage/bolt"
)

// FuzzApplyStateCommand feeds arbitrary commands of every kind to a view, as a log written by a broken or
// hostile client would: applying one never panics, and applying the same command to two fresh views gives the
// same outcome (every replica must decide alike).
func FuzzApplyStateCommand(f *testing.F) {
	kinds := []stateKind{stateCreateClient, stateSwapClient, stateCreateNode, stateRevoke, stateSetEmitted,
		statePutRefresh, stateRotateRefresh, stateUseOnce, stateAccept, stateHandled, stateForget, "unknown"}
	f.Add(uint8(0), []byte(`{"client":{"client_id":"c"}}`))
	f.Add(uint8(2), []byte(`{"node":{"sid":"s1","client_id":"c","created_at":"2026-01-01T00:00:00Z"}}`))
	f.Add(uint8(3), []byte(`{"op":{"id":"o1","kind":"revoke_jti","jti":"j"}}`))
	f.Add(uint8(7), []byte(`{"key":"k","until":"2030-01-01T00:00:00Z","now":"2026-01-01T00:00:00Z"}`))
	f.Add(uint8(8), []byte(`{"entry":{"Registration":"r","Issuer":"i","JTI":"j","Claims":"e30="},"until":"2030-01-01T00:00:00Z"}`))
	f.Add(uint8(9), []byte(`{"seqs":[1,2,3]}`))
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		kind := kinds[int(k)%len(kinds)]
		var outcomes [2]string
		for i := range outcomes {
			view, err := bolt.Open(filepath.Join(t.TempDir(), "view.db"), bolt.WithoutSync(), bolt.WithBatchDelay(0))
			if err != nil {
				t.Fatal(err)
			}
			res := (&State{view: view}).apply(kind, data)
			outcomes[i] = "ok"
			if res.err != nil {
				outcomes[i] = res.err.Error()
			}
			_ = view.Close()
		}
		if outcomes[0] != outcomes[1] {
			t.Fatalf("%s applied twice to fresh views decided %q, then %q", kind, outcomes[0], outcomes[1])
		}
	})
}
