package keys

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// JWKS is a set of public keys (RFC 7517 §5), looked up by kid.
type JWKS struct {
	keys []*Key
	byID map[string]*Key
}

// NewJWKS returns a set of the public halves of keys; a later key with a kid already present is skipped.
func NewJWKS(keys ...*Key) *JWKS {
	j := &JWKS{byID: make(map[string]*Key, len(keys))}
	for _, k := range keys {
		if _, dup := j.byID[k.kid]; dup {
			continue
		}
		pub := k.PublicKey()
		j.keys = append(j.keys, pub)
		j.byID[pub.kid] = pub
	}
	return j
}

// Key returns the key with the given kid.
func (j *JWKS) Key(kid string) (*Key, bool) {
	k, ok := j.byID[kid]
	return k, ok
}

// Keys returns the keys in their order.
func (j *JWKS) Keys() []*Key { return append([]*Key(nil), j.keys...) }

// Len returns the number of keys in the set: the usable ones, for a parsed JWKS.
func (j *JWKS) Len() int { return len(j.keys) }

// MarshalJSON writes {"keys":[...]} with public members only, whatever keys the set was built from.
func (j *JWKS) MarshalJSON() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(j.keys))}
	for _, k := range j.keys {
		set.Keys = append(set.Keys, k.jwk(false))
	}
	return json.Marshal(set)
}

// ParseJWKS reads a JWKS document. Keys it cannot use for verifying signatures (encryption keys, symmetric keys,
// unknown types, keys without kid, RSA keys under 2048 bits) are skipped; only malformed JSON is an error. An
// RSA key without "alg" may verify RS256 or PS256.
func ParseJWKS(data []byte) (*JWKS, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: the JWKS is not a JSON object with keys: %w", ErrInvalidKey, err)
	}
	j := &JWKS{byID: map[string]*Key{}}
	for _, raw := range doc.Keys {
		if k := usableKey(raw); k != nil {
			if _, dup := j.byID[k.kid]; !dup {
				j.keys = append(j.keys, k)
				j.byID[k.kid] = k
			}
		}
	}
	return j, nil
}

// usableKey returns the verification key of one JWK, or nil when it cannot verify SETs.
func usableKey(raw json.RawMessage) *Key {
	var jwk jose.JSONWebKey
	if jwk.UnmarshalJSON(raw) != nil || !jwk.Valid() || jwk.KeyID == "" || jwk.Use == "enc" {
		return nil
	}
	pub := jwk.Public()
	if !pub.Valid() {
		return nil
	}
	if jwk.Algorithm != "" {
		alg, err := ParseAlgorithm(jwk.Algorithm)
		if err != nil {
			return nil
		}
		k, err := newKey(alg, pub.Key, jwk.KeyID)
		if err != nil {
			return nil
		}
		return k
	}
	if _, isRSA := pub.Key.(*rsa.PublicKey); isRSA {
		k, err := newKey(RS256, pub.Key, jwk.KeyID)
		if err != nil {
			return nil
		}
		k.algs = []Algorithm{RS256, PS256}
		return k
	}
	alg := inferAlgorithm(pub.Key)
	if alg == "" {
		return nil
	}
	k, err := newKey(alg, pub.Key, jwk.KeyID)
	if err != nil {
		return nil
	}
	return k
}
