package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ssfd/ssfd/internal/keys"
)

// keySet signs SETs with one key ring per algorithm and publishes the union of their JWKS. It implements
// transmitter.Signer.
type keySet struct {
	dir   string
	rings map[string]*keys.Ring
	algs  []string
}

// openKeySet loads the ring of every algorithm from dir (keys/set-<alg>.json, mode 0600), creating the ones that
// do not exist yet.
func openKeySet(dir string, algs []string) (*keySet, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("server: key directory: %w", err)
	}
	ks := &keySet{dir: dir, rings: map[string]*keys.Ring{}, algs: algs}
	for _, name := range algs {
		alg, err := keys.ParseAlgorithm(name)
		if err != nil {
			return nil, err
		}
		ring, err := openRing(ks.path(name), alg)
		if err != nil {
			return nil, fmt.Errorf("server: %s signing keys: %w", name, err)
		}
		ks.rings[name] = ring
	}
	return ks, nil
}

// openRing loads the key ring of alg from path, or creates and saves a new one (mode 0600) when there is none.
func openRing(path string, alg keys.Algorithm) (*keys.Ring, error) {
	ring, err := keys.LoadRing(path)
	if errors.Is(err, os.ErrNotExist) {
		if ring, err = keys.NewRing(alg); err == nil {
			err = keys.SaveRing(path, ring)
		}
	}
	return ring, err
}

// path is the file of alg's ring.
func (k *keySet) path(alg string) string { return filepath.Join(k.dir, "set-"+alg+".json") }

// rotate rotates every ring while SETs are being signed and saves each: the next key, published since the last
// rotation, signs from now on; the active key is retired and stays published.
func (k *keySet) rotate() error {
	for _, alg := range k.algs {
		ring := k.rings[alg]
		if err := ring.Rotate(); err != nil {
			return fmt.Errorf("server: rotate %s: %w", alg, err)
		}
		if err := keys.SaveRing(k.path(alg), ring); err != nil {
			return fmt.Errorf("server: save %s ring: %w", alg, err)
		}
	}
	return nil
}

// Sign signs claims with the active key of alg, typ secevent+jwt.
func (k *keySet) Sign(alg string, claims []byte) (string, error) {
	ring, ok := k.rings[alg]
	if !ok {
		return "", fmt.Errorf("server: no signing key for %s", alg)
	}
	return ring.Sign(claims, keys.TypeSET)
}

// Algorithms lists the configured algorithms, the default first.
func (k *keySet) Algorithms() []string { return k.algs }

// JWKS returns every published key of every ring.
func (k *keySet) JWKS() ([]byte, error) {
	var all []*keys.Key
	for _, alg := range k.algs {
		all = append(all, k.rings[alg].JWKS().Keys()...)
	}
	return json.Marshal(keys.NewJWKS(all...))
}
