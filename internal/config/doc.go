// Package config holds the one configuration struct of the ssfd process, filled from
// defaults, then a file, then the environment, then flags, and checked by Validate, which reports every bad field
// by its path.
//
// config must not import transmitter, receiver, issuer or any storage backend.
package config
