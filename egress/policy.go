// Package egress decides where outgoing HTTP requests of flows may go.
//
// Two checks guard every request an HTTP block or an app action sends:
//
//   - The address policy ([Policy], [NewTransport]): loopback, private,
//     link-local (cloud metadata included), CGNAT, unspecified, multicast
//     and reserved addresses are refused unless the server allows them
//     (HUSHFLOW_HTTP_ALLOW). The check runs on the IP address each
//     connection dials, after DNS resolution, so a name that resolves to a
//     private address, DNS rebinding and redirects to internal hosts are all
//     caught. Proxies from the environment are ignored: they would hide the
//     real destination.
//   - Secret host pinning ([Pinning], [Pin]): a secret with allowed_hosts
//     may only be sent to those hosts. Every request (every redirect hop
//     too) is scanned, URL, headers and body, with the run's redaction
//     matcher, which knows each secret's encodings; a request that would
//     carry a pinned secret to another host fails before it leaves.
//
// The executor builds one transport per server with NewTransport and, per
// run, a client with [Client].
package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// EnvAllow names the server setting that lists allowed CIDRs.
const EnvAllow = "HUSHFLOW_HTTP_ALLOW"

// ErrRefused is wrapped by every error of the address policy.
var ErrRefused = errors.New("egress refused")

// Policy is the address policy. The zero value refuses every non-public
// address.
type Policy struct {
	// Allow lists prefixes that are allowed even though they are not
	// public (for example 127.0.0.1/32 in tests, 10.0.0.0/8 for a
	// self-hosted service).
	Allow []netip.Prefix
}

// ParseAllow parses a comma- or space-separated list of CIDR prefixes or
// single addresses ("127.0.0.1/32,10.0.0.0/8", "::1"). An empty string is
// an empty policy.
func ParseAllow(s string) (Policy, error) {
	var p Policy
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if strings.Contains(f, "/") {
			pr, err := netip.ParsePrefix(f)
			if err != nil {
				return Policy{}, fmt.Errorf("%s: %q is not a CIDR prefix such as 10.0.0.0/8", EnvAllow, f)
			}
			p.Allow = append(p.Allow, pr.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return Policy{}, fmt.Errorf("%s: %q is not an IP address or CIDR prefix", EnvAllow, f)
		}
		a = a.Unmap()
		p.Allow = append(p.Allow, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// RefusedError is the error of a refused address. It wraps ErrRefused.
type RefusedError struct {
	Addr   netip.Addr
	Reason string // "a loopback address", "a private address", ...
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("egress refused: %s is %s (allow it with %s)", e.Addr, e.Reason, EnvAllow)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// Check returns nil when a may be dialled, else a *RefusedError.
func (p Policy) Check(a netip.Addr) error {
	a = a.WithZone("")
	u := a.Unmap()
	for _, pr := range p.Allow {
		if pr.Contains(u) || pr.Contains(a) {
			return nil
		}
	}
	if reason := classify(u); reason != "" {
		return &RefusedError{Addr: u, Reason: reason}
	}
	return nil
}

type blockedRange struct {
	prefix netip.Prefix
	reason string
}

var blocked = func() []blockedRange {
	list := []struct{ cidr, reason string }{
		{"169.254.169.254/32", "a cloud metadata address"},
		{"fd00:ec2::254/128", "a cloud metadata address"},
		{"0.0.0.0/8", "an unspecified address"},
		{"127.0.0.0/8", "a loopback address"},
		{"10.0.0.0/8", "a private address"},
		{"172.16.0.0/12", "a private address"},
		{"192.168.0.0/16", "a private address"},
		{"100.64.0.0/10", "a shared (CGNAT) address"},
		{"169.254.0.0/16", "a link-local address"},
		{"192.0.0.0/24", "a reserved address"},
		{"192.0.2.0/24", "a reserved address"},
		{"198.18.0.0/15", "a reserved address"},
		{"198.51.100.0/24", "a reserved address"},
		{"203.0.113.0/24", "a reserved address"},
		{"224.0.0.0/4", "a multicast address"},
		{"240.0.0.0/4", "a reserved address"},
		{"::/128", "an unspecified address"},
		{"::1/128", "a loopback address"},
		{"fc00::/7", "a private address"},
		{"fe80::/10", "a link-local address"},
		{"ff00::/8", "a multicast address"},
		{"2001:db8::/32", "a reserved address"},
	}
	out := make([]blockedRange, len(list))
	for i, b := range list {
		out[i] = blockedRange{netip.MustParsePrefix(b.cidr), b.reason}
	}
	return out
}()

var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4  = netip.MustParsePrefix("2002::/16")
	compat4 = netip.MustParsePrefix("::/96") // deprecated IPv4-compatible form
)

// classify returns why a is refused, or "" for a public address. IPv4
// addresses embedded in IPv6 (mapped, NAT64, 6to4, compatible) are judged
// by the IPv4 address they carry.
func classify(a netip.Addr) string {
	if !a.IsValid() {
		return "an invalid address"
	}
	for _, b := range blocked {
		if b.prefix.Contains(a) {
			return b.reason
		}
	}
	if a.Is6() {
		b := a.As16()
		var v4 [4]byte
		switch {
		case nat64.Contains(a), compat4.Contains(a):
			copy(v4[:], b[12:16])
		case sixTo4.Contains(a):
			copy(v4[:], b[2:6])
		default:
			return ""
		}
		return classify(netip.AddrFrom4(v4))
	}
	return ""
}
