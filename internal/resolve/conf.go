package resolve

import (
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is what resolv.conf says, with glibc's defaults and limits.
type config struct {
	servers  []netip.Addr
	search   []string // domains, without the trailing dot
	ndots    int
	timeout  time.Duration // of the first try at each server
	attempts int           // rounds through the servers
	rotate   bool          // start at a random server
}

// glibc's defaults (RES_TIMEOUT, RES_DFLRETRY) and ceilings (MAXNS,
// RES_MAXNDOTS, RES_MAXRETRANS, RES_MAXRETRY).
const (
	maxServers      = 3
	defaultNdots    = 1
	maxNdots        = 15
	defaultTimeout  = 5 * time.Second
	maxTimeout      = 30 * time.Second
	defaultAttempts = 2
	maxAttempts     = 5
)

// readConf reads resolv.conf at path. A missing or unreadable file is the
// defaults, as for glibc: a nameserver on this machine.
func readConf(path string) config {
	data, _ := os.ReadFile(path)
	host, _ := os.Hostname()
	return parseConf(string(data), host)
}

// parseConf reads resolv.conf's lines. hostname gives the search domain
// when the file names none (glibc takes what follows its first dot).
// Lines it does not understand are skipped, as glibc does.
func parseConf(data, hostname string) config {
	c := config{ndots: defaultNdots, timeout: defaultTimeout, attempts: defaultAttempts}
	searchSet := false
	for line := range strings.Lines(data) {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			// A scoped address (fe80::1%eth0) would need the interface's
			// index, which only package net looks up.
			if len(f) > 1 && len(c.servers) < maxServers {
				if ip, err := netip.ParseAddr(f[1]); err == nil && ip.Zone() == "" {
					c.servers = append(c.servers, ip.Unmap())
				}
			}
		case "domain", "search":
			// The last of the two wins; "domain" is a search list of one.
			c.search, searchSet = nil, true
			args := f[1:]
			if f[0] == "domain" && len(args) > 1 {
				args = args[:1]
			}
			for _, d := range args {
				d = strings.TrimSuffix(d, ".")
				if d != "" && ValidName(d) && !slices.Contains(c.search, d) {
					c.search = append(c.search, d)
				}
			}
		case "options":
			for _, o := range f[1:] {
				c.option(o)
			}
		}
	}
	if len(c.servers) == 0 {
		c.servers = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	}
	if !searchSet {
		if _, d, ok := strings.Cut(hostname, "."); ok && ValidName(d) {
			c.search = []string{strings.TrimSuffix(d, ".")}
		}
	}
	return c
}

// option applies one word of an options line; values out of range are
// brought within glibc's limits.
func (c *config) option(o string) {
	key, val, _ := strings.Cut(o, ":")
	n, err := strconv.Atoi(val)
	switch {
	case key == "rotate":
		c.rotate = true
	case err != nil:
	case key == "ndots":
		c.ndots = min(max(n, 0), maxNdots)
	case key == "timeout":
		c.timeout = min(time.Duration(max(n, 1))*time.Second, maxTimeout)
	case key == "attempts":
		c.attempts = min(max(n, 1), maxAttempts)
	}
}

// lookupHosts returns the addresses the hosts file at path gives name,
// in the file's order (every line that names it, as glibc's "multi on").
// A missing file is no answer: the lookup goes on to DNS.
func lookupHosts(path, name string) []netip.Addr {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for line := range strings.Lines(string(data)) {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(f[0])
		if err != nil || ip.Zone() != "" || slices.Contains(out, ip) {
			continue
		}
		for _, h := range f[1:] {
			if strings.EqualFold(strings.TrimSuffix(h, "."), name) {
				out = append(out, ip)
				break
			}
		}
	}
	return out
}
