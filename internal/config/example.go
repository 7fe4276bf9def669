package config

import _ "embed"

// Example is a commented configuration file that sets every key to its default; `ssfd config example` prints it
// and `ssfd config check` accepts it.
//
//go:embed example.yaml
var Example []byte
