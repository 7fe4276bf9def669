package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Subject is a subject identifier (RFC 9493 §3, SSF 1.0 §3): a simple identifier of one format, an aliases list,
// or a complex subject whose named members are simple identifiers of one principal. A Subject built by
// ParseSubject or a New function is valid; the zero Subject is "no subject".
type Subject struct {
	format  Format
	members map[string]string  // string members of simple formats
	addrs   []string           // ip-addresses
	list    []Subject          // aliases identifiers
	parts   map[string]Subject // complex members by name
	canon   string             // the JSON encoding, deterministic, used for equality
}

// ParseSubject decodes and validates a subject identifier, reporting every problem with its JSON Pointer.
func ParseSubject(data []byte, opts ...ParseOption) (Subject, error) {
	var c checker
	s := parseSubject(&c, "", data, collect(opts), true)
	if err := c.err(); err != nil {
		return Subject{}, err
	}
	return s, nil
}

// parseSubject parses one identifier at path; top is false below aliases and complex, where a complex subject
// may not appear.
func parseSubject(c *checker, path string, data []byte, o parseOptions, top bool) Subject {
	m, ok := decodeObject(c, path, data)
	if !ok {
		return Subject{}
	}
	f, ok := subjectFormat(c, path, m, o)
	if !ok {
		return Subject{}
	}
	var s Subject
	switch f {
	case FormatComplex:
		if !top {
			c.add(pointer(path, "format"), "a complex subject cannot be nested (SSF 1.0 §3.3)")
			return Subject{}
		}
		s = parseComplex(c, path, m, o)
	case FormatAliases:
		s = parseAliases(c, path, m, o)
	case FormatIPAddresses:
		s = parseIPAddresses(c, path, m)
	default:
		s = parseSimple(c, path, f, m)
	}
	if len(c.problems) == 0 {
		s.canon = string(s.encode())
	}
	return s
}

// subjectFormat reads the format member (or, with AcceptLegacy, Google's subject_type) and maps legacy names.
func subjectFormat(c *checker, path string, m map[string]json.RawMessage, o parseOptions) (Format, bool) {
	key := "format"
	raw, ok := m[key]
	if !ok && o.legacy {
		if raw, ok = m["subject_type"]; ok {
			key = "subject_type"
		}
	}
	if !ok {
		c.add(pointer(path, "format"), "is required (RFC 9493 §3)")
		return "", false
	}
	delete(m, key)
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		c.add(pointer(path, key), "must be a string, not %s", jsonKind(raw))
		return "", false
	}
	f := Format(name)
	if modern, isLegacy := legacyFormats[name]; isLegacy {
		if !o.legacy {
			c.add(pointer(path, key), "%q is a legacy format name; SSF 1.0 uses %q (spec/ssf.md §14.2)", name, modern)
			return "", false
		}
		f = modern
	}
	if !f.Known() {
		c.add(pointer(path, key), "unknown subject identifier format %q (RFC 9493 §3, SSF 1.0 §3.5)", name)
		c.unknown = true
		return "", false
	}
	return f, true
}

// e164 is the shape of an E.164 telephone number with its international prefix.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

func parseSimple(c *checker, path string, f Format, m map[string]json.RawMessage) Subject {
	s := Subject{format: f, members: make(map[string]string, len(stringMembers[f]))}
	for _, name := range stringMembers[f] {
		raw, ok := m[name]
		delete(m, name)
		var v string
		switch {
		case !ok:
			c.add(pointer(path, name), "is required for format %q (RFC 9493 §3)", f)
			continue
		case json.Unmarshal(raw, &v) != nil:
			c.add(pointer(path, name), "must be a string, not %s", jsonKind(raw))
			continue
		case v == "":
			c.add(pointer(path, name), "must not be empty (RFC 9493 §3)")
			continue
		}
		s.members[name] = v
	}
	extraMembers(c, path, f, m)
	switch v := s.members; f {
	case FormatAccount:
		if v["uri"] != "" && !strings.HasPrefix(v["uri"], "acct:") {
			c.add(pointer(path, "uri"), "must be an acct: URI (RFC 7565)")
		}
	case FormatPhoneNumber:
		if v["phone_number"] != "" && !e164.MatchString(v["phone_number"]) {
			c.add(pointer(path, "phone_number"), "must be an E.164 number such as +12065550100 (RFC 9493 §3.2.6)")
		}
	case FormatDID:
		if v["url"] != "" && !strings.HasPrefix(v["url"], "did:") {
			c.add(pointer(path, "url"), "must be a DID URL starting with did: (RFC 9493 §3.2.3)")
		}
	}
	return s
}

func parseIPAddresses(c *checker, path string, m map[string]json.RawMessage) Subject {
	const name = "ip-addresses"
	raw, ok := m[name]
	delete(m, name)
	extraMembers(c, path, FormatIPAddresses, m)
	var addrs []string
	switch {
	case !ok:
		c.add(pointer(path, name), "is required for format %q (SSF 1.0 §3.5.3)", FormatIPAddresses)
		return Subject{}
	case !decodeInto(c, pointer(path, name), raw, &addrs):
		return Subject{}
	case len(addrs) == 0:
		c.add(pointer(path, name), "must hold at least one address (SSF 1.0 §3.5.3)")
	}
	for i, a := range addrs {
		if ip, err := netip.ParseAddr(a); err != nil || ip.Zone() != "" {
			c.add(fmt.Sprintf("%s/%d", pointer(path, name), i), "%q is not an IPv4 or IPv6 address (RFC 4001)", a)
		}
	}
	return Subject{format: FormatIPAddresses, addrs: addrs}
}

