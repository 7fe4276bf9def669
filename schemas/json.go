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
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		c.add(path, "is not valid JSON: %v", err)
		return nil, false
	}
	return m, true
}

// decodeInto decodes data into v and turns a JSON type mismatch into a problem at its path under base.
func decodeInto(c *checker, base string, data []byte, v any) bool {
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
