// Package poll serves RFC 8936 poll delivery: long polls, acknowledgements and
// setErrs, applied before SETs are chosen.
//
// poll imports schemas and streams. It must not import receiver or issuer.
package poll
