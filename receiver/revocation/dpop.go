package revocation

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
)

// checkBinding is the cnf step of spec/agent-auth.md §2.5: a DPoP-bound token (cnf.jkt) needs the DPoP scheme
// and a valid proof; an unbound token must not use the DPoP scheme; other confirmation methods (mTLS) are not
// supported here and fail closed.
func (g *Guard) checkBinding(ctx context.Context, c *Claims, token string, p presentation, dpopScheme bool) *Denial {
	switch {
	case c.Cnf == nil && dpopScheme:
		return invalidToken(false, "the token is not DPoP-bound: use the Bearer scheme")
	case c.Cnf == nil:
		return nil
	case c.Cnf.JKT == "":
		return invalidToken(false, "the token's confirmation method is not supported")
	case !dpopScheme:
		return invalidToken(true, "the token is DPoP-bound: use the DPoP scheme with a proof")
	}
	return g.checkProof(ctx, c.Cnf.JKT, token, p)
}

// checkProof checks the DPoP header against the request and the token (RFC 9449 §4.3 and §7.1): exactly one
// proof, typ dpop+jwt, alg ES256 or EdDSA, signed by its embedded jwk whose thumbprint is the token's cnf.jkt,
// htm the request method, htu the request URL (query and fragment ignored), iat within the skew of now, ath the
// hash of the token, and a jti not seen before (here, and by the other replicas when a ProofStore is shared). The
// jti is remembered only once every other check passed.
func (g *Guard) checkProof(ctx context.Context, jkt, token string, p presentation) *Denial {
	switch len(p.dpop) {
	case 0:
		return invalidProof("a DPoP proof is required")
	case 1:
	default:
		return invalidProof("send one DPoP proof")
	}
	payload, key, err := keys.VerifyEmbedded(p.dpop[0], keys.TypeDPoP, keys.DPoPAlgorithms)
	if err != nil {
		return invalidProof("the DPoP proof is not valid: " + keys.DPoPProblem(err))
	}
	var pc keys.DPoPClaims
	if json.Unmarshal(payload, &pc) != nil {
		return invalidProof("the DPoP proof's claims are malformed")
	}
	now := g.cfg.Now()
	switch {
	case pc.JTI == "" || pc.IssuedAt == nil || pc.Method == "" || pc.URL == "" || pc.ATH == "":
		return invalidProof("the DPoP proof needs jti, htm, htu, iat and ath")
	case key.Thumbprint() != jkt:
		return invalidProof("the DPoP proof's key is not the one the token is bound to")
	case pc.Method != p.method:
		return invalidProof("the DPoP proof's htm is not the request method")
	case !keys.SameHTU(pc.URL, p.url):
		return invalidProof("the DPoP proof's htu is not the request URL")
	case pc.ATH != accessTokenHash(token):
		return invalidProof("the DPoP proof's ath is not the hash of the access token")
	}
	iat := time.Unix(*pc.IssuedAt, 0)
	if iat.Before(now.Add(-g.cfg.Skew)) || iat.After(now.Add(g.cfg.Skew)) {
		return invalidProof("the DPoP proof's iat is not close enough to now")
	}
	seen := proofKey(jkt, pc.JTI)
	switch g.proofs.use(now, seen) {
	case proofReplayed:
		return invalidProof("the DPoP proof was used before")
	case proofCacheFull:
		return unavailable("too many DPoP proofs are in flight")
	}
	if g.cfg.SharedProofs != nil {
		fresh, err := g.cfg.SharedProofs.Remember(ctx, "dpop:"+hex.EncodeToString(seen[:]), now.Add(2*g.cfg.Skew+time.Second))
		switch {
		case err != nil:
			g.proofs.forget(seen) // refused without a verdict: a retry of the same proof must not look replayed
			return unavailable("the DPoP replay check is unavailable")
		case !fresh:
			return invalidProof("the DPoP proof was used before")
		}
	}
	return nil
}

// accessTokenHash is the ath of a token: base64url(SHA-256(token)) (RFC 9449 §4.2).
func accessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// proofKey is what the replay cache remembers of a proof: a fixed-size digest of its key and jti.
func proofKey(jkt, jti string) [sha256.Size]byte {
	return sha256.Sum256([]byte(jkt + "\x00" + jti))
}
