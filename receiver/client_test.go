package receiver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
)

// fakeTransmitter is a minimal SSF transmitter written from the spec, independent of package transmitter: its
// metadata names issuer, and every stream it returns carries streamIss.
func fakeTransmitter(t *testing.T, issuerOf func(base string) string, streamIss func(base string) string) *httptest.Server {
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/ssf-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(schemas.TransmitterMetadata{Issuer: issuerOf(srv.URL), ConfigurationEndpoint: srv.URL + "/streams"})
	})
	mux.HandleFunc("/streams", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_token","error_description":"who are you"}`))
			return
		}
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		for _, forbidden := range []string{"stream_id", "iss", "aud", "events_supported", "events_delivered"} {
			if _, ok := body[forbidden]; ok && r.Method == http.MethodPost {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(schemas.StreamConfiguration{StreamID: "s1", Issuer: streamIss(srv.URL), Audience: schemas.Audience{"rx"},
			EventsDelivered: []schemas.EventType{}, Delivery: schemas.Delivery{Method: schemas.DeliveryPoll, EndpointURL: srv.URL + "/poll?stream_id=s1"}})
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func same(base string) string { return base }

func TestMD05_MetadataIssuerMustBeTheOneAskedFor(t *testing.T) {
	srv := fakeTransmitter(t, func(string) string { return "https://someone-else.example" }, same)
	if _, err := receiver.Discover(context.Background(), srv.URL); err == nil || !strings.Contains(err.Error(), "someone-else") {
		t.Fatalf("err = %v", err)
	}
}

func TestAPI05_StreamIssuerIsChecked(t *testing.T) {
	srv := fakeTransmitter(t, same, func(string) string { return "https://evil.example" })
	c, err := receiver.Discover(context.Background(), srv.URL, receiver.WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream(context.Background(), receiver.StreamRequest{Description: "x"}); err == nil || !strings.Contains(err.Error(), "evil") {
		t.Fatalf("CRT-08: err = %v", err)
	}
}

func TestCRT01_CreateSendsOnlyReceiverMembersAndReportsErrors(t *testing.T) {
	srv := fakeTransmitter(t, same, same)
	c, err := receiver.Discover(context.Background(), srv.URL, receiver.WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.CreateStream(context.Background(), receiver.StreamRequest{EventsRequested: []schemas.EventType{schemas.EventSessionRevoked}})
	if err != nil || cfg.StreamID != "s1" || cfg.Delivery.EndpointURL != srv.URL+"/poll?stream_id=s1" {
		t.Fatalf("create: %+v %v", cfg, err)
	}
	bad, err := receiver.Discover(context.Background(), srv.URL, receiver.WithToken("wrong"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.CreateStream(context.Background(), receiver.StreamRequest{})
	var ae *receiver.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Code != "invalid_token" {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Poll(context.Background(), "", schemas.PollRequest{}); err == nil {
		t.Fatal("polling without an endpoint must fail")
	}
}

func TestClientCredentialsGetsATokenOnceAndReusesIt(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		id, secret, ok := r.BasicAuth()
		if err := r.ParseForm(); err != nil || !ok || id != "rx" || secret != "s3cret" ||
			r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "ssf.manage ssf.read" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok-1","token_type":"Bearer","expires_in":3600}`))
	}))
	defer srv.Close()
	src := receiver.ClientCredentials(srv.URL, "rx", "s3cret", []string{"ssf.manage", "ssf.read"})
	for range 3 {
		tok, err := src(context.Background())
		if err != nil || tok != "tok-1" {
			t.Fatalf("token: %q %v", tok, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("the token endpoint was called %d times, want once", calls.Load())
	}
	if _, err := receiver.ClientCredentials(srv.URL, "rx", "wrong", nil)(context.Background()); err == nil {
		t.Fatal("a refused client must be an error")
	}
}
