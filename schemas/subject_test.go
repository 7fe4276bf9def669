package schemas_test

import (
	"errors"
	"testing"

	"github.com/ssfd/ssfd/schemas"
)

func mustSubject(t testing.TB, doc string) schemas.Subject {
	t.Helper()
	s, err := schemas.ParseSubject([]byte(doc))
	if err != nil {
		t.Fatalf("ParseSubject(%s): %v", doc, err)
	}
	return s
}

// problemAt reports whether err is a *ValidationError with a problem at path.
func problemAt(err error, path string) bool {
	var ve *schemas.ValidationError
	if !errors.As(err, &ve) {
		return false
	}
	for _, p := range ve.Problems {
		if p.Path == path {
			return true
		}
	}
	return false
}

func TestSUB01_ParseSubjectRequiresExactlyTheFormatMembers(t *testing.T) {
	cases := []struct {
		name, doc, path string
	}{
		{"refuses a missing format", `{"email":"a@example.com"}`, "/format"},
		{"refuses a format that is not a string", `{"format":7,"email":"a@example.com"}`, "/format"},
		{"refuses email without email", `{"format":"email"}`, "/email"},
		{"refuses an empty required member", `{"format":"opaque","id":""}`, "/id"},
		{"refuses a member of the wrong type", `{"format":"opaque","id":12}`, "/id"},
		{"refuses a member the format does not describe", `{"format":"iss_sub","iss":"https://i","sub":"s","foo":1}`, "/foo"},
		{"refuses iss_sub without sub", `{"format":"iss_sub","iss":"https://i"}`, "/sub"},
		{"refuses an account that is not an acct URI", `{"format":"account","uri":"mailto:a@example.com"}`, "/uri"},
		{"refuses a phone number without international prefix", `{"format":"phone_number","phone_number":"2071838750"}`, "/phone_number"},
		{"refuses a did that is not a DID", `{"format":"did","url":"https://example.com"}`, "/url"},
		{"refuses jwt_id without jti", `{"format":"jwt_id","iss":"https://i"}`, "/jti"},
		{"refuses saml_assertion_id without assertion_id", `{"format":"saml_assertion_id","issuer":"https://i"}`, "/assertion_id"},
		{"refuses an invalid IP address", `{"format":"ip-addresses","ip-addresses":["999.1.1.1"]}`, "/ip-addresses/0"},
		{"refuses an IPv6 address with a zone", `{"format":"ip-addresses","ip-addresses":["fe80::1%eth0"]}`, "/ip-addresses/0"},
		{"refuses an empty address list", `{"format":"ip-addresses","ip-addresses":[]}`, "/ip-addresses"},
		{"refuses aliases nested in aliases", `{"format":"aliases","identifiers":[{"format":"aliases","identifiers":[{"format":"opaque","id":"x"}]}]}`, "/identifiers/0/format"},
		{"refuses empty aliases", `{"format":"aliases","identifiers":[]}`, "/identifiers"},
		{"refuses a complex subject nested in complex", `{"format":"complex","user":{"format":"complex","device":{"format":"opaque","id":"d"}}}`, "/user/format"},
		{"refuses a complex subject without members", `{"format":"complex"}`, ""},
		{"refuses a complex member that is invalid", `{"format":"complex","user":{"format":"email"}}`, "/user/email"},
		{"refuses a subject that is not an object", `"a@example.com"`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := schemas.ParseSubject([]byte(tc.doc))
			if !errors.Is(err, schemas.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !problemAt(err, tc.path) {
				t.Fatalf("err = %v, want a problem at %q", err, tc.path)
			}
		})
	}
}

func TestSUB04_UnknownFormatIsReportedAsSuch(t *testing.T) {
	_, err := schemas.ParseSubject([]byte(`{"format":"unknown-format","x":"y"}`))
	if !errors.Is(err, schemas.ErrUnknownFormat) || !problemAt(err, "/format") {
		t.Fatalf("err = %v, want ErrUnknownFormat at /format", err)
	}
	_, err = schemas.ParseSubject([]byte(`{"format":"email"}`))
	if errors.Is(err, schemas.ErrUnknownFormat) {
		t.Fatalf("a missing member must not be reported as an unknown format: %v", err)
	}
}

