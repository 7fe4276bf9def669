package issuer_test

import (
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ssfd/ssfd/issuer"
)

// FuzzParseTokenRequest: any form body parses to a request or an *issuer.Error with an OAuth code; a parsed
// request has a supported grant, the parameters its grant needs, scope tokens without spaces, and resources that
// are absolute URIs without fragments.
func FuzzParseTokenRequest(f *testing.F) {
	for _, seed := range []string{
		"grant_type=client_credentials&scope=a+b&resource=https%3A%2F%2Ftools.example.org",
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=x&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&resource=https://a&resource=https://b",
		"grant_type=refresh_token&refresh_token=r_x",
		"grant_type=client_credentials&grant_type=client_credentials",
		"grant_type=password", "scope=a%20%20b&grant_type=client_credentials", "resource=relative&grant_type=client_credentials",
		"client_assertion=x&grant_type=client_credentials", "", "%zz", "grant_type=client_credentials&scope=",
	} {
		f.Add(seed)
	}
	codes := []string{issuer.CodeInvalidRequest, issuer.CodeInvalidScope, issuer.CodeInvalidTarget, issuer.CodeUnsupportedGrantType}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return // the HTTP layer refuses bodies that are not forms
		}
		req, err := issuer.ParseTokenRequest(form)
		if err != nil {
			var oe *issuer.Error
			if !errors.As(err, &oe) || !slices.Contains(codes, oe.Code) || oe.Status != 400 {
				t.Fatalf("error %v is not a 400 OAuth error with a known code", err)
			}
			return
		}
		if !slices.Contains(issuer.GrantTypes(), req.GrantType) {
			t.Fatalf("parsed an unsupported grant %q", req.GrantType)
		}
		if req.GrantType == issuer.GrantTokenExchange && (req.SubjectToken == "" || req.SubjectTokenType == "") {
			t.Fatal("an exchange without its subject token parsed")
		}
		if req.GrantType == issuer.GrantRefreshToken && req.RefreshToken == "" {
			t.Fatal("a refresh without its token parsed")
		}
		for _, s := range req.Scopes {
			if s == "" || strings.ContainsAny(s, " \"\\") {
				t.Fatalf("scope token %q", s)
			}
		}
		for _, r := range req.Resources {
			u, err := url.Parse(r)
			if err != nil || !u.IsAbs() || strings.Contains(r, "#") {
				t.Fatalf("resource %q", r)
			}
		}
	})
}

// FuzzParseClientAssertion: any string either names a client (iss = sub, with aud, exp and jti present) or fails
// with invalid_client; it never panics.
func FuzzParseClientAssertion(f *testing.F) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	head := enc(`{"alg":"ES256","kid":"k"}`)
	for _, claims := range []string{
		`{"iss":"c","sub":"c","aud":"https://as","exp":1,"jti":"j"}`,
		`{"iss":"c","sub":"d","aud":["https://as"],"exp":1,"jti":"j"}`,
		`{"iss":"c","sub":"c","aud":[],"exp":1,"jti":"j"}`,
		`{"iss":"c","sub":"c","aud":"x","jti":"j"}`, `[]`, `null`, `{"exp":"soon"}`,
	} {
		f.Add(head + "." + enc(claims) + ".sig")
	}
	f.Add("a.b")
	f.Add("")
	f.Fuzz(func(t *testing.T, assertion string) {
		iss, err := issuer.ParseClientAssertion(assertion)
		if err != nil {
			var oe *issuer.Error
			if !errors.As(err, &oe) || oe.Code != issuer.CodeInvalidClient || oe.Status != 401 {
				t.Fatalf("error %v is not invalid_client", err)
			}
			return
		}
		if iss == "" {
			t.Fatal("an assertion parsed without naming a client")
		}
	})
}
