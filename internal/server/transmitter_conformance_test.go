package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
)

// These tests mirror the OpenID conformance suite's transmitter modules that apply to poll delivery
// (spec/ssf.md §17.2), one test per module, named after it, against a real server over HTTP.

func TestOpenIDSSFTransmitterMetadata(t *testing.T) {
	h := newHarness(t)
	status, hdr, body := h.call(http.MethodGet, "/.well-known/ssf-configuration", "", nil)
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("MD-02: %d %s", status, hdr.Get("Content-Type"))
	}
	var md map[string]any
	if err := json.Unmarshal(body, &md); err != nil {
		t.Fatal(err)
	}
	if md["issuer"] != h.issuer || md["spec_version"] != "1_0" {
		t.Fatalf("MD-05: issuer %v spec_version %v", md["issuer"], md["spec_version"])
	}
	for _, m := range []string{"jwks_uri", "configuration_endpoint", "status_endpoint", "add_subject_endpoint",
		"remove_subject_endpoint", "verification_endpoint", "delivery_methods_supported", "authorization_schemes"} {
		if md[m] == nil {
			t.Errorf("metadata lacks %s", m)
		}
	}
	for k, v := range md {
		if arr, ok := v.([]any); ok && len(arr) == 0 {
			t.Errorf("MD-06: %s is an empty array", k)
		}
	}
	if md["default_subjects"] != "ALL" && md["default_subjects"] != "NONE" {
		t.Errorf("default_subjects = %v", md["default_subjects"])
	}
	schemesJSON, _ := json.Marshal(md["authorization_schemes"])
	if !strings.Contains(string(schemesJSON), `"spec_urn":"urn:ietf:rfc:6749"`) {
		t.Errorf("authorization_schemes = %s", schemesJSON)
	}
	status, _, jwks := h.call(http.MethodGet, md["jwks_uri"].(string), "", nil)
	if status != http.StatusOK || !strings.Contains(string(jwks), `"kid"`) {
		t.Fatalf("JWKS: %d %s", status, jwks)
	}
}

func TestOpenIDSSFTransmitterMetadataWithIssuerPath(t *testing.T) {
	// MD-01: with an issuer path, the well-known path is inserted between host and path.
	h := newHarnessWithIssuerPath(t, "/tenants/acme")
	status, _, body := h.call(http.MethodGet, "/.well-known/ssf-configuration/tenants/acme", "", nil)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	var md schemas.TransmitterMetadata
	if err := json.Unmarshal(body, &md); err != nil || md.Issuer != h.issuer || !strings.HasSuffix(h.issuer, "/tenants/acme") {
		t.Fatalf("issuer %q (want %q): %v", md.Issuer, h.issuer, err)
	}
	if !strings.HasPrefix(md.ConfigurationEndpoint, h.issuer+"/") {
		t.Fatalf("endpoints live below the issuer: %s", md.ConfigurationEndpoint)
	}
	cfg := h.createPollStream()
	if cfg.Issuer != h.issuer {
		t.Fatalf("stream iss %s", cfg.Issuer)
	}
}

