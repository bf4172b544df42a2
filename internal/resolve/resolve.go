// Package resolve looks host names up without package net, for the hubs
// the bus joins as a leaf node (docs/bus.md): tend must not import net,
// whose cgo resolver makes a default build link dynamically and every
// command slower (docs/layout.md).
//
// It is the small part of a stub resolver that a name in config.yaml
// needs, behaving as glibc does with the usual configuration: an IP
// literal is its own answer; then /etc/hosts; then DNS, A and AAAA
// queries over UDP (TCP when an answer is truncated) to the nameservers
// of /etc/resolv.conf, with its search list and its ndots, timeout,
// attempts and rotate options. Both files are read at each lookup, and
// nothing is cached, so a name that moves is found again.
//
// Left out, as a hub's name does not need it: nsswitch.conf (the order is
// always the hosts file, then DNS), the LOCALDOMAIN and RES_OPTIONS
// variables, scoped IPv6 nameservers (fe80::1%eth0), and sorting the
// addresses by RFC 6724 (DNS answers come IPv4 first, then IPv6).
package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ErrNotFound is the answer for a name that neither the hosts file nor
// DNS knows (NXDOMAIN, or no address of either family).
var ErrNotFound = errors.New("no such host")

// Resolver looks names up. The zero value reads the system's files.
type Resolver struct {
	HostsFile  string // default /etc/hosts
	ResolvConf string // default /etc/resolv.conf

	// Tests run their nameservers on ports other than 53 and cannot
	// wait whole seconds, the unit of resolv.conf's timeout.
	ports   map[netip.Addr]int
	timeout time.Duration
}

// LookupHost returns the addresses of host: an IP literal as it is, else
// the addresses of the hosts file or of DNS. Errors say "lookup <host>:"
// and wrap ErrNotFound when the name does not exist, or the context's
// error when ctx ended first.
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	if !ValidName(host) {
		return nil, fmt.Errorf("lookup %q: not a valid host name", host)
	}
	name := strings.TrimSuffix(host, ".")
	if addrs := lookupHosts(orDefault(r.HostsFile, "/etc/hosts"), name); len(addrs) > 0 {
		return addrs, nil
	}
	// RFC 6761: localhost is this machine, whatever DNS would say, even
	// where the hosts file forgot it (minimal containers).
	lower := strings.ToLower(name)
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}, nil
	}
	conf := readConf(orDefault(r.ResolvConf, "/etc/resolv.conf"))
	if r.timeout > 0 {
		conf.timeout = r.timeout
	}
	addrs, err := r.lookupDNS(ctx, conf, host)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", name, err)
	}
	return addrs, nil
}

// lookupDNS tries the names that host stands for in turn, as glibc's
// res_search does. A name that does not exist, or whose servers failed,
// passes to the next one; servers that do not answer end the search,
// since they would not answer for the next name either.
func (r *Resolver) lookupDNS(ctx context.Context, conf config, host string) ([]netip.Addr, error) {
	var failed error
	for _, fqdn := range conf.names(host) {
		addrs, err := r.lookupName(ctx, conf, fqdn)
		if err == nil {
			return addrs, nil
		}
		var se serverError
		switch {
		case errors.Is(err, ErrNotFound):
		case errors.As(err, &se):
			failed = err
		default:
			return nil, err
		}
	}
	if failed != nil {
		return nil, failed
	}
	return nil, ErrNotFound
}

// names returns the fully qualified names to try for host: an absolute
// name (trailing dot) alone; else with the search domains, trying the name
// as it is first when it has at least ndots dots, last otherwise.
func (c config) names(host string) []string {
	if strings.HasSuffix(host, ".") {
		return []string{host}
	}
	var out []string
	asIs := strings.Count(host, ".") >= c.ndots
	if asIs {
		out = append(out, host+".")
	}
	for _, d := range c.search {
		// Past 254 characters (the trailing dot included) DNS cannot
		// carry the name.
		if n := host + "." + d + "."; len(n) <= 254 {
			out = append(out, n)
		}
	}
	if !asIs {
		out = append(out, host+".")
	}
	return out
}

// ValidName reports whether s can be a host name in DNS: dot-separated
// labels of 1 to 63 letters, digits, hyphens and underscores (found in
// internal names), none beginning or ending with a hyphen, 253 characters
// in all, and an optional trailing dot for an absolute name. It is the
// check for a name in a configuration file, before any lookup.
func ValidName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			switch c := label[i]; {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
