// Package keys owns signing keys and JWS: key generation and loading (RS256, PS256, ES256,
// EdDSA), RFC 7638 thumbprint key ids, JWKS export, the key ring with rotation (next, active, retired), signing of
// SETs and access tokens with an explicit typ, verification with an algorithm allow-list, and a cache of remote
// JWKS documents.
//
// keys is the only package of the module that imports github.com/go-jose/go-jose/v4. It must not import any other
// package of this module.
package keys
