package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// SchemaBaseURI is the base of the $id of every embedded JSON Schema.
const SchemaBaseURI = "https://github.com/ssfd/ssfd/schemas/jsonschema/"

// Files holds the JSON Schemas (draft 2020-12) of the wire vocabulary: defs.json, subject.json, set.json,
// stream-configuration.json and events/<namespace>-<name>.json for each event type. They are published so that
// producers in any language can check what they send.
//
//go:embed jsonschema
var Files embed.FS

// compiled holds every schema, compiled once on first use.
type compiled struct {
	set, subject, stream *jsonschema.Schema
	events               map[EventType]*jsonschema.Schema
}

var loadSchemas = sync.OnceValues(func() (*compiled, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	var ids []string
	err := fs.WalkDir(Files, "jsonschema", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".json" {
			return err
		}
		data, err := Files.ReadFile(p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		id := SchemaBaseURI + strings.TrimPrefix(p, "jsonschema/")
		ids = append(ids, id)
		return c.AddResource(id, doc)
	})
	if err != nil {
		return nil, fmt.Errorf("schemas: load JSON Schemas: %w", err)
	}
	out := &compiled{events: make(map[EventType]*jsonschema.Schema, len(eventSpecs))}
	for _, target := range []struct {
		file string
		dst  **jsonschema.Schema
	}{{"set.json", &out.set}, {"subject.json", &out.subject}, {"stream-configuration.json", &out.stream}} {
		if *target.dst, err = c.Compile(SchemaBaseURI + target.file); err != nil {
			return nil, fmt.Errorf("schemas: compile %s: %w", target.file, err)
		}
	}
	for t := range eventSpecs {
		file := SchemaBaseURI + "events/" + SchemaFile(t)
		if out.events[t], err = c.Compile(file); err != nil {
			return nil, fmt.Errorf("schemas: compile %s: %w", file, err)
		}
	}
	return out, nil
})

// ValidateEvent checks an event payload against the JSON Schema of its type and reports every problem with its
// JSON Pointer. Payloads of unknown event types only have to be JSON objects (SSF 1.0 §4.2.3).
func ValidateEvent(t EventType, payload []byte) error {
	s, err := loadSchemas()
	if err != nil {
		return err
	}
	sch, ok := s.events[t]
	if !ok {
		var c checker
		decodeObject(&c, "", payload)
		return c.err()
	}
	return validate(sch, "", payload)
}

// ValidateSET checks the claims of a SET against set.json and, for a known event type, its payload against the
// event's schema, reporting every problem with its JSON Pointer.
func ValidateSET(claims []byte) error {
	s, err := loadSchemas()
	if err != nil {
		return err
	}
	var c checker
	c.merge("", validate(s.set, "", claims))
	var envelope struct {
		Events map[string]json.RawMessage `json:"events"`
	}
	if json.Unmarshal(claims, &envelope) == nil && len(envelope.Events) == 1 {
		for uri, payload := range envelope.Events {
			if t, err := ParseEventType(uri); err == nil {
				if sch, ok := s.events[t]; ok {
					c.merge("", validate(sch, pointer("/events", uri), payload))
				}
			}
		}
	}
	return c.err()
}

// ValidateSubject checks a subject identifier against subject.json.
func ValidateSubject(data []byte) error {
	s, err := loadSchemas()
	if err != nil {
		return err
	}
	return validate(s.subject, "", data)
}

// ValidateStreamConfiguration checks a stream configuration against stream-configuration.json.
func ValidateStreamConfiguration(data []byte) error {
	s, err := loadSchemas()
	if err != nil {
		return err
	}
	return validate(s.stream, "", data)
}

var english = message.NewPrinter(language.English)

// validate runs one schema over data and turns its error tree into problems under prefix.
func validate(sch *jsonschema.Schema, prefix string, data []byte) error {
	var c checker
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		c.add(prefix, "is not valid JSON")
		return c.err()
	}
	err = sch.Validate(doc)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		if err != nil {
			c.add(prefix, "%v", err)
		}
		return c.err()
	}
	seen := map[Problem]bool{}
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, cause := range e.Causes {
				walk(cause)
			}
			return
		}
		p := prefix
		for _, tok := range e.InstanceLocation {
			p = pointer(p, tok)
		}
		pr := Problem{Path: p, Message: e.ErrorKind.LocalizedString(english)}
		if !seen[pr] {
			seen[pr] = true
			c.problems = append(c.problems, pr)
		}
	}
	walk(ve)
	return c.err()
}
