package receiver_test

// An SSF 1.0 transmitter written from spec/ssf.md §17.3 alone, the way the OpenID conformance suite emulates one
// when it tests a receiver: discovery metadata, bearer-token management endpoints, one stream per receiver (409
// on a second create), poll by default with endpoint_url <poll>?stream_id=<id>, RS256 SETs with typ
// secevent+jwt and a kid, single-string aud, no txn. It signs with crypto/rsa by hand and shares no code with
// ssfd's transmitter or keys package, so the receiver is tested against an independent implementation.

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const emuToken = "emulator-token"

type emulator struct {
	t   *testing.T
	srv *httptest.Server
	key *rsa.PrivateKey
	kid string
	aud string

	mu          sync.Mutex
	stream      map[string]any // the one stream, nil when there is none
	bodies      []map[string]json.RawMessage
	queue       map[string]string // poll: jti → SET, unacknowledged
	order       []string
	acked       []string
	setErrs     map[string]string // jti → err code reported by the receiver
	pushAnswers map[string]int    // jti → HTTP status of the push
	pushBodies  map[string]string // jti → the push answer's body
	statuses    []string
	unsolicited bool
	sent        []signed
	creates     int // streams created
	lists       int // GET /streams without stream_id
	verifies    int // verification requests
	wake        chan struct{}
	seq         int
}

func newEmulator(t *testing.T) *emulator {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e := &emulator{t: t, key: key, kid: "emu-key-1", aud: "https://receiver.example.org/aud",
		queue: map[string]string{}, setErrs: map[string]string{}, pushAnswers: map[string]int{},
		pushBodies: map[string]string{}, wake: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/ssf-configuration", e.metadata)
	mux.HandleFunc("GET /jwks", e.jwks)
	mux.HandleFunc("/streams", e.auth(e.streams))
	mux.HandleFunc("/status", e.auth(e.status))
	mux.HandleFunc("POST /verify", e.auth(e.verify))
	mux.HandleFunc("POST /poll", e.auth(e.poll))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *emulator) issuer() string { return e.srv.URL }

func (e *emulator) metadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{
		"spec_version": "1_0", "issuer": e.issuer(), "jwks_uri": e.issuer() + "/jwks",
		"delivery_methods_supported": []string{"urn:ietf:rfc:8935", "urn:ietf:rfc:8936"},
		"configuration_endpoint":     e.issuer() + "/streams", "status_endpoint": e.issuer() + "/status",
		"verification_endpoint": e.issuer() + "/verify",
	})
}

func (e *emulator) jwks(w http.ResponseWriter, _ *http.Request) {
	enc := base64.RawURLEncoding
	writeJSON(w, 200, map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": e.kid, "use": "sig", "alg": "RS256",
		"n": enc.EncodeToString(e.key.N.Bytes()), "e": enc.EncodeToString(big.NewInt(int64(e.key.E)).Bytes())}}})
}

func (e *emulator) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+emuToken {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeJSON(w, 401, map[string]string{"error": "unauthorized"})
			return
		}
		next(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// receiverFields are the only members a receiver may send (spec/ssf.md CRT-01); stream_id too on PATCH and PUT.
var receiverFields = []string{"events_requested", "delivery", "description"}

func (e *emulator) checkBody(w http.ResponseWriter, r *http.Request, allowID bool) (map[string]json.RawMessage, bool) {
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return nil, false
	}
	for k := range body {
		if !slices.Contains(receiverFields, k) && (!allowID || k != "stream_id") {
			e.t.Errorf("FAIL (CRT-01): the receiver sent the transmitter-supplied member %q", k)
		}
	}
	e.bodies = append(e.bodies, body)
	return body, true
}

