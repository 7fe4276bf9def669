package receiver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
)

// node is a receiver on a bbolt file with one registration ("tx") that trusts the fixture's keys.
type node struct {
	rcv  *receiver.Receiver
	db   *bolt.DB
	stop func()
}

func startNode(t *testing.T, path string, f *fixture, d *receiver.Dispatcher) *node {
	t.Helper()
	db, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r := receiver.New(db, d)
	if err := r.Add("tx"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetVerifier("tx", f.v); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	n := &node{rcv: r, db: db}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			_ = db.Close()
		})
	}
	t.Cleanup(n.stop)
	return n
}

// counter counts the deliveries of each jti and fails the first failures of them.
type counter struct {
	mu       sync.Mutex
	calls    map[string]int
	failures int
}

func (c *counter) handle(_ context.Context, d receiver.Delivery) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[d.SET.ID]++
	if c.calls[d.SET.ID] <= c.failures {
		return fmt.Errorf("handler down (attempt %d)", c.calls[d.SET.ID])
	}
	return nil
}

func (c *counter) count(jti string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[jti]
}

// eventually polls cond every 10 ms, up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s", what)
}

func TestVAL13_AFailingHandlerIsRetriedAndItsSETKeptUntilItSucceeds(t *testing.T) {
	f := newFixture(t)
	c := &counter{calls: map[string]int{}, failures: 2}
	sink := &counter{calls: map[string]int{}}  // sinks before and after the failing handler: they took the SET
	after := &counter{calls: map[string]int{}} // the first time, and are not called again
	d := receiver.NewDispatcher()
	d.HandleAll(sink.handle)
	d.HandleAll(c.handle)
	d.HandleAll(after.handle)
	n := startNode(t, filepath.Join(t.TempDir(), "rx.db"), f, d)
	ctx := context.Background()
	if err := n.rcv.Receive(ctx, "tx", signWith(t, f.es, keys.TypeSET, claims(nil))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the handler failed once", func() bool { return c.count("j1") >= 1 })
	if w, err := n.db.Waiting(ctx, 0, 10); err != nil || len(w) != 1 || w[0].JTI != "j1" {
		t.Fatalf("after a failed handler the SET must still wait in the inbox: %v %v", w, err)
	}
	eventually(t, "the third attempt succeeded and the inbox is empty", func() bool {
		w, err := n.db.Waiting(ctx, 0, 10)
		return err == nil && len(w) == 0
	})
	if got := c.count("j1"); got != 3 {
		t.Fatalf("the handler ran %d times, want 3 (two failures, one success)", got)
	}
	if got, got2 := sink.count("j1"), after.count("j1"); got != 1 || got2 != 1 {
		t.Fatalf("the handlers that succeeded the first time ran %d and %d times; a retry is for the failed ones only", got, got2)
	}
}

func TestVAL13_AcceptedSETsSurviveARestartAndAreHandledOnce(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "rx.db")
	down := &counter{calls: map[string]int{}, failures: 1 << 30} // every attempt fails: the service is down
	d := receiver.NewDispatcher()
	d.HandleAll(down.handle)
	n := startNode(t, path, f, d)
	ctx := context.Background()
	for i := range 5 {
		tok := signWith(t, f.es, keys.TypeSET, claims(map[string]any{"jti": fmt.Sprintf("r%d", i)}))
		if err := n.rcv.Receive(ctx, "tx", tok); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the first attempts failed", func() bool { return down.count("r4") >= 1 })
	n.stop()

	up := &counter{calls: map[string]int{}}
	d2 := receiver.NewDispatcher()
	d2.HandleAll(up.handle)
	n2 := startNode(t, path, f, d2)
	eventually(t, "every SET was handled after the restart", func() bool {
		for i := range 5 {
			if up.count(fmt.Sprintf("r%d", i)) == 0 {
				return false
			}
		}
		return true
	})
	// A transmitter that retries after the restart (its acknowledgement was lost) is answered but not handled.
	if err := n2.rcv.Receive(ctx, "tx", signWith(t, f.es, keys.TypeSET, claims(map[string]any{"jti": "r0"}))); err != nil {
		t.Fatalf("a replay after a restart must be acknowledged: %v", err)
	}
	eventually(t, "the inbox is empty", func() bool {
		w, err := n2.db.Waiting(ctx, 0, 10)
		return err == nil && len(w) == 0
	})
	for i := range 5 {
		if got := up.count(fmt.Sprintf("r%d", i)); got != 1 {
			t.Fatalf("r%d was handled %d times after the restart, want once", i, got)
		}
	}
	if st := n2.rcv.Statuses()[0]; st.Duplicates != 1 {
		t.Fatalf("status after a replay: %+v", st)
	}
}

func TestDispatcherTypedHandlersAndPanics(t *testing.T) {
	d := receiver.NewDispatcher()
	var got []string
	receiver.On(d, func(_ context.Context, _ receiver.Delivery, e *schemas.SessionRevoked) error {
		got = append(got, "session-revoked:"+string(e.InitiatingEntity))
		return nil
	})
	d.Handle(schemas.EventCredentialChange, func(context.Context, receiver.Delivery) error { panic("boom") })
	set := func(typ schemas.EventType, payload string) receiver.Delivery {
		return receiver.Delivery{Registration: "tx", SET: &schemas.SET{ID: "j", Event: schemas.Event{Type: typ, Payload: []byte(payload)}}}
	}
	if err := d.Dispatch(context.Background(), set(schemas.EventSessionRevoked, `{"initiating_entity":"admin"}`)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "session-revoked:admin" {
		t.Fatalf("the typed handler saw %v", got)
	}
	if err := d.Dispatch(context.Background(), set(schemas.EventCredentialChange, `{}`)); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("a panicking handler must come back as an error: %v", err)
	}
	if err := d.Dispatch(context.Background(), set(schemas.EventAccountPurged, `{}`)); err != nil {
		t.Fatalf("an event nobody handles is done: %v", err)
	}
}

// pushServer serves the push endpoint of a receiver whose registration "tx" expects "Bearer s3cret".
func pushServer(t *testing.T, f *fixture, ready bool) (string, *receiver.Receiver) {
	return pushServerWith(t, f, ready, 10*time.Second)
}

func pushServerWith(t *testing.T, f *fixture, ready bool, setUp time.Duration) (string, *receiver.Receiver) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "rx.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	r := receiver.New(db, receiver.NewDispatcher(), receiver.WithSetUpWait(setUp))
	if err := r.Add("tx"); err != nil {
		t.Fatal(err)
	}
	if ready {
		if err := r.SetVerifier("tx", f.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.SetPushAuthorization("tx", "Bearer s3cret"); err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	r.RegisterPush(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL + receiver.PushPath, r
}

type pushAnswer struct {
	status int
	body   string
	lang   string
}

func push(t *testing.T, url, auth, contentType, body string) pushAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return pushAnswer{status: resp.StatusCode, body: strings.TrimSpace(string(b)), lang: resp.Header.Get("Content-Language")}
}

func TestPushEndpointAnswers(t *testing.T) {
	f := newFixture(t)
	base, r := pushServer(t, f, true)
	valid := signWith(t, f.es, keys.TypeSET, claims(nil))
	const jwt = "application/secevent+jwt"
	cases := []struct {
		id, name             string
		path, auth, ct, body string
		status               int
		code                 schemas.ErrorCode
	}{
		{"RFC8935", "an unknown registration is 404", "nobody", "Bearer s3cret", jwt, valid, 404, schemas.ErrInvalidRequest},
		{"VAL-08", "a missing Authorization is authentication_failed", "tx", "", jwt, valid, 400, schemas.ErrAuthenticationFailed},
		{"VAL-08", "a wrong Authorization is authentication_failed", "tx", "Bearer s3cre7", jwt, valid, 400, schemas.ErrAuthenticationFailed},
		{"PU-02", "another Content-Type is invalid_request", "tx", "Bearer s3cret", "application/json", valid, 400, schemas.ErrInvalidRequest},
		{"RFC8935", "an over-long body is 413", "tx", "Bearer s3cret", jwt, strings.Repeat("a", receiver.MaxPushBody+1), 413, schemas.ErrInvalidRequest},
		{"VAL-01", "an empty body is invalid_request", "tx", "Bearer s3cret", jwt, "", 400, schemas.ErrInvalidRequest},
		{"VAL-04", "a bad signature is authentication_failed", "tx", "Bearer s3cret", jwt, valid[:len(valid)-4] + "AAAA", 400, schemas.ErrAuthenticationFailed},
	}
	for _, tc := range cases {
		t.Run(tc.id+" "+tc.name, func(t *testing.T) {
			got := push(t, base+tc.path, tc.auth, tc.ct, tc.body)
			if got.status != tc.status || !strings.Contains(got.body, `"err":"`+string(tc.code)+`"`) || got.lang != "en" {
				t.Fatalf("got %d %s (Content-Language %q), want %d %s", got.status, got.body, got.lang, tc.status, tc.code)
			}
		})
	}
	for i, ct := range []string{jwt, "application/secevent+jwt; charset=utf-8", ""} {
		got := push(t, base+"tx", "Bearer s3cret", ct, valid)
		if got.status != 202 || got.body != "" {
			t.Fatalf("delivery %d (Content-Type %q): %d %q, want 202 with an empty body (PU-10, VAL-12)", i, ct, got.status, got.body)
		}
	}
	st := r.Statuses()[0]
	if st.Accepted != 1 || st.Duplicates != 2 || st.Rejected[schemas.ErrAuthenticationFailed] != 3 ||
		st.Rejected[schemas.ErrInvalidRequest] != 3 {
		t.Fatalf("status: %+v", st)
	}
}

func TestPushBeforeTheStreamIsSetUpIs503WithRetryAfter(t *testing.T) {
	f := newFixture(t)
	base, r := pushServer(t, f, false)
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = r.SetVerifier("tx", f.v)
	}()
	// A push that arrives while the stream is being created waits for it instead of failing.
	if got := push(t, base+"tx", "Bearer s3cret", "", signWith(t, f.es, keys.TypeSET, claims(nil))); got.status != 202 {
		t.Fatalf("a push during set-up: %+v", got)
	}
	base2, _ := pushServerWith(t, f, false, 300*time.Millisecond)
	req, _ := http.NewRequest(http.MethodPost, base2+"tx", strings.NewReader(signWith(t, f.es, keys.TypeSET, claims(nil))))
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a push to a registration that never got ready: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestWebhookSinkPostsJSONAndFailsOnNon2xx(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	var keysSeen []string
	status := 500
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		keysSeen = append(keysSeen, r.Header.Get("Idempotency-Key")+"|"+r.Header.Get("X-Env")+"|"+r.Header.Get("Content-Type"))
		w.WriteHeader(status)
	}))
	defer srv.Close()
	sink := receiver.NewWebhookSink(srv.URL, http.Header{"X-Env": {"test"}}, time.Second)
	set, err := schemas.ParseSET(claims(map[string]any{"txn": "t-1"}))
	if err != nil {
		t.Fatal(err)
	}
	dl := receiver.Delivery{Registration: "tx", SET: set}
	if err := sink.Handle(context.Background(), dl); err == nil {
		t.Fatal("a 500 from the webhook must fail the handler so that the SET is retried")
	}
	mu.Lock()
	status = 204
	mu.Unlock()
	if err := sink.Handle(context.Background(), dl); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 || keysSeen[0] != keysSeen[1] || !strings.HasPrefix(keysSeen[0], issuer) ||
		!strings.HasSuffix(keysSeen[0], "|test|application/json") {
		t.Fatalf("webhook headers: %v", keysSeen)
	}
	for _, want := range []string{`"jti":"j1"`, `"txn":"t-1"`, `"iss":"` + issuer + `"`, `"event_type":"` + string(schemas.EventSessionRevoked) + `"`, `"sub_id":{`} {
		if !strings.Contains(bodies[1], want) {
			t.Fatalf("webhook body %s lacks %s", bodies[1], want)
		}
	}
}