func TestOpenIDSSFStreamControlHappyPath(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	cfg := h.createPollStream()
	if cfg.StreamID == "" || cfg.Issuer != h.issuer || len(cfg.Audience) == 0 || cfg.EventsDelivered == nil ||
		cfg.Delivery.Method != schemas.DeliveryPoll || cfg.Delivery.EndpointURL == "" {
		t.Fatalf("CRT-02/CRT-03: %+v", cfg)
	}
	if !slices.Equal(cfg.EventsDelivered, []schemas.EventType{schemas.EventSessionRevoked, schemas.EventCredentialChange}) {
		t.Fatalf("CRT-04: events_delivered %v", cfg.EventsDelivered)
	}
	got, err := h.client.GetStream(ctx, cfg.StreamID)
	if err != nil || got.StreamID != cfg.StreamID {
		t.Fatalf("read: %v %v", got, err)
	}
	upd, err := h.client.UpdateStream(ctx, cfg.StreamID, map[string]any{"description": "patched"})
	if err != nil || upd.Description != "patched" || len(upd.EventsRequested) != 2 {
		t.Fatalf("UPD-02: %+v %v", upd, err)
	}
	rpl, err := h.client.ReplaceStream(ctx, cfg.StreamID, receiver.StreamRequest{
		EventsRequested: []schemas.EventType{schemas.EventCredentialChange}})
	if err != nil || rpl.Description != "" || !slices.Equal(rpl.EventsDelivered, []schemas.EventType{schemas.EventCredentialChange}) {
		t.Fatalf("RPL-02: %+v %v", rpl, err)
	}
	st, err := h.client.Status(ctx, cfg.StreamID)
	if err != nil || st.Status != schemas.StatusEnabled {
		t.Fatalf("CRT-09: status %v %v", st, err)
	}
	for _, want := range []schemas.StreamStatus{schemas.StatusEnabled, schemas.StatusPaused, schemas.StatusDisabled} {
		st, err := h.client.SetStatus(ctx, cfg.StreamID, want, "test")
		if err != nil || st.Status != want || st.StreamID != cfg.StreamID {
			t.Fatalf("ST-21: %v %v", st, err)
		}
	}
	if err := h.client.DeleteStream(ctx, cfg.StreamID); err != nil {
		t.Fatalf("DEL-02: %v", err)
	}
	if _, err := h.client.GetStream(ctx, cfg.StreamID); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("deleted stream: %v", err)
	}
}

func isStatus(err error, status int) bool {
	var ae *receiver.APIError
	return asAPIError(err, &ae) && ae.Status == status
}

