package revocation_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/ssfd/ssfd/receiver/revocation"
	"github.com/ssfd/ssfd/schemas"
)

const (
	evIdp      = "https://idp.example.net"
	evUser     = "u-88213"
	evTokenIss = "https://auth.example.net"
	evAgent    = "spiffe://prod.example.net/tenant/acme/agent/assistant"
	evPrior    = "spiffe://prod.example.net/tenant/acme/agent/invoice-bot"
	evClient   = "billing-cli"
	evSid      = "s_A7x"
	evTenant   = "acme"
	evClass    = "bp-invoice-bots"
	evTokenJTI = "t_8b2"
	evSetIss   = "https://ssf.tx.example.net"
	evSetJTI   = "e1"
	evSetTxn   = "inc-4411"
)

var (
	evEventAt = time.Unix(1767225600, 0).UTC()
	evSetIAT  = evEventAt.Add(time.Second)
)

func evMust(s schemas.Subject, err error) schemas.Subject {
	if err != nil {
		panic(err)
	}
	return s
}

type evMembers = map[string]schemas.Subject

func evCplx(m evMembers) schemas.Subject { return evMust(schemas.NewComplex(m)) }
func evOpaque(id string) schemas.Subject { return evMust(schemas.NewOpaque(id)) }
func evURI(u string) schemas.Subject     { return evMust(schemas.NewURI(u)) }
func evIssSub() schemas.Subject          { return evMust(schemas.NewIssSub(evIdp, evUser)) }
func evEmail() schemas.Subject           { return evMust(schemas.NewEmail("jdoe@example.org")) }

func evCommon() schemas.CAEPCommon {
	return schemas.CAEPCommon{EventTimestamp: schemas.NewNumericDate(evEventAt), InitiatingEntity: schemas.InitiatedByAdmin,
		ReasonAdmin: schemas.LangMap{"en": "revoked from the console"}}
}

func evRevoked() *schemas.SessionRevoked { return &schemas.SessionRevoked{CAEPCommon: evCommon()} }

func evCredential(change schemas.ChangeType) *schemas.CredentialChange {
	return &schemas.CredentialChange{CredentialType: schemas.CredentialPassword, ChangeType: change, CAEPCommon: evCommon()}
}

func evAssurance(dir schemas.ChangeDirection) *schemas.AssuranceLevelChange {
	return &schemas.AssuranceLevelChange{Namespace: schemas.NamespaceNISTAAL, CurrentLevel: "nist_aal1",
		PreviousLevel: "nist_aal2", ChangeDirection: dir, CAEPCommon: evCommon()}
}

func evCompliance(now schemas.ComplianceStatus) *schemas.DeviceComplianceChange {
	prev := schemas.Compliant
	if now == schemas.Compliant {
		prev = schemas.NotCompliant
	}
	return &schemas.DeviceComplianceChange{PreviousStatus: prev, CurrentStatus: now, CAEPCommon: evCommon()}
}

func evRisk(p schemas.Principal, level schemas.RiskLevel) *schemas.RiskLevelChange {
	return &schemas.RiskLevelChange{Principal: p, CurrentLevel: level, CAEPCommon: evCommon()}
}

// unknownEvent is an event type no spec defines.
type evUnknownEvent struct{}

func (evUnknownEvent) EventType() schemas.EventType { return "https://example.com/event-type/unknown" }
func (evUnknownEvent) Validate() error              { return nil }

// newSET builds a SET and passes it through the wire, as a receiver sees it after verification.
func evNewSET(tb testing.TB, sub schemas.Subject, p schemas.Payload) *schemas.SET {
	tb.Helper()
	ev, err := schemas.NewEvent(p)
	if err != nil {
		tb.Fatal(err)
	}
	set := &schemas.SET{Issuer: evSetIss, ID: evSetJTI, IssuedAt: schemas.NewNumericDate(evSetIAT),
		Audience: schemas.Audience{"https://rs.example.org/ssf"}, Txn: evSetTxn, Subject: sub, Event: ev}
	data, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	parsed, err := schemas.ParseSET(data)
	if err != nil {
		tb.Fatalf("%v\n%s", err, data)
	}
	return parsed
}