func TestAJWKSOutageIsNotARefusal(t *testing.T) {
	f := newFixture(t)
	var down atomic.Bool
	down.Store(true)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(keys.NewJWKS(f.es))
	}))
	defer jwks.Close()
	remote, err := keys.NewRemoteJWKS(jwks.URL, keys.WithMinRefetchInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	v, err := receiver.NewVerifier(remote, issuer, []string{audience})
	if err != nil {
		t.Fatal(err)
	}
	base, r := pushServer(t, f, false)
	if err := r.SetVerifier("tx", v); err != nil {
		t.Fatal(err)
	}
	tok := signWith(t, f.es, keys.TypeSET, claims(nil))
	got := push(t, base+"tx", "Bearer s3cret", "", tok)
	if got.status != http.StatusServiceUnavailable {
		t.Fatalf("a push while the transmitter's JWKS is down: %+v, want 503 so that it is retried", got)
	}
	var ve *receiver.VerifyError
	if err := r.ReceiveAll(context.Background(), "tx", []string{tok})[0]; err == nil || errors.As(err, &ve) {
		t.Fatalf("a polled SET while the JWKS is down must be neither acknowledged nor refused: %v", err)
	}
	if st := r.Statuses()[0]; len(st.Rejected) != 0 || st.Accepted != 0 {
		t.Fatalf("status: %+v", st)
	}
	down.Store(false)
	if got := push(t, base+"tx", "Bearer s3cret", "", tok); got.status != http.StatusAccepted {
		t.Fatalf("the same push once the JWKS is back: %+v", got)
	}
}

