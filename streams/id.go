package streams

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
)

// ID identifies a stream. It uses only RFC 3986 unreserved characters, because it travels in query strings and
// as the id of the stream's opaque subject (SSF 1.0 §8.1.1), and new IDs carry 128 random bits so that they
// cannot be guessed (spec/ssf.md MT-05). Build one with NewID or ParseID.
type ID string

var idShape = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// NewID returns a new random stream ID: 128 random bits, base64url without padding (22 characters), starting with
// a letter or digit so that a command line never takes it for a flag.
func NewID() ID {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' && id[0] != '_' {
			return ID(id)
		}
	}
}

// ParseID checks that s has the shape of a stream ID.
func ParseID(s string) (ID, error) {
	if !idShape.MatchString(s) {
		return "", fmt.Errorf("%w: stream_id must be 1 to 128 RFC 3986 unreserved characters", ErrInvalid)
	}
	return ID(s), nil
}

// String returns the ID.
func (id ID) String() string { return string(id) }
