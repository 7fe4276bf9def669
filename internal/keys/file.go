package keys

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrInsecureFileMode is returned when a private key file can be read by group or others.
var ErrInsecureFileMode = errors.New("keys: private key file is readable by others")

// WriteKeyFile writes k as a JWK to path with mode 0600, atomically: a crash leaves the old file or the new one.
func WriteKeyFile(path string, k *Key) error {
	data, err := k.MarshalJSON()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'))
}

// ReadKeyFile reads a key written by WriteKeyFile (or any JWK or PEM key). A private key file must not be readable
// by group or others.
func ReadKeyFile(path string) (*Key, error) {
	data, err := readPrivateFile(path)
	if err != nil {
		return nil, err
	}
	return ParseKey(data)
}

// readPrivateFile reads a file that holds secrets, refusing one that others can read.
func readPrivateFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; run chmod 600 %s", ErrInsecureFileMode, path, info.Mode().Perm(), path)
	}
	return os.ReadFile(path)
}

// writeFileAtomic writes data to a temporary file in the same directory with mode 0600, syncs it, renames it over
// path and syncs the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
