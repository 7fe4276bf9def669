package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// LoadFile reads a YAML configuration file over c: fields the file sets replace the current values, fields it
// leaves out keep them. Unknown keys are errors, so a misspelt setting is not silently ignored. A path of "-"
// reads standard input.
func (c *Config) LoadFile(path string) error {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return c.Load(data)
}

// Load reads YAML configuration from data over c, like LoadFile.
func (c *Config) Load(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
