// Package server is the composition root: it opens storage, starts or connects to
// NATS, wires the transmitter, receiver and issuer together through small interfaces, serves HTTP and shuts
// everything down cleanly.
//
// server may import every package of the module except cmd/ssfd.
package server
