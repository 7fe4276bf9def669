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
	rings   map[string]*keys.Ring
	rotates map[string]func() error
	algs    []string
}

// ringOpener opens the key ring called name (set-ES256, issuer-ES256, ...) and returns it with the function
// that rotates it where it is kept: a file in the data directory on one node, the cluster's key bucket with
// --store jetstream.
type ringOpener func(name string, alg keys.Algorithm) (ring *keys.Ring, rotate func() error, err error)

// fileRings keeps rings as files <dir>/<name>.json, mode 0600.
func fileRings(dir string) ringOpener {
	return func(name string, alg keys.Algorithm) (*keys.Ring, func() error, error) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("server: key directory: %w", err)
		}
		path := filepath.Join(dir, name+".json")
		ring, err := openRing(path, alg)
		if err != nil {
			return nil, nil, err
		}
		return ring, func() error {
			if err := ring.Rotate(); err != nil {
				return err
			}
			return keys.SaveRing(path, ring)
		}, nil
	}
}

// openKeySet opens the ring of every algorithm (set-<alg>), creating the ones that do not exist yet.
func openKeySet(open ringOpener, algs []string) (*keySet, error) {
	ks := &keySet{rings: map[string]*keys.Ring{}, rotates: map[string]func() error{}, algs: algs}
	for _, name := range algs {
		alg, err := keys.ParseAlgorithm(name)
		if err != nil {
			return nil, err
		}
		ring, rotate, err := open("set-"+name, alg)
		if err != nil {
			return nil, fmt.Errorf("server: %s signing keys: %w", name, err)
		}
		ks.rings[name], ks.rotates[name] = ring, rotate
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

// rotate rotates every ring while SETs are being signed and saves each: the next key, published since the last
// rotation, signs from now on; the active key is retired and stays published.
func (k *keySet) rotate() error {
	for _, alg := range k.algs {
		if err := k.rotates[alg](); err != nil {
			return fmt.Errorf("server: rotate %s: %w", alg, err)
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