func TestVAL11_AVerificationAskedForBeforeARestartIsNotRefused(t *testing.T) {
	f := newFixture(t)
	v, err := receiver.NewVerifier(keys.StaticKeys(keys.NewJWKS(f.es)), issuer, []string{audience})
	if err != nil {
		t.Fatal(err)
	}
	base, r := pushServer(t, f, false)
	if err := r.SetVerifier("tx", v); err != nil {
		t.Fatal(err)
	}
	verification := func(jti string, iat time.Time) string {
		return signWith(t, f.es, keys.TypeSET, claims(map[string]any{"jti": jti, "iat": iat.Unix(),
			"events": map[string]any{string(schemas.EventVerification): map[string]any{"state": "asked-before-restart"}}}))
	}
	if got := push(t, base+"tx", "Bearer s3cret", "", verification("v-old", time.Now().Add(-time.Hour))); got.status != http.StatusAccepted {
		t.Fatalf("a verification issued before this receiver started, with a state it no longer knows: %+v", got)
	}
	if got := push(t, base+"tx", "Bearer s3cret", "", verification("v-new", time.Now().Add(2*time.Second))); got.status != http.StatusBadRequest ||
		!strings.Contains(got.body, "invalid_state") {
		t.Fatalf("a verification issued now with a state nobody asked for: %+v", got)
	}
	if st := r.Statuses()[0]; !st.LastVerification.IsZero() {
		t.Fatalf("a redelivered verification must not count as this receiver's: %+v", st)
	}
}

