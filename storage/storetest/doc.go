// Package storetest holds one conformance suite per store interface; every storage
// backend runs them from its own tests.
//
// storetest must not import a concrete backend.
package storetest