// token is the delegated access token of spec/agent-auth.md §2.5, issued before the event, changed by mod.
func evToken(mod func(*revocation.Claims)) revocation.Token {
	c := revocation.Claims{Issuer: evTokenIss, Subject: evUser, SubjectIssuer: evIdp, Audience: schemas.Audience{"https://tools.example.net/mcp"},
		ClientID: evAgent, IssuedAt: evEventAt.Unix() - 30, ExpiresAt: evEventAt.Unix() + 270, JTI: evTokenJTI,
		Act:        &revocation.Actor{Subject: evAgent, Act: &revocation.Actor{Subject: evPrior}},
		SID:        evSid,
		Delegation: &revocation.Delegation{Depth: 1, MaxDepth: 3, Path: []string{"s_root", evSid}},
		Tenant:     evTenant, AgentClass: evClass}
	if mod != nil {
		mod(&c)
	}
	return c.Token("kid-1")
}

func evClientToken(c *revocation.Claims) { c.ClientID, c.Act = evClient, nil }
func evOtherUser(c *revocation.Claims)   { c.Subject = "u-1" }
func evOtherJTI(c *revocation.Claims)    { c.JTI = "t_other" }
func evOtherClass(c *revocation.Claims)  { c.AgentClass = "bp-other" }
func evOtherTenant(c *revocation.Claims) {
	c.Tenant = "globex"
}

func evOtherSession(c *revocation.Claims) {
	c.SID = "s_other"
	c.Delegation = &revocation.Delegation{Depth: 1, MaxDepth: 3, Path: []string{"s_root", "s_other"}}
}

func evOtherAgent(c *revocation.Claims) {
	c.ClientID = "spiffe://prod.example.net/tenant/acme/agent/other"
	c.Act = &revocation.Actor{Subject: c.ClientID}
}

func evNode(id, tenant string) revocation.Op {
	return revocation.Op{Kind: revocation.OpRevokeNode, SID: id, Tenant: tenant}
}

func evMark(kind, value, tenant string) revocation.Op {
	return revocation.Op{Kind: revocation.OpWatermark, Key: revocation.Key{Kind: kind, Value: value}, Tenant: tenant}
}

func evJTI(id string) revocation.Op { return revocation.Op{Kind: revocation.OpRevokeJTI, JTI: id} }

// complete fills in what every op of the test SET carries: id, times and cause.
func evComplete(set *schemas.SET, at time.Time, ops ...revocation.Op) []revocation.Op {
	for i := range ops {
		ops[i].ID = set.Issuer + " " + set.ID + "#" + strconv.Itoa(i)
		ops[i].At, ops[i].ExpiresAt = at, at.Add(revocation.DefaultRetention)
		ops[i].Cause = &revocation.Cause{Issuer: set.Issuer, SETJTI: set.ID, EventType: string(set.Event.Type), Txn: set.Txn}
	}
	return ops
}

func evSameOps(t *testing.T, got, want []revocation.Op) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("ops differ\n got: %s\nwant: %s", g, w)
	}
}

// apply applies ops to a fresh, ready index.
func evApply(t *testing.T, ops []revocation.Op) *revocation.Index {
	t.Helper()
	ix := revocation.NewIndex()
	ix.SetReady()
	for _, op := range ops {
		if err := ix.Apply(op); err != nil {
			t.Fatalf("apply %+v: %v", op, err)
		}
	}
	return ix
}

type evMapping struct {
	name    string
	subject schemas.Subject
	payload schemas.Payload
	opts    []revocation.SETOption
	want    []revocation.Op            // without id, times and cause
	at      time.Time                  // the ops' time; zero: eventAt
	hit     func(c *revocation.Claims) // turns the default token into the one the event names, if it is not
	miss    func(c *revocation.Claims) // turns the default token into one the ops must not revoke
}