func asAPIError(err error, target **receiver.APIError) bool {
	for err != nil {
		if ae, ok := err.(*receiver.APIError); ok { //nolint:errorlint // walking the chain by hand
			*target = ae
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func TestOpenIDSSFStreamControlErrors(t *testing.T) {
	h := newHarness(t)
	cfg := h.createPollStream()
	const bad = "not-a-valid-token"
	unknown := `{"stream_id":"unknownStream123"}`
	cases := []struct {
		module       string
		method, path string
		token        string
		body         any
		want         []int
	}{
		{"openid-ssf-stream-control-error-create-stream-with-broken-input", http.MethodPost, "/ssf/streams", h.token, `{"delivery":`, []int{400}},
		{"openid-ssf-stream-control-error-create-stream-with-invalid-token", http.MethodPost, "/ssf/streams", bad, `{}`, []int{401}},
		{"openid-ssf-stream-control-error-create-stream-with-duplicate-config", http.MethodPost, "/ssf/streams", h.token, `{}`, []int{201, 409}},
		{"openid-ssf-stream-control-error-read-stream-with-invalid-token", http.MethodGet, "/ssf/streams?stream_id=" + cfg.StreamID, bad, nil, []int{401}},
		{"openid-ssf-stream-control-error-read-unknown-stream", http.MethodGet, "/ssf/streams?stream_id=unknownStream123", h.token, nil, []int{404}},
		{"openid-ssf-stream-control-error-update-stream-with-invalid-token", http.MethodPatch, "/ssf/streams", bad, `{"stream_id":"` + cfg.StreamID + `"}`, []int{400, 401}},
		{"openid-ssf-stream-control-error-update-stream-with-invalid-body", http.MethodPatch, "/ssf/streams", h.token, `{"stream_id":`, []int{400}},
		{"openid-ssf-stream-control-error-update-unknown-stream", http.MethodPatch, "/ssf/streams", h.token, unknown, []int{404}},
		{"openid-ssf-stream-control-error-replace-stream-with-invalid-body", http.MethodPut, "/ssf/streams", h.token, `[1,2`, []int{400}},
		{"openid-ssf-stream-control-error-replace-stream-with-invalid-token", http.MethodPut, "/ssf/streams", bad, `{"stream_id":"` + cfg.StreamID + `"}`, []int{401}},
		{"openid-ssf-stream-control-error-replace-unknown-stream", http.MethodPut, "/ssf/streams", h.token, unknown, []int{404}},
		{"openid-ssf-stream-control-error-delete-stream-with-invalid-token", http.MethodDelete, "/ssf/streams?stream_id=" + cfg.StreamID, bad, nil, []int{401}},
		{"openid-ssf-stream-control-error-delete-unknown-stream", http.MethodDelete, "/ssf/streams?stream_id=unknownStream123", h.token, nil, []int{404}},
		{"API-07 malformed body is 400 before an unknown stream is 404", http.MethodPatch, "/ssf/streams", h.token, `{"stream_id":"unknownStream123",`, []int{400}},
		{"DEL-03 delete without stream_id is 400", http.MethodDelete, "/ssf/streams", h.token, nil, []int{400}},
		{"ST-10 status without stream_id is 400", http.MethodGet, "/ssf/status", h.token, nil, []int{400}},
		{"ST-23 unknown status value is 400", http.MethodPost, "/ssf/status", h.token, `{"stream_id":"` + cfg.StreamID + `","status":"Enabled"}`, []int{400}},
		{"ST-12 status of an unknown stream is 404", http.MethodGet, "/ssf/status?stream_id=unknownStream123", h.token, nil, []int{404}},
		{"UPD-07 aud cannot change", http.MethodPatch, "/ssf/streams", h.token, `{"stream_id":"` + cfg.StreamID + `","aud":"https://other"}`, []int{400}},
		{"UPD-04 events_delivered must equal its value", http.MethodPatch, "/ssf/streams", h.token, `{"stream_id":"` + cfg.StreamID + `","events_delivered":[]}`, []int{400}},
		{"CRT-05 push without endpoint_url is 400", http.MethodPost, "/ssf/streams", h.token, `{"delivery":{"method":"urn:ietf:rfc:8935"}}`, []int{400}},
		{"CRT-03 unsupported delivery method is 400", http.MethodPost, "/ssf/streams", h.token, `{"delivery":{"method":"urn:example:carrier-pigeon"}}`, []int{400}},
		{"AZ-03 a token in the query is refused", http.MethodGet, "/ssf/streams?access_token=" + h.token, "", nil, []int{400}},
		{"AZ-03 no token is 401", http.MethodGet, "/ssf/streams", "", nil, []int{401}},
		{"GO-10 an unknown method is 405", http.MethodHead, "/ssf/verify", h.token, nil, []int{405}},
		{"VF-03 verification of an unknown stream is 404", http.MethodPost, "/ssf/verify", h.token, unknown, []int{404}},
		{"SJ-04 add-subject with an invalid subject is 400", http.MethodPost, "/ssf/subjects:add", h.token, `{"stream_id":"` + cfg.StreamID + `","subject":{"format":"email"}}`, []int{400}},
		{"SJ-04 add-subject to an unknown stream is 404", http.MethodPost, "/ssf/subjects:add", h.token, `{"stream_id":"unknownStream123","subject":{"format":"email","email":"a@b"}}`, []int{404}},
	}
	for _, tc := range cases {
		t.Run(tc.module, func(t *testing.T) {
			status, hdr, body := h.call(tc.method, tc.path, tc.token, tc.body)
			if !slices.Contains(tc.want, status) {
				t.Fatalf("status %d, want one of %v: %s", status, tc.want, body)
			}
			if status == http.StatusUnauthorized && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("API-08: 401 without a Bearer challenge")
			}
			if status >= 400 && tc.method != http.MethodHead {
				var e struct {
					Error string `json:"error"`
				}
				if json.Unmarshal(body, &e) != nil || e.Error == "" {
					t.Fatalf("error body %q has no error code", body)
				}
			}
		})
	}
}

func TestOpenIDSSFStreamSubjectControl(t *testing.T) {
	h := newHarness(t)
	cfg := h.createPollStream()
	subject := map[string]any{"format": "email", "email": "ada@example.com"}
	status, _, body := h.call(http.MethodPost, "/ssf/subjects:add", h.token, map[string]any{"stream_id": cfg.StreamID, "subject": subject, "verified": true})
	if status != http.StatusOK || len(body) != 0 {
		t.Fatalf("SJ-02: %d %q", status, body)
	}
	status, _, _ = h.call(http.MethodPost, "/ssf/subjects:remove", h.token, map[string]any{"stream_id": cfg.StreamID, "subject": subject})
	if status != http.StatusNoContent {
		t.Fatalf("SJ-11: %d", status)
	}
	// SJ-15: the legacy phone format is accepted on this input.
	status, _, body = h.call(http.MethodPost, "/ssf/subjects:add", h.token, map[string]any{"stream_id": cfg.StreamID,
		"subject": map[string]any{"format": "phone", "phone_number": "+442071838750"}})
	if status != http.StatusOK {
		t.Fatalf("SJ-15: %d %s", status, body)
	}
	if err := h.client.DeleteStream(context.Background(), cfg.StreamID); err != nil {
		t.Fatal(err)
	}
}

func TestOpenIDSSFTransmitterStreamVerificationPollOnly(t *testing.T) {
	h := newHarness(t)
	cfg := h.createPollStream()
	if err := h.client.Verify(context.Background(), cfg.StreamID, "state-poll-only"); err != nil {
		t.Fatalf("VF-02: %v", err)
	}
	max := 10
	resp := h.poll(cfg, schemas.PollRequest{MaxEvents: &max, ReturnImmediately: true})
	if len(resp.Sets) != 1 {
		t.Fatalf("want the verification SET, got %d", len(resp.Sets))
	}
	for jti, tok := range resp.Sets {
		set := h.checkVerificationSET(cfg, tok, "state-poll-only")
		if set.ID != jti {
			t.Fatalf("PO-10: sets key %s is not the jti %s", jti, set.ID)
		}
	}
}

func TestOpenIDSSFTransmitterStreamVerificationPollAndAck(t *testing.T) {
	h := newHarness(t)
	cfg := h.createPollStream()
	ctx := context.Background()
	if err := h.client.Verify(ctx, cfg.StreamID, "first"); err != nil {
		t.Fatal(err)
	}
	first := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true})
	if len(first.Sets) != 1 {
		t.Fatalf("first poll: %d SETs", len(first.Sets))
	}
	var firstJTI string
	for jti := range first.Sets {
		firstJTI = jti
	}
	if err := h.client.Verify(ctx, cfg.StreamID, "second"); err != nil {
		t.Fatal(err)
	}
	second := h.poll(cfg, schemas.PollRequest{Ack: []string{firstJTI}, ReturnImmediately: true})
	if len(second.Sets) != 1 || second.Sets[firstJTI] != "" {
		t.Fatalf("PO-12: the acknowledged SET came back or the second is missing: %v", second.Sets)
	}
	for _, tok := range second.Sets {
		h.checkVerificationSET(cfg, tok, "second")
	}
}

func TestOpenIDSSFTransmitterStreamVerificationAckOnly(t *testing.T) {
	h := newHarness(t)
	cfg := h.createPollStream()
	if err := h.client.Verify(context.Background(), cfg.StreamID, "ack-only"); err != nil {
		t.Fatal(err)
	}
	got := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true})
	var jtis []string
	for jti := range got.Sets {
		jtis = append(jtis, jti)
	}
	zero := 0
	ackOnly := h.poll(cfg, schemas.PollRequest{MaxEvents: &zero, ReturnImmediately: true, Ack: jtis})
	if len(ackOnly.Sets) != 0 {
		t.Fatalf("PO-04: an acknowledge-only request returned SETs")
	}
	if again := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true}); len(again.Sets) != 0 {
		t.Fatalf("the acknowledged SET was delivered again")
	}
}
