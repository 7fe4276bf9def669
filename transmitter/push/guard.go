package push

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrTargetRefused is returned for a push endpoint that is not https or does not resolve to public unicast
// addresses (spec/ssf.md SEC-10).
var ErrTargetRefused = errors.New("push: target refused")

// Guard keeps push delivery away from internal networks (SSRF): endpoint URLs must be https and every address
// they resolve to must be public unicast, checked when a stream is created or updated and again on every dial,
// so that DNS rebinding does not help. Operators allow-list networks for receivers inside their own network;
// --dev allows everything.
type Guard struct {
	allow    []netip.Prefix
	allowAll bool
	resolver *net.Resolver
}

// GuardOption configures a Guard.
type GuardOption func(*Guard)

// AllowNetworks lets pushes reach these networks (CIDR prefixes), with plain http too.
func AllowNetworks(prefixes ...netip.Prefix) GuardOption {
	return func(g *Guard) { g.allow = append(g.allow, prefixes...) }
}

// AllowAnyTarget turns the guard off: any scheme of http(s) and any address. Only for development.
func AllowAnyTarget() GuardOption { return func(g *Guard) { g.allowAll = true } }

// NewGuard returns a guard that refuses non-public targets unless allowed.
func NewGuard(opts ...GuardOption) *Guard {
	g := &Guard{resolver: net.DefaultResolver}
	for _, opt := range opts {
		opt(g)
	}
	return g
}

// blocked lists the ranges that are never public unicast, beyond what netip classifies: shared address space,
// benchmarking, documentation, 6to4 relay, NAT64, discard and the IPv4 "this network" block.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// CheckAddr reports why a push must not reach addr, or nil when it may.
func (g *Guard) CheckAddr(addr netip.Addr) error {
	addr = addr.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if g.allowAll || g.allowed(addr) {
		return nil
	}
	switch {
	case !addr.IsValid():
		return fmt.Errorf("%w: invalid address", ErrTargetRefused)
	case addr.IsLoopback(), addr.IsPrivate(), addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast(),
		addr.IsInterfaceLocalMulticast(), addr.IsMulticast(), addr.IsUnspecified():
		return fmt.Errorf("%w: %s is not a public unicast address (allow-list its network to push there)", ErrTargetRefused, addr)
	}
	for _, p := range blocked {
		if p.Contains(addr) {
			return fmt.Errorf("%w: %s is in the reserved range %s", ErrTargetRefused, addr, p)
		}
	}
	return nil
}

func (g *Guard) allowed(addr netip.Addr) bool {
	for _, p := range g.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// CheckURL vets a push endpoint_url at create and update time: an absolute https URL (http only when its
// addresses are allow-listed) whose host resolves, every address of it allowed.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Hostname() == "" {
		return fmt.Errorf("%w: %q is not an absolute URL", ErrTargetRefused, raw)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%w: scheme %q; push endpoints use https", ErrTargetRefused, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in the URL; use authorization_header", ErrTargetRefused)
	}
	if g.allowAll {
		return nil
	}
	addrs, err := g.resolve(ctx, u.Hostname())
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if err := g.CheckAddr(a); err != nil {
			return err
		}
		if u.Scheme != "https" && !g.allowed(a.Unmap()) {
			return fmt.Errorf("%w: push endpoints must use https", ErrTargetRefused)
		}
	}
	return nil
}

func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{a}, nil
	}
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %s does not resolve", ErrTargetRefused, host)
	}
	return addrs, nil
}

// Control is a net.Dialer Control function that refuses connections to disallowed addresses at dial time, after
// DNS resolution, so that a name that changed its address since the stream was created is still checked.
func (g *Guard) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrTargetRefused, address)
	}
	return g.CheckAddr(ap.Addr())
}
