package revocation_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssfd/ssfd/receiver/revocation"
	"github.com/ssfd/ssfd/schemas"
)

// TestOpsFromSETOfIssuerEvents feeds the subjects issuer/events.go emits for its own ops (nodeSubject,
// keySubject, jwt_id) and checks that each comes back as the op that caused it.
func TestOpsFromSETOfIssuerEvents(t *testing.T) {
	opAt := evEventAt.Add(250 * time.Millisecond)
	emitted := func(kind string) *schemas.SessionRevoked {
		return &schemas.SessionRevoked{CAEPCommon: schemas.CAEPCommon{EventTimestamp: schemas.NewNumericDate(opAt),
			InitiatingEntity: schemas.InitiatedBySystem, ReasonAdmin: schemas.LangMap{"en": "revoked by the ssfd token issuer (" + kind + ")"}}}
	}
	cases := []struct {
		name    string
		subject schemas.Subject
		kind    string
		want    revocation.Op
		hit     func(*revocation.Claims)
		miss    func(*revocation.Claims)
	}{
		{"a revoked node of a human principal comes back as revoke_node",
			evCplx(evMembers{schemas.RoleSession: evOpaque(evSid), schemas.RoleUser: evIssSub(), schemas.RoleApplication: evURI(evAgent),
				schemas.RoleTenant: evOpaque(evTenant)}), "revoke_node", evNode(evSid, evTenant), nil, evOtherSession},
		{"a revoked node of an autonomous agent comes back as revoke_node",
			evCplx(evMembers{schemas.RoleSession: evOpaque(evSid), schemas.RoleApplication: evURI(evAgent), schemas.RoleTenant: evOpaque(evTenant)}),
			"revoke_node", evNode(evSid, evTenant), nil, evOtherSession},
		{"a revoked token comes back as revoke_jti", evMust(schemas.NewJWTID(evTokenIss, evTokenJTI)), "revoke_jti", evJTI(evTokenJTI), nil, evOtherJTI},
		{"an agent kill switch comes back as an actor watermark", evCplx(evMembers{schemas.RoleApplication: evURI(evAgent)}),
			"watermark", evMark(revocation.KeyActor, evAgent, ""), nil, evOtherAgent},
		{"a kill switch of a non-URI client comes back as an actor watermark", evCplx(evMembers{schemas.RoleApplication: evOpaque(evClient)}),
			"watermark", evMark(revocation.KeyActor, evClient, ""), evClientToken, evOtherAgent},
		{"a tenant kill switch comes back as a tenant watermark", evCplx(evMembers{schemas.RoleTenant: evOpaque(evTenant)}),
			"watermark", evMark(revocation.KeyTenant, evTenant, evTenant), nil, evOtherTenant},
		{"an agent class kill switch comes back as a class watermark", evCplx(evMembers{schemas.RoleGroup: evOpaque(evClass)}),
			"watermark", evMark(revocation.KeyClass, evClass, ""), nil, evOtherClass},
		{"a user kill switch comes back as a subject watermark", evCplx(evMembers{schemas.RoleUser: evIssSub()}),
			"watermark", evMark(revocation.KeySubject, evIdp+"|"+evUser, ""), nil, evOtherUser},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := evNewSET(t, c.subject, emitted(c.kind))
			set.Issuer, set.Txn = evTokenIss, "op-17"
			got, err := revocation.OpsFromSET(set, revocation.WithTokenIssuers(evTokenIss))
			if err != nil {
				t.Fatal(err)
			}
			evSameOps(t, got, evComplete(set, opAt, c.want))
			ix := evApply(t, got)
			if ix.Check(evToken(c.hit)) == "" {
				t.Fatal("the token the issuer revoked is not revoked")
			}
			if why := ix.Check(evToken(c.miss)); why != "" {
				t.Fatalf("another token is revoked: %s", why)
			}
		})
	}
}

// FuzzOpsFromSET: any SET that parses maps to ops without an error or a panic, every op is valid and applies,
// op ids are unique, and mapping twice gives the same ops.
func FuzzOpsFromSET(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "schemas", "testdata", "golden", "set", "*.json"))
	for _, path := range files {
		if data, err := os.ReadFile(path); err == nil {
			f.Add(data)
		}
	}
	for _, m := range evMappings {
		if data, err := json.Marshal(evNewSET(f, m.subject, m.payload)); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := schemas.ParseSET(data, schemas.AcceptLegacy())
		if err != nil {
			return
		}
		ops, err := revocation.OpsFromSET(set)
		if err != nil {
			t.Fatalf("a parsed SET must map: %v", err)
		}
		ids := map[string]bool{}
		ix := revocation.NewIndex()
		for _, op := range ops {
			if err := op.Validate(); err != nil {
				t.Fatalf("invalid op %+v: %v", op, err)
			}
			if ids[op.ID] {
				t.Fatalf("op id %q twice", op.ID)
			}
			ids[op.ID] = true
			if err := ix.Apply(op); err != nil {
				t.Fatal(err)
			}
		}
		again, _ := revocation.OpsFromSET(set)
		g, _ := json.Marshal(ops)
		a, _ := json.Marshal(again)
		if string(g) != string(a) {
			t.Fatalf("not deterministic:\n%s\n%s", g, a)
		}
	})
}
