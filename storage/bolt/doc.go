// Package bolt is the embedded storage backend: one bbolt file that implements every store
// interface of the project. It is the only package that imports go.etcd.io/bbolt.
//
// bolt imports the packages whose interfaces it implements. It must not import transmitter, receiver or issuer
// HTTP code, NATS or echo.
package bolt