func TestSJ15_LegacyFormatNames(t *testing.T) {
	legacy := []struct{ name, doc, want string }{
		{"phone", `{"format":"phone","phone_number":"+442071838750"}`, `{"format":"phone_number","phone_number":"+442071838750"}`},
		{"phone-number", `{"format":"phone-number","phone_number":"+442071838750"}`, `{"format":"phone_number","phone_number":"+442071838750"}`},
		{"iss-sub", `{"format":"iss-sub","iss":"https://i","sub":"s"}`, `{"format":"iss_sub","iss":"https://i","sub":"s"}`},
		{"Google subject_type (RI-02)", `{"subject_type":"iss-sub","iss":"https://i","sub":"s"}`, `{"format":"iss_sub","iss":"https://i","sub":"s"}`},
		{"jwt-id", `{"format":"jwt-id","iss":"https://i","jti":"j"}`, `{"format":"jwt_id","iss":"https://i","jti":"j"}`},
	}
	for _, tc := range legacy {
		t.Run("strict parsing refuses "+tc.name+" with a precise error", func(t *testing.T) {
			_, err := schemas.ParseSubject([]byte(tc.doc))
			if !errors.Is(err, schemas.ErrInvalid) || errors.Is(err, schemas.ErrUnknownFormat) {
				t.Fatalf("err = %v, want a legacy-name error", err)
			}
		})
		t.Run("AcceptLegacy maps "+tc.name+" and never emits it", func(t *testing.T) {
			s, err := schemas.ParseSubject([]byte(tc.doc), schemas.AcceptLegacy())
			if err != nil {
				t.Fatal(err)
			}
			if s.String() != tc.want {
				t.Fatalf("got %s, want %s", s, tc.want)
			}
		})
	}
}

func TestSUB20_SimpleSubjectsMatchOnlyWhenIdentical(t *testing.T) {
	a := mustSubject(t, `{"format":"iss_sub","iss":"https://i","sub":"s"}`)
	b := mustSubject(t, `{"sub":"s","iss":"https://i","format":"iss_sub"}`)
	c := mustSubject(t, `{"format":"iss_sub","iss":"https://i","sub":"S"}`)
	d := mustSubject(t, `{"format":"opaque","id":"s"}`)
	if !a.Matches(b) || !a.Equal(b) || a.Key() != b.Key() {
		t.Error("member order must not matter")
	}
	if a.Matches(c) {
		t.Error("values are compared exactly, case included")
	}
	if a.Matches(d) {
		t.Error("different formats never match")
	}
	if a.Matches(schemas.Subject{}) || (schemas.Subject{}).Matches(schemas.Subject{}) {
		t.Error("the zero Subject matches nothing")
	}
}