// countingInbox counts the pages the receiver reads.
type countingInbox struct {
	*bolt.DB
	reads atomic.Int64
}

func (c *countingInbox) Waiting(ctx context.Context, after uint64, max int) ([]receiver.Entry, error) {
	c.reads.Add(1)
	return c.DB.Waiting(ctx, after, max)
}

func TestABacklogOfFailingSETsDoesNotStarveNewerOnes(t *testing.T) {
	if testing.Short() {
		t.Skip("signs and stores 4,600 SETs")
	}
	f := newFixture(t)
	db, err := bolt.Open(filepath.Join(t.TempDir(), "rx.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inbox := &countingInbox{DB: db}
	var good atomic.Int64
	d := receiver.NewDispatcher()
	d.HandleAll(func(_ context.Context, dl receiver.Delivery) error {
		if strings.HasPrefix(dl.SET.ID, "bad-") {
			return errors.New("this sink is down for these")
		}
		good.Add(1)
		return nil
	})
	r := receiver.New(inbox, d)
	if err := r.Add("tx"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetVerifier("tx", f.v); err != nil {
		t.Fatal(err)
	}
	const bad, fine = 4300, 300 // more failing entries than one drain reads
	tokens := make([]string, 0, bad+fine)
	s, _ := keys.NewSigner(f.es)
	for i := range bad + fine {
		jti := fmt.Sprintf("bad-%05d", i)
		if i >= bad {
			jti = fmt.Sprintf("ok-%05d", i)
		}
		tok, err := s.Sign(claims(map[string]any{"jti": jti}), keys.TypeSET)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() { _ = r.Run(ctx); close(done) }()
	for lo := 0; lo < bad; lo += 256 { // the failing ones first, and let them fail once
		for _, err := range r.ReceiveAll(ctx, "tx", tokens[lo:min(lo+256, bad)]) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "the failing SETs were tried", func() bool {
		n, err := r.Backlog(ctx)
		return err == nil && n == bad && inbox.reads.Load() > int64(bad/512)
	})
	for _, err := range r.ReceiveAll(ctx, "tx", tokens[bad:]) {
		if err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the SETs behind the failing ones were handled", func() bool { return good.Load() == fine })
	// While everything left is backing off, the receiver waits (retries falling due are gathered for half a
	// second) instead of reading the inbox over and over: at most one pass of bad/512+1 pages per half second,
	// however long this goroutine was descheduled.
	before, start := inbox.reads.Load(), time.Now()
	time.Sleep(300 * time.Millisecond)
	passes := int64(time.Since(start)/(500*time.Millisecond)) + 2
	if reads := inbox.reads.Load() - before; reads > passes*(bad/512+1) {
		t.Fatalf("%d page reads in %v while every entry was backing off", reads, time.Since(start))
	}
}
