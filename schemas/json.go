package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"unicode/utf8"
)

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(data []byte) string {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return "nothing"
	}
	switch data[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// decodeObject decodes data as a JSON object into its members, refusing anything else with a problem at path.
func decodeObject(c *checker, path string, data []byte) (map[string]json.RawMessage, bool) {
	if jsonKind(data) != "object" {
		c.add(path, "must be a JSON object, not %s", jsonKind(data))
		return nil, false
	}
	m, err := splitObject(data, c.within)
	if err != nil {
		c.add(path, "is not valid JSON: %v", err)
		return nil, false
	}
	c.within = true
	return m, true
}

// splitObject returns the members of a JSON object as encoding/json would decode it into a
// map[string]json.RawMessage (the last of repeated names wins), without reflection: it validates data, then cuts
// the members out of one copy of it; with trusted, data is a member of an object split before, already valid and
// private. A member name with an escape sequence or invalid UTF-8 makes it fall back to encoding/json. Callers
// check that data is an object first (jsonKind).
func splitObject(data []byte, trusted bool) (map[string]json.RawMessage, error) {
	if !trusted {
		if !json.Valid(data) {
			var m map[string]json.RawMessage
			return nil, json.Unmarshal(data, &m) // for encoding/json's description of what is wrong
		}
		data = bytes.Clone(data) // the members alias this copy, never the caller's buffer
	}
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return nil, errors.New("not a JSON object")
	}
	m := make(map[string]json.RawMessage, 8)
	i = skipSpace(data, i+1)
	for i < len(data) && data[i] != '}' {
		end := skipString(data, i) // data is valid: a member starts with its quoted name
		name := data[i+1 : end-1]
		if bytes.IndexByte(name, '\\') >= 0 || !utf8.Valid(name) { // encoding/json unescapes or repairs it
			var slow map[string]json.RawMessage
			return slow, json.Unmarshal(data, &slow)
		}
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		vend := skipValue(data, i)
		m[string(name)] = json.RawMessage(data[i:vend:vend])
		i = skipSpace(data, vend)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return m, nil
}

// skipSpace returns the index of the first byte at or after i that is not JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string that starts at i, in valid JSON.
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the JSON value that starts at i, in valid JSON.
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				i = skipString(data, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for ; i < len(data); i++ { // a number or a literal
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}

// plainString returns the text of a JSON string that needs no unescaping or repair (no backslash, no control
// character, valid UTF-8): what encoding/json would decode, without its reflection.
func plainString(data []byte) (string, bool) {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return "", false
	}
	inner := data[1 : len(data)-1]
	for _, b := range inner {
		if b < 0x20 || b == '\\' || b == '"' {
			return "", false
		}
	}
	if !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// decodeInto decodes data into v and turns a JSON type mismatch into a problem at its path under base.
func decodeInto(c *checker, base string, data []byte, v any) bool {
	if p, ok := v.(*string); ok {
		if text, ok := plainString(data); ok {
			*p = text
			return true
		}
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return true
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		path := base
		if te.Field != "" {
			for _, f := range strings.Split(te.Field, ".") {
				if !embeddedStructs[f] {
					path = pointer(path, f)
				}
			}
		}
		c.add(path, "must be %s, not %s", describeType(te.Type), te.Value)
		return false
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		c.merge(base, err)
		return false
	}
	c.add(base, "%v", err)
	return false
}

// embeddedStructs are Go names that encoding/json puts into error paths for embedded structs; they are not
// members of the JSON document.
var embeddedStructs = map[string]bool{"CAEPCommon": true}

// describeType names a Go type by the JSON it expects.
func describeType(t reflect.Type) string {
	switch {
	case t == numericDateType:
		return "a number (NumericDate)"
	case t.Kind() == reflect.Map:
		if t.Elem().Kind() == reflect.String {
			return "an object of strings (e.g. a language map such as {\"en\": \"...\"})"
		}
		return "an object"
	case t.Kind() == reflect.Slice:
		return "an array"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "a boolean"
	case t.Kind() == reflect.Struct:
		return "an object"
	}
	return "a number"
}

// marshal encodes v without HTML escaping, so URIs and reasons survive byte for byte.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// appendString appends s as a JSON string: quotes, backslashes and control characters escaped, invalid UTF-8
// replaced by U+FFFD, and nothing else escaped (no HTML escaping, as in marshal).
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