func TestSUB21_ComplexSubjectsTreatAbsentMembersAsWildcards(t *testing.T) {
	const (
		user   = `{"format":"email","email":"x@example.com"}`
		other  = `{"format":"email","email":"y@example.com"}`
		device = `{"format":"opaque","id":"d1"}`
		tenant = `{"format":"opaque","id":"acme"}`
	)
	cases := []struct {
		name       string
		a, b       string
		wantsMatch bool
	}{
		{"tenant matches tenant with user", `{"format":"complex","tenant":` + tenant + `}`,
			`{"format":"complex","tenant":` + tenant + `,"user":` + user + `}`, true},
		{"user and device match user alone", `{"format":"complex","user":` + user + `,"device":` + device + `}`,
			`{"format":"complex","user":` + user + `}`, true},
		{"different users do not match", `{"format":"complex","user":` + user + `}`,
			`{"format":"complex","user":` + other + `}`, false},
		{"one differing shared member spoils the match", `{"format":"complex","user":` + user + `,"tenant":` + tenant + `}`,
			`{"format":"complex","user":` + user + `,"tenant":{"format":"opaque","id":"globex"}}`, false},
		{"disjoint members match, as SSF 1.0 §8.1.3.1 says", `{"format":"complex","tenant":` + tenant + `}`,
			`{"format":"complex","device":` + device + `}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := mustSubject(t, tc.a), mustSubject(t, tc.b)
			if got := a.Matches(b); got != tc.wantsMatch {
				t.Fatalf("Matches = %v, want %v", got, tc.wantsMatch)
			}
			if a.Matches(b) != b.Matches(a) {
				t.Fatal("matching must be symmetric")
			}
		})
	}
}

func TestSUB23_SimpleAgainstComplexMatchesAMember(t *testing.T) {
	user := mustSubject(t, `{"format":"email","email":"x@example.com"}`)
	withUser := mustSubject(t, `{"format":"complex","user":{"format":"email","email":"x@example.com"},"tenant":{"format":"opaque","id":"acme"}}`)
	withoutUser := mustSubject(t, `{"format":"complex","tenant":{"format":"opaque","id":"acme"}}`)
	if !user.Matches(withUser) || !withUser.Matches(user) {
		t.Error("a simple subject matches a complex subject holding it")
	}
	if user.Matches(withoutUser) {
		t.Error("a simple subject must not match a complex subject that lacks it")
	}
}

func TestAliasesMatchAnyOfTheirIdentifiers(t *testing.T) {
	aliases := mustSubject(t, `{"format":"aliases","identifiers":[{"format":"email","email":"x@example.com"},{"format":"iss_sub","iss":"https://i","sub":"s"}]}`)
	if !aliases.Matches(mustSubject(t, `{"format":"iss_sub","iss":"https://i","sub":"s"}`)) {
		t.Error("aliases must match one of their identifiers")
	}
	if aliases.Matches(mustSubject(t, `{"format":"email","email":"z@example.com"}`)) {
		t.Error("aliases must not match an identifier they do not hold")
	}
	complexUser := mustSubject(t, `{"format":"complex","user":{"format":"email","email":"x@example.com"}}`)
	if !aliases.Matches(complexUser) {
		t.Error("aliases must match a complex subject holding one of their identifiers")
	}
}

func TestConstructorsBuildValidSubjects(t *testing.T) {
	email, err := schemas.NewEmail("x@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := schemas.NewOpaque("acme")
	if err != nil {
		t.Fatal(err)
	}
	c, err := schemas.NewComplex(map[string]schemas.Subject{schemas.RoleTenant: tenant, schemas.RoleUser: email})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"format":"complex","user":{"format":"email","email":"x@example.com"},"tenant":{"format":"opaque","id":"acme"}}`
	if c.String() != want {
		t.Fatalf("got %s, want %s", c, want)
	}
	if m, ok := c.Member(schemas.RoleUser); !ok || !m.Equal(email) {
		t.Fatal("Member(user) must return the user")
	}
	if _, err := schemas.NewEmail(""); !errors.Is(err, schemas.ErrInvalid) {
		t.Fatalf("NewEmail(\"\") err = %v, want ErrInvalid", err)
	}
	if _, err := schemas.NewPhoneNumber("0207"); !errors.Is(err, schemas.ErrInvalid) {
		t.Fatalf("NewPhoneNumber err = %v, want ErrInvalid", err)
	}
	if _, err := schemas.NewComplex(map[string]schemas.Subject{schemas.RoleUser: {}}); !errors.Is(err, schemas.ErrInvalid) {
		t.Fatalf("NewComplex with a zero member err = %v, want ErrInvalid", err)
	}
	ips, err := schemas.NewIPAddresses("192.0.2.7", "2001:db8::17")
	if err != nil || len(ips.IPAddresses()) != 2 {
		t.Fatalf("NewIPAddresses = %v, %v", ips, err)
	}
	al, err := schemas.NewAliases(email, tenant)
	if err != nil || len(al.Identifiers()) != 2 {
		t.Fatalf("NewAliases = %v, %v", al, err)
	}
}
