package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
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
