package push_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/transmitter/push"
)

func TestSEC10_GuardRefusesNonPublicAddresses(t *testing.T) {
	g := push.NewGuard()
	refused := []string{"127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "::1", "::ffff:127.0.0.1",
		"fe80::1", "fc00::1", "0.0.0.0", "100.64.0.1", "224.0.0.1", "192.0.2.10", "2001:db8::1", "::"}
	for _, a := range refused {
		if err := g.CheckAddr(netip.MustParseAddr(a)); !errors.Is(err, push.ErrTargetRefused) {
			t.Errorf("%s: err = %v, want refused", a, err)
		}
	}
	for _, a := range []string{"93.184.216.34", "2606:4700:4700::1111", "8.8.8.8"} {
		if err := g.CheckAddr(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s: public unicast refused: %v", a, err)
		}
	}
	allowed := push.NewGuard(push.AllowNetworks(netip.MustParsePrefix("10.0.0.0/8")))
	if err := allowed.CheckAddr(netip.MustParseAddr("10.1.2.3")); err != nil {
		t.Errorf("an allow-listed network is allowed: %v", err)
	}
	if err := allowed.CheckAddr(netip.MustParseAddr("127.0.0.1")); err == nil {
		t.Error("the allow-list allows only its networks")
	}
}

func TestSEC10_GuardChecksURLs(t *testing.T) {
	g := push.NewGuard()
	ctx := context.Background()
	for _, u := range []string{"https://127.0.0.1/x", "https://localhost/x", "https://[::1]:8443/x", "http://93.184.216.34/x",
		"ftp://93.184.216.34/x", "https://user:pw@93.184.216.34/x", "/relative", "https://[::ffff:10.0.0.1]/"} {
		if err := g.CheckURL(ctx, u); !errors.Is(err, push.ErrTargetRefused) {
			t.Errorf("%s: err = %v, want refused", u, err)
		}
	}
	if err := g.CheckURL(ctx, "https://93.184.216.34/push"); err != nil {
		t.Errorf("a public https URL: %v", err)
	}
	dev := push.NewGuard(push.AllowAnyTarget())
	if err := dev.CheckURL(ctx, "http://127.0.0.1:9000/push"); err != nil {
		t.Errorf("--dev allows loopback: %v", err)
	}
}

func TestGuardIsCheckedAgainAtDialTime(t *testing.T) {
	// The stream was accepted when its name resolved to a public address; now it resolves to loopback (DNS
	// rebinding). The dial-time check must still refuse it.
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits++; w.WriteHeader(http.StatusAccepted) }))
	defer srv.Close()
	s := push.NewSender(push.NewGuard(), 5*time.Second)
	out := s.Send(context.Background(), schemas.Delivery{Method: schemas.DeliveryPush, EndpointURL: srv.URL}, "a.b.c")
	if out.Result != push.Retry || hits != 0 {
		t.Fatalf("dial to loopback: result %v, %d requests reached the server", out.Result, hits)
	}
	allowed := push.NewSender(push.NewGuard(push.AllowNetworks(netip.MustParsePrefix("127.0.0.0/8"))), 5*time.Second)
	if out := allowed.Send(context.Background(), schemas.Delivery{Method: schemas.DeliveryPush, EndpointURL: srv.URL}, "a.b.c"); out.Result != push.Delivered {
		t.Fatalf("allow-listed loopback: %+v", out)
	}
}

func TestReceiverAnswersAreClassified(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		header http.Header
		want   push.Result
		code   schemas.ErrorCode
	}{
		{"202 is delivered", 202, "", nil, push.Delivered, ""},
		{"200 is not success (PU-10)", 200, "", nil, push.Retry, ""},
		{"invalid_audience is permanent", 400, `{"err":"invalid_audience","description":"x"}`, nil, push.Permanent, schemas.ErrInvalidAudience},
		{"invalid_key is permanent until an operator redrives", 400, `{"err":"invalid_key","description":"x"}`, nil, push.Permanent, schemas.ErrInvalidKey},
		{"authentication_failed is retried", 400, `{"err":"authentication_failed","description":"x"}`, nil, push.Retry, schemas.ErrAuthenticationFailed},
		{"access_denied is retried", 400, `{"err":"access_denied","description":"x"}`, nil, push.Retry, schemas.ErrAccessDenied},
		{"400 without a body is permanent", 400, `oops`, nil, push.Permanent, schemas.ErrInvalidRequest},
		{"401 is retried", 401, "", nil, push.Retry, ""},
		{"429 is retried", 429, "", http.Header{"Retry-After": []string{"7"}}, push.Retry, ""},
		{"503 is retried", 503, "", nil, push.Retry, ""},
		{"413 is permanent", 413, "", nil, push.Permanent, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			s := push.NewSender(push.NewGuard(push.AllowAnyTarget()), 5*time.Second)
			out := s.Send(context.Background(), schemas.Delivery{EndpointURL: srv.URL}, "a.b.c")
			if out.Result != tc.want || out.Status != tc.status || out.Error.Err != tc.code {
				t.Fatalf("outcome %+v", out)
			}
			if tc.status == 429 && out.RetryAfter != 7*time.Second {
				t.Fatalf("Retry-After read as %s", out.RetryAfter)
			}
		})
	}
}

func TestBackoffHasFullJitterWithinBounds(t *testing.T) {
	b := push.Backoff{Min: time.Second, Max: 5 * time.Minute}
	for attempt := 1; attempt <= 20; attempt++ {
		ceiling := min(time.Second<<(attempt-1), 5*time.Minute)
		for range 50 {
			if d := b.Delay(attempt, 0); d < 0 || d > ceiling {
				t.Fatalf("attempt %d: delay %s outside [0, %s]", attempt, d, ceiling)
			}
		}
	}
	if d := b.Delay(1, time.Minute); d < time.Minute {
		t.Fatalf("Retry-After must be honoured: %s", d)
	}
}
