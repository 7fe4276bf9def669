package schemas

import (
	"encoding/json"
	"slices"
)

// Audience is the aud of a SET or a stream configuration: one or more strings identifying the receivers
// (RFC 7519 §4.1.3, SSF 1.0 §4.1.8). It decodes from a string or an array of strings and encodes a single value
// as a string, which is what most peers send (spec/ssf.md GO-01).
type Audience []string

// MarshalJSON writes one value as a string and several as an array.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return marshal(a[0])
	}
	return marshal([]string(a))
}

// UnmarshalJSON reads a string or an array of strings; null leaves the audience empty, which validation refuses
// where an audience is required.
func (a *Audience) UnmarshalJSON(data []byte) error {
	if jsonKind(data) == "null" {
		*a = nil
		return nil
	}
	if jsonKind(data) == "string" {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*a = Audience{s}
		return nil
	}
	if jsonKind(data) != "array" {
		return &json.UnmarshalTypeError{Value: jsonKind(data), Type: typeOf[Audience]()}
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return err
	}
	*a = list
	return nil
}

// Contains reports whether v is one of the audience values, compared exactly.
func (a Audience) Contains(v string) bool { return slices.Contains(a, v) }

func (a Audience) check(c *checker, path string) {
	if len(a) == 0 {
		c.add(path, "must name at least one audience (SSF 1.0 §4.1.8)")
	}
	for i, v := range a {
		if v == "" {
			if len(a) == 1 {
				c.add(path, "must not be empty")
			} else {
				c.add(pointer(path, itoa(i)), "must not be empty")
			}
		}
	}
}
