// Package push delivers SETs to receivers with RFC 8935 push: ordered per stream,
// retried with backoff, dead-lettered when permanent errors or age say so, with an SSRF guard on every dial.
//
// push imports schemas and streams. It must not import receiver or issuer.
package push
