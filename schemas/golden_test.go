package schemas_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssfd/ssfd/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden from the encoder")

// indent formats JSON the way the golden files are written: two spaces, a final newline.
func indent(t *testing.T, compact []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, compact, "", "  "); err != nil {
		t.Fatalf("indent: %v", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// checkGolden compares what the encoder produced with the file, or rewrites the file with -update.
func checkGolden(t *testing.T, path string, want, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("%s does not encode back identically:\n got %s\nwant %s", path, got, want)
	}
}

func goldenFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in %s: %v", dir, err)
	}
	return files
}

func TestGoldenEvents(t *testing.T) {
	byFile := map[string]schemas.EventType{}
	for _, et := range schemas.KnownEventTypes() {
		byFile[schemas.SchemaFile(et)] = et
	}
	seen := map[schemas.EventType]bool{}
	for _, path := range goldenFiles(t, "events") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			et, ok := byFile[filepath.Base(path)]
			if !ok {
				t.Fatalf("no event type has the schema file %s", filepath.Base(path))
			}
			seen[et] = true
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := schemas.ValidateEvent(et, want); err != nil {
				t.Fatalf("JSON Schema: %v", err)
			}
			p, err := schemas.DecodePayload(et, want)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			ev, err := schemas.NewEvent(p)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			checkGolden(t, path, want, indent(t, ev.Payload))
		})
	}
	for _, et := range schemas.KnownEventTypes() {
		if !seen[et] {
			t.Errorf("no golden file for %s", et)
		}
	}
}

func TestGoldenSubjects(t *testing.T) {
	seen := map[schemas.Format]bool{}
	for _, path := range goldenFiles(t, "subjects") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := schemas.ValidateSubject(want); err != nil {
				t.Fatalf("JSON Schema: %v", err)
			}
			s, err := schemas.ParseSubject(want)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if string(s.Format()) != strings.TrimSuffix(filepath.Base(path), ".json") {
				t.Fatalf("format %s in file %s", s.Format(), path)
			}
			seen[s.Format()] = true
			out, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, path, want, indent(t, out))
		})
	}
	for _, f := range []schemas.Format{schemas.FormatAccount, schemas.FormatEmail, schemas.FormatIssSub,
		schemas.FormatOpaque, schemas.FormatPhoneNumber, schemas.FormatDID, schemas.FormatURI, schemas.FormatAliases,
		schemas.FormatJWTID, schemas.FormatSAMLAssertionID, schemas.FormatIPAddresses, schemas.FormatComplex} {
		if !seen[f] {
			t.Errorf("no golden file for format %s", f)
		}
	}
}

func TestGoldenSETs(t *testing.T) {
	for _, path := range goldenFiles(t, "set") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := schemas.ValidateSET(want); err != nil {
				t.Fatalf("JSON Schema: %v", err)
			}
			set, err := schemas.ParseSET(want)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if p, known, err := set.Event.Decode(); err != nil || known && p.EventType() != set.Event.Type {
				t.Fatalf("event decode: %v %v", p, err)
			}
			out, err := json.Marshal(set)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, path, want, indent(t, out))
		})
	}
}

func TestGoldenStreamConfigurations(t *testing.T) {
	for _, path := range goldenFiles(t, "stream") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := schemas.ValidateStreamConfiguration(want); err != nil {
				t.Fatalf("JSON Schema: %v", err)
			}
			var cfg schemas.StreamConfiguration
			if err := json.Unmarshal(want, &cfg); err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, path, want, indent(t, out))
		})
	}
}
