package revocation_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver/revocation"
)

// FuzzAuthorize feeds the guard arbitrary Authorization prefixes, DPoP headers and tokens. It must never panic,
// and whatever it accepts must be a token the ring signed, with the claims it says.
func FuzzAuthorize(f *testing.F) {
	fx := newGuardFixture(f, nil)
	holder, err := keys.Generate(keys.ES256)
	if err != nil {
		f.Fatal(err)
	}
	verifier, err := keys.NewVerifier(fx.ring, keys.WithType(keys.TypeAccessToken))
	if err != nil {
		f.Fatal(err)
	}
	const target = "http://rs.example/mcp/tools"
	tok, _ := fx.mint(f, nil)
	bound, _ := fx.boundToken(f, holder)
	parts := strings.Split(tok, ".")
	f.Add("Bearer ", "", tok)
	f.Add("bearer   ", "", tok)
	f.Add("DPoP ", proofFor(f, holder, http.MethodGet, target, bound, nil), bound)
	f.Add("DPoP ", proofFor(f, holder, http.MethodGet, target, tok, nil), tok)
	f.Add("Bearer ", "", parts[0]+"."+parts[1]+".")
	f.Add("Bearer ", "", parts[0]+".e30."+parts[2])
	f.Add("Bearer ", "", "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0."+parts[1]+".")
	f.Add("Basic ", "", "dXNlcjpwYXNz")
	f.Add("", "", "")
	f.Add("DPoP ", "a.b.c", bound)
	f.Fuzz(func(t *testing.T, authorization, dpop, token string) {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header["Authorization"] = []string{authorization + token}
		if dpop != "" {
			req.Header["Dpop"] = []string{dpop}
		}
		claims, kid, err := fx.guard.Authorize(req)
		if err != nil {
			var d *revocation.Denial
			if claims != nil || kid != "" || !errors.As(err, &d) || d.Status < 400 {
				t.Fatalf("a refusal must be a *Denial without claims: %v", err)
			}
			return
		}
		_, presented, _ := strings.Cut(strings.TrimSpace(authorization+token), " ")
		payload, h, verr := verifier.Verify(context.Background(), strings.TrimLeft(presented, " "))
		if verr != nil {
			t.Fatalf("accepted a token the ring did not sign: %v", verr)
		}
		var signed revocation.Claims
		if json.Unmarshal(payload, &signed) != nil || signed.JTI != claims.JTI || h.KeyID != kid {
			t.Fatalf("the claims %+v are not those the ring signed", claims)
		}
	})
}
