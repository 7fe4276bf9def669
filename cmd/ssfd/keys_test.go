package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

func TestKeysGenerateAndJWKS(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tx.jwk")
	code, out, errOut := runCLI(t, "", "keys", "generate", "--alg", "ES256", "--out", path)
	if code != 0 || !strings.Contains(out, "ES256") {
		t.Fatalf("generate: %d %q %q", code, out, errOut)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", info.Mode(), err)
	}
	code, out, _ = runCLI(t, "", "keys", "jwks", path)
	if code != 0 || strings.Contains(out, `"d"`) {
		t.Fatalf("jwks: %d %s", code, out)
	}
	if _, err := keys.ParseJWKS([]byte(out)); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "", "keys", "generate", "--alg", "HS256", "--out", path); code != 2 || !strings.Contains(errOut, "never allowed") {
		t.Fatalf("HS256: %d %q", code, errOut)
	}
}

// signedSET writes a key and its JWKS to dir and returns a SET signed with it.
func signedSET(t *testing.T, dir string, changes func(*schemas.SET)) (string, string) {
	t.Helper()
	k, err := keys.Generate(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	jwksPath := filepath.Join(dir, "jwks.json")
	data, _ := json.Marshal(keys.NewJWKS(k))
	if err := os.WriteFile(jwksPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	subject, _ := schemas.NewEmail("ada@example.com")
	ev, _ := schemas.NewEvent(&schemas.SessionRevoked{})
	set := &schemas.SET{Issuer: "https://tx.example.net", ID: "j1", IssuedAt: schemas.Unix(time.Now().Unix()),
		Audience: schemas.Audience{"https://rx"}, Subject: subject, Event: ev}
	if changes != nil {
		changes(set)
	}
	claims, err := set.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := keys.NewSigner(k)
	tok, err := s.Sign(claims, keys.TypeSET)
	if err != nil {
		t.Fatal(err)
	}
	return tok, jwksPath
}

func TestSETDecodeAndVerify(t *testing.T) {
	dir := t.TempDir()
	tok, jwks := signedSET(t, dir, nil)
	code, out, _ := runCLI(t, tok, "set", "decode")
	if code != 0 || !strings.Contains(out, `"typ": "secevent+jwt"`) || !strings.Contains(out, `"jti": "j1"`) {
		t.Fatalf("decode from stdin: %d %s", code, out)
	}
	code, out, errOut := runCLI(t, "", "set", "verify", "--jwks", jwks, "--iss", "https://tx.example.net", "--aud", "https://rx", tok)
	if code != 0 || !strings.Contains(errOut, "valid") || !strings.Contains(out, `"jti": "j1"`) {
		t.Fatalf("verify valid: %d %q %q", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "", "set", "verify", "--jwks", jwks, "--iss", "https://tx.example.net", "--aud", "https://other", tok)
	if code != 1 || !strings.Contains(errOut, "invalid_audience") {
		t.Fatalf("verify wrong aud: %d %q", code, errOut)
	}
	bad, jwks2 := signedSET(t, dir, func(s *schemas.SET) { s.Extra = nil; s.Issuer = "https://evil" })
	code, _, errOut = runCLI(t, "", "set", "verify", "--jwks", jwks2, "--iss", "https://tx.example.net", "--aud", "https://rx", bad)
	if code != 1 || !strings.Contains(errOut, "invalid_issuer") {
		t.Fatalf("verify wrong iss: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "", "set", "verify", "--jwks", jwks2, "--iss", "https://tx.example.net", "--aud", "https://rx", tok)
	if code != 1 || !strings.Contains(errOut, "invalid_key") {
		t.Fatalf("verify with the wrong JWKS: %d %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "", "set", "decode", "not-a-jws"); code != 1 {
		t.Fatalf("decode garbage: exit %d", code)
	}
	if code, _, _ := runCLI(t, "", "set", "verify", tok); code != 2 {
		t.Fatalf("verify without flags is a usage error: exit %d", code)
	}
}

func TestKeysRotateMovesNextToActive(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	ring, err := keys.NewRing(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keys", "set-ES256.json")
	if err := keys.SaveRing(path, ring); err != nil {
		t.Fatal(err)
	}
	var next string
	for _, k := range ring.JWKS().Keys() {
		if k.ID() != ring.Active().ID() {
			next = k.ID()
		}
	}
	code, out, errOut := runCLI(t, "", "keys", "rotate", "--data-dir", dir, "--alg", "ES256")
	if code != 0 || !strings.Contains(out, "active key "+next) {
		t.Fatalf("rotate: %d %q %q", code, out, errOut)
	}
	back, err := keys.LoadRing(path)
	if err != nil || back.Active().ID() != next || len(back.JWKS().Keys()) != 3 {
		t.Fatalf("after rotate: %v, %d published", err, len(back.JWKS().Keys()))
	}
}