func parseAliases(c *checker, path string, m map[string]json.RawMessage, o parseOptions) Subject {
	const name = "identifiers"
	raw, ok := m[name]
	delete(m, name)
	extraMembers(c, path, FormatAliases, m)
	var items []json.RawMessage
	switch {
	case !ok:
		c.add(pointer(path, name), "is required for format %q (RFC 9493 §3.2.8)", FormatAliases)
		return Subject{}
	case !decodeInto(c, pointer(path, name), raw, &items):
		return Subject{}
	case len(items) == 0:
		c.add(pointer(path, name), "must hold at least one identifier (RFC 9493 §3.2.8)")
	}
	s := Subject{format: FormatAliases, list: make([]Subject, 0, len(items))}
	for i, item := range items {
		p := fmt.Sprintf("%s/%d", pointer(path, name), i)
		id := parseSubject(c, p, item, o, false)
		if id.format == FormatAliases {
			c.add(pointer(p, "format"), "aliases cannot be nested in aliases (RFC 9493 §3.2.8)")
		}
		s.list = append(s.list, id)
	}
	return s
}

func parseComplex(c *checker, path string, m map[string]json.RawMessage, o parseOptions) Subject {
	if len(m) == 0 {
		c.add(path, "a complex subject needs at least one member such as user or device (SSF 1.0 §3.3)")
	}
	s := Subject{format: FormatComplex, parts: make(map[string]Subject, len(m))}
	for name, raw := range m {
		s.parts[name] = parseSubject(c, pointer(path, name), raw, o, false)
	}
	return s
}

func extraMembers(c *checker, path string, f Format, m map[string]json.RawMessage) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c.add(pointer(path, name), "is not a member of format %q (RFC 9493 §3)", f)
	}
}

// encode writes the identifier with format first and members in their defined order: the deterministic encoding
// that MarshalJSON returns and equality compares.
func (s Subject) encode() []byte {
	var b bytes.Buffer
	b.WriteString(`{"format":`)
	writeString(&b, string(s.format))
	switch s.format {
	case FormatIPAddresses:
		b.WriteString(`,"ip-addresses":[`)
		for i, a := range s.addrs {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(&b, a)
		}
		b.WriteByte(']')
	case FormatAliases:
		b.WriteString(`,"identifiers":[`)
		for i, id := range s.list {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(id.canon)
		}
		b.WriteByte(']')
	case FormatComplex:
		for _, name := range s.Members() {
			b.WriteByte(',')
			writeString(&b, name)
			b.WriteByte(':')
			b.WriteString(s.parts[name].canon)
		}
	default:
		for _, name := range stringMembers[s.format] {
			b.WriteByte(',')
			writeString(&b, name)
			b.WriteByte(':')
			writeString(&b, s.members[name])
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

func writeString(b *bytes.Buffer, s string) {
	b.Write(appendString(nil, s))
}

// MarshalJSON returns the identifier's deterministic encoding; the zero Subject encodes as null.
func (s Subject) MarshalJSON() ([]byte, error) {
	if s.canon == "" {
		return []byte("null"), nil
	}
	return []byte(s.canon), nil
}

// UnmarshalJSON parses strictly with ParseSubject.
func (s *Subject) UnmarshalJSON(data []byte) error {
	parsed, err := ParseSubject(data)
	if err != nil {
		return err
	}
	*s = parsed
	return nil
}

// Format returns the identifier's format ("" for the zero Subject).
func (s Subject) Format() Format { return s.format }

// IsZero reports whether s is the zero Subject.
func (s Subject) IsZero() bool { return s.canon == "" }

// Get returns a string member of a simple identifier, such as "email" or "iss"; "" when there is none.
func (s Subject) Get(member string) string { return s.members[member] }

// IPAddresses returns the addresses of an ip-addresses identifier.
func (s Subject) IPAddresses() []string { return slices.Clone(s.addrs) }

// Identifiers returns the identifiers of an aliases identifier.
func (s Subject) Identifiers() []Subject { return slices.Clone(s.list) }

// Member returns the named member of a complex subject, such as RoleUser.
func (s Subject) Member(name string) (Subject, bool) {
	m, ok := s.parts[name]
	return m, ok
}

// Members lists the member names of a complex subject: the SSF 1.0 §3.3 names in their defined order, then any
// other names sorted.
func (s Subject) Members() []string {
	names := make([]string, 0, len(s.parts))
	for _, r := range roleOrder {
		if _, ok := s.parts[r]; ok {
			names = append(names, r)
		}
	}
	var rest []string
	for name := range s.parts {
		if !slices.Contains(roleOrder, name) {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	return append(names, rest...)
}

// Equal reports whether two identifiers are exactly identical: the same format and member values, whatever the
// member order of their JSON (spec/ssf.md SUB-20).
func (s Subject) Equal(o Subject) bool { return s.canon == o.canon }

// Key is a string that is equal for equal identifiers, for use as a map key.
func (s Subject) Key() string { return s.canon }

// String returns the identifier's JSON.
func (s Subject) String() string { return s.canon }
