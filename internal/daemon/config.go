package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/tend-pm/tend/internal/resolve"
	"github.com/tend-pm/tend/internal/suggest"
)

// ConfigFile holds the daemon's own settings, in TEND_HOME. It is
// optional; a daemon reads it when it starts (docs/bus.md).
const ConfigFile = "config.yaml"

// Config is the content of ConfigFile.
type Config struct {
	Bus     BusConfig     `yaml:"bus"`
	Metrics MetricsConfig `yaml:"metrics"`
}

// MetricsConfig sets up /metrics on TCP (docs/monitoring.md).
type MetricsConfig struct {
	// Addr is what --metrics-addr takes: "9464" (127.0.0.1), an
	// address and port; empty serves /metrics on the control socket only.
	Addr string `yaml:"addr"`
}

// BusConfig sets up the pub/sub bus.
type BusConfig struct {
	// Host is the address the bus binds: loopback unless the owner says
	// otherwise.
	Host string `yaml:"host"`
	// Port is a fixed port for the bus; 0 keeps the one it got first.
	Port int `yaml:"port"`
	// Leafnodes are remote NATS servers (their leafnodes port) the bus
	// joins as a leaf node: nats://user:password@hub:7422, the host an IP
	// address or a name (looked up at each attempt to connect).
	Leafnodes []string `yaml:"leafnodes"`
}

// LoadConfig reads ConfigFile in home; a missing file is an empty Config.
// Any mistake is an error that names the file, line and column: a daemon
// must not run a bus its owner did not configure.
func LoadConfig(home string) (Config, error) {
	var c Config
	path := filepath.Join(home, ConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read %s: %w", path, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	if err := yaml.UnmarshalWithOptions(data, &c, yaml.Strict()); err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			pos := ye.GetToken().Position
			msg := ye.GetMessage()
			if rest, ok := strings.CutPrefix(msg, `unknown field "`); ok {
				if key, _, ok := strings.Cut(rest, `"`); ok {
					msg += configHint(key)
				}
			}
			return c, fmt.Errorf("%s:%d:%d: %s", path, pos.Line, pos.Column, msg)
		}
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Bus.check(); err != nil {
		return c, fmt.Errorf("%s: bus: %w", path, err)
	}
	if c.Metrics.Addr != "" {
		if _, err := ParseMetricsAddr(c.Metrics.Addr); err != nil {
			return c, fmt.Errorf("%s: metrics: %w", path, err)
		}
	}
	return c, nil
}

// configHint helps with a key config.yaml does not take where it is: a
// key of another section gets the sections' keys, a misspelt one the key
// it likely meant.
func configHint(key string) string {
	keys := []string{"bus", "metrics", "host", "port", "leafnodes", "addr"}
	if slices.Contains(keys, key) {
		return " (the file has two sections: bus, with host, port and leafnodes; metrics, with addr)"
	}
	return suggest.DidYouMean(key, keys)
}

func (b *BusConfig) check() error {
	if b.Host != "" {
		if _, err := netip.ParseAddr(b.Host); err != nil {
			return fmt.Errorf("host %q: give an IP address (127.0.0.1, 0.0.0.0, ::1)", b.Host)
		}
	}
	if b.Port < 0 || b.Port > 65535 {
		return fmt.Errorf("port %d is out of range", b.Port)
	}
	for i, l := range b.Leafnodes {
		if err := checkLeafURL(l); err != nil {
			if errors.Is(err, errNotURL) {
				// The text may hold a password: name the entry instead.
				return fmt.Errorf("leafnodes: entry %d: %w", i+1, err)
			}
			return fmt.Errorf("leafnodes: %w", err)
		}
	}
	return nil
}

// errNotURL refuses a leaf URL that does not parse, without repeating it.
var errNotURL = errors.New("not a valid URL (write special characters of the password, such as # / ? @ %, as %XX)")

// checkLeafURL accepts nats:// and nats-leaf:// URLs with a host (an IP
// address or a host name) and a port. Whether the name exists is not
// checked here: the hub's name may not resolve yet when the daemon starts,
// and the bus looks it up again at each attempt to connect.
func checkLeafURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errNotURL
	}
	switch u.Scheme {
	case "nats", "nats-leaf":
	case "tls", "nats+tls", "wss", "ws":
		return fmt.Errorf("%q: tend's bus links to other servers over plain TCP only; run the link over a private network or a tunnel", redact(u))
	default:
		return fmt.Errorf("%q: the scheme must be nats:// or nats-leaf://", redact(u))
	}
	if u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("%q: give a host and a port (the hub's leafnodes port, 7422 by default)", redact(u))
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: bad port", redact(u))
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
		if ip.Zone() != "" {
			return fmt.Errorf("%q: an IPv6 zone (%%eth0) is not supported", redact(u))
		}
	} else if !resolve.ValidName(u.Hostname()) {
		return fmt.Errorf("%q: the host must be an IP address or a host name (hub.internal)", redact(u))
	}
	return nil
}

// redact hides a URL's password in messages.
func redact(u *url.URL) string {
	if _, ok := u.User.Password(); ok {
		c := *u
		c.User = url.UserPassword(u.User.Username(), "xxx")
		return c.String()
	}
	return u.String()
}