func (e *emulator) streams(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := r.URL.Query().Get("stream_id")
	switch r.Method {
	case http.MethodPost:
		body, ok := e.checkBody(w, r, false)
		if !ok {
			return
		}
		if e.stream != nil {
			writeJSON(w, 409, map[string]string{"error": "conflict", "error_description": "one stream per receiver"})
			return
		}
		delivery := map[string]any{"method": "urn:ietf:rfc:8936"}
		if raw, ok := body["delivery"]; ok {
			_ = json.Unmarshal(raw, &delivery)
		}
		if delivery["method"] == "urn:ietf:rfc:8935" && delivery["endpoint_url"] == nil {
			e.t.Error("FAIL: push delivery needs an endpoint_url")
		}
		e.seq++
		e.creates++
		sid := fmt.Sprintf("emu-stream-%d", e.seq)
		if delivery["method"] == "urn:ietf:rfc:8936" {
			delivery["endpoint_url"] = e.issuer() + "/poll?stream_id=" + sid
		}
		var requested []string
		_ = json.Unmarshal(body["events_requested"], &requested)
		e.stream = map[string]any{"stream_id": sid, "iss": e.issuer(), "aud": e.aud, "delivery": delivery,
			"events_supported": supportedEvents, "events_requested": requested, "events_delivered": supportedEvents,
			"status": "enabled"}
		if raw, ok := body["description"]; ok {
			var d string
			_ = json.Unmarshal(raw, &d)
			e.stream["description"] = d
		}
		writeJSON(w, 201, e.config())
		if e.unsolicited {
			subject := e.streamSubject(sid)
			go func() { e.send(e.setFor(verificationType, map[string]any{}, subject)) }()
		}
	case http.MethodGet:
		if id == "" {
			e.lists++
		}
		switch {
		case id == "" && e.stream == nil:
			writeJSON(w, 200, []any{})
		case id == "":
			writeJSON(w, 200, []any{e.config()})
		case e.stream == nil || e.stream["stream_id"] != id:
			writeJSON(w, 404, map[string]string{"error": "not_found"})
		default:
			writeJSON(w, 200, e.config())
		}
	case http.MethodPatch, http.MethodPut:
		body, ok := e.checkBody(w, r, true)
		if !ok {
			return
		}
		var sid string
		_ = json.Unmarshal(body["stream_id"], &sid)
		if e.stream == nil || e.stream["stream_id"] != sid {
			writeJSON(w, 404, map[string]string{"error": "not_found"})
			return
		}
		if raw, ok := body["description"]; ok {
			var d string
			_ = json.Unmarshal(raw, &d)
			e.stream["description"] = d
		} else if r.Method == http.MethodPut {
			delete(e.stream, "description")
		}
		writeJSON(w, 200, e.config())
	case http.MethodDelete:
		switch {
		case id == "":
			writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		case e.stream == nil || e.stream["stream_id"] != id:
			writeJSON(w, 404, map[string]string{"error": "not_found"})
		default:
			e.stream = nil
			w.WriteHeader(204)
		}
	}
}

// config returns the stream without the emulator's own bookkeeping member.
func (e *emulator) config() map[string]any {
	out := map[string]any{}
	for k, v := range e.stream {
		if k != "status" {
			out[k] = v
		}
	}
	return out
}

func (e *emulator) status(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stream == nil {
		writeJSON(w, 404, map[string]string{"error": "not_found"})
		return
	}
	if r.Method == http.MethodPost {
		var body struct {
			StreamID string `json:"stream_id"`
			Status   string `json:"status"`
		}
		if json.NewDecoder(r.Body).Decode(&body) != nil || !slices.Contains([]string{"enabled", "paused", "disabled"}, body.Status) {
			writeJSON(w, 400, map[string]string{"error": "invalid_request"})
			return
		}
		e.stream["status"] = body.Status
		e.statuses = append(e.statuses, body.Status)
	}
	writeJSON(w, 200, map[string]any{"stream_id": e.stream["stream_id"], "status": e.stream["status"]})
}

func (e *emulator) verify(w http.ResponseWriter, r *http.Request) {
	var body struct {
		StreamID string `json:"stream_id"`
		State    string `json:"state"`
	}
	if json.NewDecoder(r.Body).Decode(&body) != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	e.mu.Lock()
	e.verifies++
	ok := e.stream != nil && e.stream["stream_id"] == body.StreamID
	e.mu.Unlock()
	if !ok {
		writeJSON(w, 404, map[string]string{"error": "not_found"})
		return
	}
	w.WriteHeader(204)
	payload := map[string]any{}
	if body.State != "" {
		payload["state"] = body.State
	}
	go e.send(e.setFor(verificationType, payload, e.streamSubject(body.StreamID)))
}