// mappings is spec/agent-auth.md §4.2, one row per case.
var evMappings = []evMapping{
	// CAEP session-revoked
	{name: "session-revoked with a session member revokes that node only",
		subject: evCplx(evMembers{schemas.RoleSession: evOpaque(evSid), schemas.RoleUser: evIssSub(),
			schemas.RoleApplication: evURI(evAgent), schemas.RoleTenant: evOpaque(evTenant)}),
		payload: evRevoked(), want: []revocation.Op{evNode(evSid, evTenant)}, miss: evOtherSession},
	{name: "session-revoked for a user alone watermarks the principal", subject: evCplx(evMembers{schemas.RoleUser: evIssSub()}),
		payload: evRevoked(), want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "session-revoked for a simple iss_sub watermarks the principal", subject: evIssSub(),
		payload: evRevoked(), want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "session-revoked for an application uri watermarks the actor", subject: evCplx(evMembers{schemas.RoleApplication: evURI(evPrior)}),
		payload: evRevoked(), want: []revocation.Op{evMark(revocation.KeyActor, evPrior, "")}, miss: evOtherAgent},
	{name: "session-revoked for an opaque application watermarks it as actor, which covers the client",
		subject: evCplx(evMembers{schemas.RoleApplication: evOpaque(evClient)}), payload: evRevoked(),
		want: []revocation.Op{evMark(revocation.KeyActor, evClient, "")}, hit: evClientToken, miss: evOtherAgent},
	{name: "session-revoked for a tenant alone watermarks the tenant", subject: evCplx(evMembers{schemas.RoleTenant: evOpaque(evTenant)}),
		payload: evRevoked(), want: []revocation.Op{evMark(revocation.KeyTenant, evTenant, evTenant)}, miss: evOtherTenant},
	{name: "session-revoked for a group watermarks the agent class", subject: evCplx(evMembers{schemas.RoleGroup: evOpaque(evClass)}),
		payload: evRevoked(), want: []revocation.Op{evMark(revocation.KeyClass, evClass, "")}, miss: evOtherClass},
	{name: "session-revoked for a jwt_id revokes that token", subject: evMust(schemas.NewJWTID(evTokenIss, evTokenJTI)),
		payload: evRevoked(), want: []revocation.Op{evJTI(evTokenJTI)}, miss: evOtherJTI},
	{name: "session-revoked for a jwt_id of a listed token issuer revokes that token",
		subject: evMust(schemas.NewJWTID(evTokenIss, evTokenJTI)), payload: evRevoked(),
		opts: []revocation.SETOption{revocation.WithTokenIssuers("https://other.example", evTokenIss)},
		want: []revocation.Op{evJTI(evTokenJTI)}, miss: evOtherJTI},
	{name: "session-revoked for a jwt_id of a token issuer not listed does nothing",
		subject: evMust(schemas.NewJWTID("https://other.example", evTokenJTI)), payload: evRevoked(),
		opts: []revocation.SETOption{revocation.WithTokenIssuers(evTokenIss)}},
	{name: "session-revoked for a user on a device falls back to the user",
		subject: evCplx(evMembers{schemas.RoleUser: evIssSub(), schemas.RoleDevice: evOpaque("dev-1")}), payload: evRevoked(),
		want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "session-revoked for a user with an application watermarks the user only",
		subject: evCplx(evMembers{schemas.RoleUser: evIssSub(), schemas.RoleApplication: evURI(evAgent)}), payload: evRevoked(),
		want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "session-revoked for an application in a tenant watermarks the application",
		subject: evCplx(evMembers{schemas.RoleApplication: evURI(evAgent), schemas.RoleTenant: evOpaque(evTenant)}), payload: evRevoked(),
		want: []revocation.Op{evMark(revocation.KeyActor, evAgent, evTenant)}, miss: evOtherAgent},
	{name: "session-revoked for a session in another format falls back to the user",
		subject: evCplx(evMembers{schemas.RoleSession: evURI("https://idp.example.net/sessions/9"), schemas.RoleUser: evIssSub()}),
		payload: evRevoked(), want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "session-revoked for a user with aliases watermarks its iss_sub",
		subject: evCplx(evMembers{schemas.RoleUser: evMust(schemas.NewAliases(evEmail(), evIssSub(), evIssSub()))}), payload: evRevoked(),
		want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "session-revoked for an email user cannot be matched to tokens", subject: evCplx(evMembers{schemas.RoleUser: evEmail()}),
		payload: evRevoked()},
	{name: "session-revoked for an email user does not widen to its application",
		subject: evCplx(evMembers{schemas.RoleUser: evEmail(), schemas.RoleApplication: evURI(evAgent)}), payload: evRevoked()},
	{name: "session-revoked for a device in a tenant does not widen to the tenant",
		subject: evCplx(evMembers{schemas.RoleDevice: evOpaque("dev-1"), schemas.RoleTenant: evOpaque(evTenant)}), payload: evRevoked()},
	{name: "session-revoked for a simple email does nothing", subject: evEmail(), payload: evRevoked()},

	// CAEP credential-change, token-claims-change, assurance-level-change, device-compliance-change, risk-level-change
	{name: "credential-change revoke watermarks the user", subject: evCplx(evMembers{schemas.RoleUser: evIssSub()}),
		payload: evCredential(schemas.ChangeRevoke), want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "credential-change delete watermarks the user", subject: evIssSub(),
		payload: evCredential(schemas.ChangeDelete), want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "credential-change update of an agent credential watermarks the application",
		subject: evCplx(evMembers{schemas.RoleApplication: evURI(evAgent)}), payload: evCredential(schemas.ChangeUpdate),
		want: []revocation.Op{evMark(revocation.KeyActor, evAgent, "")}, miss: evOtherAgent},
	{name: "credential-change create does nothing", subject: evCplx(evMembers{schemas.RoleUser: evIssSub()}),
		payload: evCredential(schemas.ChangeCreate)},
	{name: "token-claims-change for a jwt_id revokes that token", subject: evMust(schemas.NewJWTID(evTokenIss, evTokenJTI)),
		payload: &schemas.TokenClaimsChange{Claims: map[string]json.RawMessage{"role": json.RawMessage(`"ro"`)}, CAEPCommon: evCommon()},
		want:    []revocation.Op{evJTI(evTokenJTI)}, miss: evOtherJTI},
	{name: "token-claims-change for a user watermarks the user", subject: evCplx(evMembers{schemas.RoleUser: evIssSub()}),
		payload: &schemas.TokenClaimsChange{Claims: map[string]json.RawMessage{"role": json.RawMessage(`"ro"`)}, CAEPCommon: evCommon()},
		want:    []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "assurance-level-change decrease watermarks the user, not only the session",
		subject: evCplx(evMembers{schemas.RoleUser: evIssSub(), schemas.RoleSession: evOpaque(evSid)}), payload: evAssurance(schemas.DirectionDecrease),
		want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "assurance-level-change increase does nothing", subject: evCplx(evMembers{schemas.RoleUser: evIssSub()}),
		payload: evAssurance(schemas.DirectionIncrease)},
	{name: "assurance-level-change without a direction does nothing", subject: evCplx(evMembers{schemas.RoleUser: evIssSub()}),
		payload: evAssurance("")},
	{name: "device-compliance-change not-compliant with a user watermarks the user",
		subject: evCplx(evMembers{schemas.RoleDevice: evOpaque("dev-1"), schemas.RoleUser: evIssSub()}),
		payload: evCompliance(schemas.NotCompliant), want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "device-compliance-change not-compliant for a device alone does nothing",
		subject: evCplx(evMembers{schemas.RoleDevice: evOpaque("dev-1")}), payload: evCompliance(schemas.NotCompliant)},
	{name: "device-compliance-change compliant does nothing",
		subject: evCplx(evMembers{schemas.RoleDevice: evOpaque("dev-1"), schemas.RoleUser: evIssSub()}), payload: evCompliance(schemas.Compliant)},
	{name: "risk-level-change HIGH watermarks the user", subject: evCplx(evMembers{schemas.RoleUser: evIssSub()}),
		payload: evRisk(schemas.PrincipalUser, schemas.RiskHigh), want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "risk-level-change HIGH of a session alone revokes the node", subject: evCplx(evMembers{schemas.RoleSession: evOpaque(evSid)}),
		payload: evRisk(schemas.PrincipalSession, schemas.RiskHigh), want: []revocation.Op{evNode(evSid, "")}, miss: evOtherSession},
	{name: "risk-level-change MEDIUM does nothing", subject: evCplx(evMembers{schemas.RoleUser: evIssSub()}),
		payload: evRisk(schemas.PrincipalUser, schemas.RiskMedium)},
	{name: "risk-level-change LOW does nothing", subject: evCplx(evMembers{schemas.RoleUser: evIssSub()}),
		payload: evRisk(schemas.PrincipalUser, schemas.RiskLow)},

	// RISC
	{name: "RISC account-disabled watermarks the user", subject: evIssSub(),
		payload: &schemas.AccountDisabled{Reason: schemas.DisabledForHijacking}, at: evSetIAT,
		want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "RISC account-purged watermarks the user", subject: evCplx(evMembers{schemas.RoleUser: evIssSub()}),
		payload: &schemas.AccountPurged{}, at: evSetIAT,
		want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "RISC credential-compromise watermarks the user at its event_timestamp", subject: evIssSub(),
		payload: &schemas.CredentialCompromise{CredentialType: schemas.CredentialPassword, EventTimestamp: schemas.NewNumericDate(evEventAt)},
		want:    []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "RISC sessions-revoked watermarks the whole account, not only the session",
		subject: evCplx(evMembers{schemas.RoleUser: evIssSub(), schemas.RoleSession: evOpaque(evSid)}),
		payload: &schemas.SessionsRevoked{}, at: evSetIAT,
		want: []revocation.Op{evMark(revocation.KeySubject, evIdp+"|"+evUser, "")}, miss: evOtherUser},
	{name: "RISC account-disabled of an email subject cannot be matched to tokens", subject: evEmail(),
		payload: &schemas.AccountDisabled{}},

	// Events that revoke nothing
	{name: "RISC account-enabled does nothing", subject: evIssSub(), payload: &schemas.AccountEnabled{}},
	{name: "RISC account-credential-change-required does nothing", subject: evIssSub(),
		payload: &schemas.AccountCredentialChangeRequired{}},
	{name: "RISC identifier-changed does nothing", subject: evEmail(), payload: &schemas.IdentifierChanged{NewValue: "j@example.org"}},
	{name: "session-established does nothing", subject: evCplx(evMembers{schemas.RoleSession: evOpaque(evSid)}),
		payload: &schemas.SessionEstablished{CAEPCommon: evCommon()}},
	{name: "session-presented does nothing", subject: evCplx(evMembers{schemas.RoleSession: evOpaque(evSid)}),
		payload: &schemas.SessionPresented{CAEPCommon: evCommon()}},
	{name: "verification does nothing", subject: evOpaque("st_1"), payload: &schemas.Verification{State: "n"}},
	{name: "stream-updated does nothing", subject: evOpaque("st_1"), payload: &schemas.StreamUpdated{Status: schemas.StatusPaused}},
	{name: "an unknown event type does nothing", subject: evCplx(evMembers{schemas.RoleSession: evOpaque(evSid)}), payload: evUnknownEvent{}},
}

