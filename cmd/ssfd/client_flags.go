package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/receiver"
)

// clientFlags are the flags of every command that talks to a transmitter.
type clientFlags struct {
	url       string
	token     string
	tokenFile string
	timeout   time.Duration
}

func (f *clientFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", envOr("SSFD_URL", "http://127.0.0.1:8080"), "issuer URL of the transmitter (env SSFD_URL)")
	fl.StringVar(&f.token, "token", os.Getenv("SSFD_TOKEN"), "bearer token (env SSFD_TOKEN)")
	fl.StringVar(&f.tokenFile, "token-file", os.Getenv("SSFD_TOKEN_FILE"), "file holding the bearer token, e.g. data/admin.token (env SSFD_TOKEN_FILE)")
	fl.DurationVar(&f.timeout, "timeout", 60*time.Second, "timeout of each HTTP request")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// bearer returns the token from --token or --token-file.
func (f *clientFlags) bearer() (string, error) {
	switch {
	case f.token != "" && f.tokenFile != "":
		return "", errors.New("give --token or --token-file, not both")
	case f.token != "":
		return f.token, nil
	case f.tokenFile != "":
		data, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(data)), nil
	}
	return "", errors.New("a token is required: --token, --token-file, SSFD_TOKEN or SSFD_TOKEN_FILE")
}

func (f *clientFlags) httpClient() *http.Client { return &http.Client{Timeout: f.timeout} }

// client discovers the transmitter at --url and returns an authenticated client.
func (f *clientFlags) client(ctx context.Context) (*receiver.Client, error) {
	tok, err := f.bearer()
	if err != nil {
		return nil, err
	}
	return receiver.Discover(ctx, strings.TrimSuffix(f.url, "/"), receiver.WithToken(tok), receiver.WithHTTPClient(f.httpClient()))
}