func (e *emulator) streamSubject(id string) map[string]any {
	return map[string]any{"format": "opaque", "id": id}
}

// poll serves RFC 8936: acknowledgements and errors first, then up to maxEvents (default 16) unacknowledged
// SETs, waiting up to a second for one unless returnImmediately.
func (e *emulator) poll(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MaxEvents         *int                         `json:"maxEvents"`
		ReturnImmediately bool                         `json:"returnImmediately"`
		Ack               []string                     `json:"ack"`
		SetErrs           map[string]map[string]string `json:"setErrs"`
	}
	if json.NewDecoder(r.Body).Decode(&req) != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	maxEvents := 16
	if req.MaxEvents != nil {
		maxEvents = *req.MaxEvents
	}
	e.mu.Lock()
	for _, jti := range req.Ack {
		e.acked = append(e.acked, jti)
		delete(e.queue, jti)
	}
	for jti, se := range req.SetErrs {
		e.setErrs[jti] = se["err"]
		delete(e.queue, jti)
	}
	e.mu.Unlock()
	deadline := time.After(time.Second)
	for {
		e.mu.Lock()
		sets := map[string]string{}
		for _, jti := range e.order {
			if set, ok := e.queue[jti]; ok && len(sets) < maxEvents {
				sets[jti] = set
			}
		}
		more := len(e.queue) > len(sets)
		e.mu.Unlock()
		if len(sets) > 0 || req.ReturnImmediately || maxEvents == 0 {
			writeJSON(w, 200, map[string]any{"sets": sets, "moreAvailable": more})
			return
		}
		select {
		case <-e.wake:
		case <-deadline:
			writeJSON(w, 200, map[string]any{"sets": sets})
			return
		case <-r.Context().Done():
			return
		}
	}
}

// signed is a SET with its jti and event type.
type signed struct {
	jti, token, typ string
}

// setFor builds and signs a SET of the stream: RS256, typ secevent+jwt, kid, single-string aud, no txn.
func (e *emulator) setFor(eventType string, payload, subject map[string]any) signed {
	s := e.sign(nil, e.claims(eventType, payload, subject))
	s.typ = eventType
	return s
}

func (e *emulator) claims(eventType string, payload, subject map[string]any) map[string]any {
	e.mu.Lock()
	e.seq++
	jti := fmt.Sprintf("emu-jti-%d", e.seq)
	e.mu.Unlock()
	return map[string]any{"iss": e.issuer(), "jti": jti, "iat": time.Now().Unix(), "aud": e.aud, "sub_id": subject,
		"events": map[string]any{eventType: payload}}
}

// sign signs claims by hand; header members in over replace the defaults (nil values remove them).
func (e *emulator) sign(over map[string]any, claims map[string]any) signed {
	header := map[string]any{"alg": "RS256", "typ": "secevent+jwt", "kid": e.kid}
	for k, v := range over {
		if v == nil {
			delete(header, k)
		} else {
			header[k] = v
		}
	}
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(claims)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, e.key, crypto.SHA256, digest[:])
	if err != nil {
		e.t.Fatal(err)
	}
	return signed{jti: claims["jti"].(string), token: input + "." + enc.EncodeToString(sig)}
}

