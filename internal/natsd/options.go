package natsd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tend-pm/tend/internal/resolve"
)

// Options configure a Server. Zero values take the defaults shown.
type Options struct {
	Host string // default "127.0.0.1"; only loopback unless the caller says otherwise
	// Port 0 takes a free port; any other is bound exactly (an error if
	// taken). The socket has SO_REUSEADDR, so a restarted daemon rebinds
	// its port at once and clients reconnect to it.
	Port int
	// User and Password are what clients authenticate with: user and pass
	// in CONNECT, or the password alone as auth_token
	// (nats://<password>@host:port). Start refuses an empty Password.
	User, Password string
	Name           string // server_name in INFO
	MaxPayload     int    // default 1 MiB
	// MaxPending is how many bytes may wait to be written to one client
	// before it is a slow consumer and is cut off, so that a client that
	// does not read never holds up publishers; default 16 MiB.
	MaxPending     int
	MaxConnections int // default 4096
	// AuthTimeout is how long a client has to send a valid CONNECT;
	// default 2 s.
	AuthTimeout time.Duration
	// PingInterval is how often the server pings an idle client; after
	// MaxPingsOut (2) unanswered pings it is a stale connection and is
	// closed. Default 2 min.
	PingInterval time.Duration
	// Leafs are hubs to connect to as a leaf node.
	Leafs []Remote
	// Local lists subject prefixes that stay on this server: their
	// interest is not announced to hubs, messages on them are not
	// forwarded to hubs, and hubs' messages on them are dropped. tend
	// keeps its per-instance subjects (actions, inboxes, its own reply
	// inbox) here, since they name an app and a slot that are only
	// meaningful on one machine.
	Local []string
	// Reserved lists subject prefixes only the server's owner publishes
	// on (Server.Publish): a client's PUB on one is refused with
	// nats-server's permissions error, and the connection stays open, as
	// nats-server does. Messages from hubs are not affected. tend reserves
	// the subjects of its own reports (lifecycle events, Node.js messages),
	// so that what a subscriber reads there is what tend did.
	Reserved []string
	// Lookup returns the addresses of a hub's host (a name, or an IP
	// literal as it is). It is called at each attempt to connect, so
	// that a hub that moves is found again. Default: the system's
	// hosts file and DNS, through internal/resolve.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	Log    *slog.Logger
}

// Remote is a hub to connect to as a leaf node.
type Remote struct {
	// URL is nats://user:pass@host:7422, nats-leaf://..., or
	// nats://token@host:port; several, comma-separated, are alternatives
	// tried in turn. The host is an IP address or a name (see
	// Options.Lookup); each of a name's addresses is tried in turn.
	URL string
}

const (
	defaultHost         = "127.0.0.1"
	defaultMaxPayload   = 1 << 20
	defaultMaxPending   = 16 << 20
	defaultMaxConns     = 4096
	defaultAuthTimeout  = 2 * time.Second
	defaultPingInterval = 2 * time.Minute
	maxPingsOut         = 2
	// maxPayloadLimit is nats-server's ceiling for max_payload.
	maxPayloadLimit = 64 << 20
	defaultLeafPort = 7422
)

// withDefaults validates o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Password == "" {
		return o, errors.New("a password is required")
	}
	if strings.ContainsAny(o.User, " \t\r\n") {
		return o, errors.New("the user must not contain whitespace")
	}
	if o.Host == "" {
		o.Host = defaultHost
	}
	if o.Port < 0 || o.Port > 65535 {
		return o, fmt.Errorf("port %d is out of range", o.Port)
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = defaultMaxPayload
	}
	if o.MaxPayload > maxPayloadLimit {
		return o, fmt.Errorf("max payload %d is above the %d limit", o.MaxPayload, maxPayloadLimit)
	}
	if o.MaxPending <= 0 {
		o.MaxPending = defaultMaxPending
	}
	if o.MaxPending < o.MaxPayload {
		o.MaxPending = o.MaxPayload
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = defaultMaxConns
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = defaultAuthTimeout
	}
	if o.PingInterval <= 0 {
		o.PingInterval = defaultPingInterval
	}
	if o.Lookup == nil {
		o.Lookup = new(resolve.Resolver).LookupHost
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// leafURL is one parsed alternative of a Remote.
type leafURL struct {
	host     string // an IP literal or a name, resolved at each attempt
	port     int
	user     string
	pass     string
	token    string
	redacted string // for logs and Stats: the password replaced
}

// parseRemote reads a Remote's comma-separated URLs.
func parseRemote(r Remote) ([]leafURL, error) {
	var out []leafURL
	for _, raw := range strings.Split(r.URL, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		lu, err := parseLeafURL(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, lu)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("leaf remote %q: no URL", r.URL)
	}
	return out, nil
}

func parseLeafURL(raw string) (leafURL, error) {
	if !strings.Contains(raw, "://") {
		raw = "nats://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return leafURL{}, fmt.Errorf("leaf remote: %w", err)
	}
	shown := redact(u)
	bad := func(why string) (leafURL, error) {
		return leafURL{}, fmt.Errorf("leaf remote %q: %s", shown, why)
	}
	switch u.Scheme {
	case "nats", "nats-leaf":
	case "tls", "wss", "ws":
		return bad("TLS and websocket are not supported; reach a remote hub through a private network or a tunnel")
	default:
		return bad("the scheme must be nats:// or nats-leaf://")
	}
	lu := leafURL{host: u.Hostname(), port: defaultLeafPort, redacted: shown}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("the port must be a number from 1 to 65535")
		}
		lu.port = n
	}
	if ip, err := netip.ParseAddr(lu.host); err == nil {
		if ip.Zone() != "" {
			return bad("an IPv6 zone (%eth0) is not supported")
		}
		lu.host = ip.Unmap().String()
	} else if lu.host == "" {
		return bad("a host is required")
	} else if !resolve.ValidName(lu.host) {
		return bad("the host must be an IP address or a host name")
	}
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			lu.user, lu.pass = u.User.Username(), p
		} else {
			lu.token = u.User.Username()
		}
	}
	return lu, nil
}

// redact returns u with its password (or token) replaced, for logs.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), "xxxxx")
		} else {
			c.User = url.User("xxxxx")
		}
	}
	return c.String()
}
