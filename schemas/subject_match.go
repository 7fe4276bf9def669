package schemas

// Matches reports whether an event about subject s belongs on a stream that holds subject o, by the rules of
// SSF 1.0 §8.1.3.1 (spec/ssf.md SUB-20 to SUB-23). The relation is symmetric.
//
//   - Two simple identifiers match only when they are exactly identical.
//   - Two complex subjects match when, for every member name in either, one of them lacks it or both hold
//     identical values: an absent member is a wildcard. So {tenant: acme} matches {tenant: acme, user: X}.
//   - A simple identifier and a complex subject (a case SSF leaves open, SUB-23) match when the simple identifier
//     is identical to one of the complex subject's members. The wildcard rule is deliberately not applied here:
//     a stream that asked for user X must not receive every event of a tenant that names no user.
//   - An aliases identifier matches whatever one of its identifiers matches (RFC 9493 §3.2.8: they all name the
//     same subject).
//
// The zero Subject matches nothing.
func (s Subject) Matches(o Subject) bool {
	switch {
	case s.IsZero() || o.IsZero():
		return false
	case s.format == FormatAliases:
		return anyMatches(s.list, o)
	case o.format == FormatAliases:
		return anyMatches(o.list, s)
	case s.format == FormatComplex && o.format == FormatComplex:
		return complexMatch(s, o)
	case s.format == FormatComplex:
		return memberEquals(s, o)
	case o.format == FormatComplex:
		return memberEquals(o, s)
	}
	return s.canon == o.canon
}

func anyMatches(list []Subject, o Subject) bool {
	for _, id := range list {
		if id.Matches(o) {
			return true
		}
	}
	return false
}

// complexMatch applies SSF 1.0 §8.1.3.1: every member present in both must be identical. Members that are
// themselves aliases compare by matching, so an aliases user matches any one of its identifiers.
func complexMatch(a, b Subject) bool {
	for name, am := range a.parts {
		if bm, ok := b.parts[name]; ok && !am.Matches(bm) {
			return false
		}
	}
	return true
}

// memberEquals reports whether simple identifier s matches one member of complex subject c.
func memberEquals(c, s Subject) bool {
	for _, m := range c.parts {
		if m.Matches(s) {
			return true
		}
	}
	return false
}