// send delivers a SET by the stream's method: a push (recording the receiver's answer) or a queued poll SET.
func (e *emulator) send(s signed) {
	e.mu.Lock()
	e.sent = append(e.sent, s)
	if e.stream == nil {
		e.mu.Unlock()
		return
	}
	delivery := e.stream["delivery"].(map[string]any)
	e.mu.Unlock()
	if delivery["method"] == "urn:ietf:rfc:8935" {
		req, _ := http.NewRequest(http.MethodPost, delivery["endpoint_url"].(string), strings.NewReader(s.token))
		req.Header.Set("Content-Type", "application/secevent+jwt")
		req.Header.Set("Accept", "application/json")
		if auth, ok := delivery["authorization_header"].(string); ok {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		status, body := 0, ""
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			status, body = resp.StatusCode, string(bytes.TrimSpace(b))
			if status == 400 && resp.Header.Get("Content-Language") == "" {
				e.t.Errorf("FAIL (PU-21): a 400 for %s has no Content-Language", s.jti)
			}
		}
		e.mu.Lock()
		e.pushAnswers[s.jti], e.pushBodies[s.jti] = status, body
		e.mu.Unlock()
		return
	}
	e.mu.Lock()
	e.queue[s.jti] = s.token
	e.order = append(e.order, s.jti)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// outcome returns what became of a SET: "202" (push), "ack" (poll), a setErrs code, or "" while unknown.
func (e *emulator) outcome(jti string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st, ok := e.pushAnswers[jti]; ok {
		if st == 400 {
			var body struct {
				Err string `json:"err"`
			}
			_ = json.Unmarshal([]byte(e.pushBodies[jti]), &body)
			return "400 " + body.Err
		}
		if st == 202 && e.pushBodies[jti] != "" {
			return "202 with a body"
		}
		return fmt.Sprint(st)
	}
	switch n := count(e.acked, jti); {
	case n == 1:
		return "ack"
	case n > 1:
		return fmt.Sprintf("ack x%d", n)
	}
	if code, ok := e.setErrs[jti]; ok {
		return code
	}
	return ""
}

// waitOutcome waits (bounded) until the receiver answered for jti.
func (e *emulator) waitOutcome(jti string) string {
	e.t.Helper()
	for range 500 {
		if o := e.outcome(jti); o != "" {
			return o
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("the receiver never answered for %s", jti)
	return ""
}

// counts returns how many streams were created, lists asked for and verifications requested.
func (e *emulator) counts() (creates, lists, verifies int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.creates, e.lists, e.verifies
}

func (e *emulator) streamID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stream == nil {
		return ""
	}
	return e.stream["stream_id"].(string)
}

// supportedEvents are the CAEP event types the emulator offers, with the examples it sends.
var supportedEvents = []string{
	"https://schemas.openid.net/secevent/caep/event-type/session-revoked",
	"https://schemas.openid.net/secevent/caep/event-type/token-claims-change",
	"https://schemas.openid.net/secevent/caep/event-type/credential-change",
	"https://schemas.openid.net/secevent/caep/event-type/assurance-level-change",
	"https://schemas.openid.net/secevent/caep/event-type/device-compliance-change",
	"https://schemas.openid.net/secevent/caep/event-type/session-established",
	"https://schemas.openid.net/secevent/caep/event-type/session-presented",
	"https://schemas.openid.net/secevent/caep/event-type/risk-level-change",
}

// caepExamples are the payloads of CAEP 1.0's examples, one per supported event type.
var caepExamples = map[string]map[string]any{
	supportedEvents[0]: {"event_timestamp": 1615304991643, "initiating_entity": "policy",
		"reason_admin": map[string]any{"en": "Landspeed Policy Violation: C076E82F"}},
	supportedEvents[1]: {"event_timestamp": 1615304991643, "claims": map[string]any{"role": "ro-admin"}},
	supportedEvents[2]: {"credential_type": "fido2-roaming", "change_type": "create", "fido2_aaguid": "accced6a-63f5-490a-9eea-e59bc1896cfc",
		"friendly_name": "Jane's USB authenticator", "initiating_entity": "user", "event_timestamp": 1615304991643},
	supportedEvents[3]: {"namespace": "NIST-AAL", "current_level": "nist-aal2", "previous_level": "nist-aal1", "change_direction": "increase",
		"initiating_entity": "user", "event_timestamp": 1615304991643},
	supportedEvents[4]: {"previous_status": "compliant", "current_status": "not-compliant", "initiating_entity": "policy",
		"event_timestamp": 1615304991643},
	supportedEvents[5]: {"fp_ua": "abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611", "acr": "AAL2", "amr": []string{"otp"},
		"event_timestamp": 1615304991643},
	supportedEvents[6]: {"fp_ua": "abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611", "ext_id": "12345", "event_timestamp": 1615304991643},
	supportedEvents[7]: {"principal": "USER", "current_level": "LOW", "previous_level": "HIGH", "risk_reason": "PASSWORD_FOUND_IN_DATA_BREACH",
		"event_timestamp": 1615304991643},
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// sentOf returns the SETs sent so far of an event type.
func (e *emulator) sentOf(eventType string) []signed {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []signed
	for _, s := range e.sent {
		if s.typ == eventType {
			out = append(out, s)
		}
	}
	return out
}
