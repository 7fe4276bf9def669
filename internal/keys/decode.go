package keys

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Decode splits a compact JWS into its protected header and payload WITHOUT verifying it, for inspection tools
// such as `ssfd set decode`. Never act on what it returns.
func Decode(token string) (header json.RawMessage, payload []byte, err error) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("%w: a compact JWS has three parts, this has %d", ErrMalformed, len(parts))
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || !json.Valid(h) {
		return nil, nil, fmt.Errorf("%w: the header is not base64url JSON", ErrMalformed)
	}
	payload, err = base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the payload is not base64url", ErrMalformed)
	}
	return h, payload, nil
}

// peekAlgorithm reads alg from the protected header so that a disallowed algorithm gets its own error.
func peekAlgorithm(token string) (Algorithm, error) {
	head, _, _ := strings.Cut(token, ".")
	h, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", fmt.Errorf("%w: the header is not base64url", ErrMalformed)
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(h, &hdr); err != nil || hdr.Alg == "" {
		return "", fmt.Errorf("%w: the header has no alg", ErrMalformed)
	}
	return Algorithm(hdr.Alg), nil
}