func TestOpsFromSET(t *testing.T) {
	for _, m := range evMappings {
		t.Run(m.name, func(t *testing.T) {
			set := evNewSET(t, m.subject, m.payload)
			got, err := revocation.OpsFromSET(set, m.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if m.want == nil {
				if got != nil {
					t.Fatalf("want no ops, got %+v", got)
				}
				return
			}
			at := m.at
			if at.IsZero() {
				at = evEventAt
			}
			evSameOps(t, got, evComplete(set, at, m.want...))
			ix := evApply(t, got)
			if why := ix.Check(evToken(m.hit)); why == "" {
				t.Fatal("the token the event names is not revoked")
			}
			if why := ix.Check(evToken(m.miss)); why != "" {
				t.Fatalf("a token the event does not name is revoked: %s", why)
			}
		})
	}
}

func TestOpsFromSETReachesPriorActors(t *testing.T) {
	set := evNewSET(t, evCplx(evMembers{schemas.RoleApplication: evURI(evPrior)}), evRevoked())
	ops, err := revocation.OpsFromSET(set)
	if err != nil {
		t.Fatal(err)
	}
	ix := evApply(t, ops)
	// The default token's client is agent; prior only appears in its act chain.
	if why := ix.Check(evToken(nil)); why != "revoked: "+revocation.KeyActor {
		t.Fatalf("a token delegated by the killed agent: %q", why)
	}
}

func TestOpsFromSETWatermarkSparesLaterTokens(t *testing.T) {
	ops, err := revocation.OpsFromSET(evNewSET(t, evIssSub(), evRevoked()))
	if err != nil {
		t.Fatal(err)
	}
	ix := evApply(t, ops)
	at := evToken(func(c *revocation.Claims) { c.IssuedAt = evEventAt.Unix() })
	after := evToken(func(c *revocation.Claims) { c.IssuedAt = evEventAt.Unix() + 1 })
	if ix.Check(at) == "" {
		t.Fatal("a token issued in the second of the event is not revoked")
	}
	if why := ix.Check(after); why != "" {
		t.Fatalf("a token issued after the event is revoked: %s", why)
	}
}

func TestOpsFromSETIsIdempotent(t *testing.T) {
	subject := evCplx(evMembers{schemas.RoleUser: evMust(schemas.NewAliases(evIssSub(), evMust(schemas.NewIssSub("https://idp2.example", evUser))))})
	first, err := revocation.OpsFromSET(evNewSET(t, subject, evRevoked()))
	if err != nil {
		t.Fatal(err)
	}
	again, err := revocation.OpsFromSET(evNewSET(t, subject, evRevoked()))
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 {
		t.Fatalf("want a watermark per alias, got %+v", first)
	}
	evSameOps(t, again, first)
	if first[0].ID == first[1].ID {
		t.Fatalf("ops of one SET share the id %q", first[0].ID)
	}
	ix := evApply(t, append(first, again...))
	if ix.Len() != 2 {
		t.Fatalf("a redelivered SET added entries: %d", ix.Len())
	}
	other := evNewSET(t, subject, evRevoked())
	other.ID = "e2"
	ops, err := revocation.OpsFromSET(other)
	if err != nil {
		t.Fatal(err)
	}
	if ops[0].ID == first[0].ID {
		t.Fatalf("two SETs gave one op id %q", ops[0].ID)
	}
}

func TestOpsFromSETTime(t *testing.T) {
	t.Run("an event_timestamp after iat is cut to iat", func(t *testing.T) {
		p := evRevoked()
		p.EventTimestamp = schemas.NewNumericDate(evSetIAT.Add(time.Hour))
		ops, err := revocation.OpsFromSET(evNewSET(t, evIssSub(), p))
		if err != nil || len(ops) != 1 || !ops[0].At.Equal(evSetIAT) {
			t.Fatalf("ops %+v, err %v", ops, err)
		}
	})
	t.Run("toe stands in for a missing event_timestamp", func(t *testing.T) {
		set := evNewSET(t, evIssSub(), &schemas.AccountDisabled{})
		set.TimeOfEvent = schemas.NewNumericDate(evEventAt)
		ops, err := revocation.OpsFromSET(set)
		if err != nil || len(ops) != 1 || !ops[0].At.Equal(evEventAt) || !ops[0].ExpiresAt.Equal(evEventAt.Add(revocation.DefaultRetention)) {
			t.Fatalf("ops %+v, err %v", ops, err)
		}
	})
}

func TestOpsFromSETRefusesWhatItCannotInterpret(t *testing.T) {
	good := func() *schemas.SET { return evNewSET(t, evIssSub(), evRevoked()) }
	cases := []struct {
		name string
		set  func() *schemas.SET
	}{
		{"refuses no SET", func() *schemas.SET { return nil }},
		{"refuses a revoking event without a subject", func() *schemas.SET {
			s := good()
			s.Subject = schemas.Subject{}
			return s
		}},
		{"refuses a payload that does not decode", func() *schemas.SET {
			s := good()
			s.Event.Payload = json.RawMessage(`{"initiating_entity":"robot"}`)
			return s
		}},
		{"refuses a SET without jti", func() *schemas.SET {
			s := good()
			s.ID = ""
			return s
		}},
		{"refuses a SET without any time", func() *schemas.SET {
			s := evNewSET(t, evIssSub(), &schemas.AccountPurged{})
			s.IssuedAt = schemas.NumericDate{}
			return s
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ops, err := revocation.OpsFromSET(c.set())
			if !errors.Is(err, revocation.ErrInvalidSET) || ops != nil {
				t.Fatalf("ops %+v, err %v", ops, err)
			}
		})
	}
	t.Run("ignores a malformed payload of an event that revokes nothing", func(t *testing.T) {
		s := evNewSET(t, evOpaque("st_1"), &schemas.Verification{})
		s.Event.Payload = json.RawMessage(`{"state":7}`)
		if ops, err := revocation.OpsFromSET(s); ops != nil || err != nil {
			t.Fatalf("ops %+v, err %v", ops, err)
		}
	})
}

// TestOpsFromSETForeignSessionsFallBackToTheUser: a session-revoked from an identity provider names one of its
// sessions, never one of ssfd's nodes; with WithNodeIssuers it revokes the user's tokens instead, cut at the
// SET's iat, while ssfd's own transmitter's session members still revoke the node.
func TestOpsFromSETForeignSessionsFallBackToTheUser(t *testing.T) {
	set := evNewSET(t, evCplx(evMembers{schemas.RoleSession: evOpaque("okta-sid-1"), schemas.RoleUser: evIssSub()}), evRevoked())
	foreign, err := revocation.OpsFromSET(set, revocation.WithNodeIssuers("https://ssfd.example.net"))
	if err != nil || len(foreign) != 1 || foreign[0].Kind != revocation.OpWatermark || foreign[0].Key.Kind != revocation.KeySubject ||
		foreign[0].Key.Value != evIdp+"|"+evUser || !foreign[0].At.Equal(set.IssuedAt.Time()) {
		t.Fatalf("foreign session-revoked → %+v, %v", foreign, err)
	}
	own, err := revocation.OpsFromSET(set, revocation.WithNodeIssuers(set.Issuer))
	if err != nil || len(own) != 1 || own[0].Kind != revocation.OpRevokeNode || own[0].SID != "okta-sid-1" {
		t.Fatalf("own session-revoked → %+v, %v", own, err)
	}
}
