package resolve

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/dns/dnsmessage"
)

// nameserver is a DNS server on a real UDP socket (and, for truncated
// answers, TCP on the same port), answering from a zone unless a test
// sets respond.
type nameserver struct {
	t    *testing.T
	ip   netip.Addr
	port int
	pc   *net.UDPConn
	zone map[string][]string // fully qualified name -> addresses

	mu      sync.Mutex
	asked   []string // "name TYPE" of each query, in order
	respond func(ns *nameserver, from *net.UDPAddr, id uint16, q dnsmessage.Question)
}

func startNameserver(t *testing.T, ip string, zone map[string][]string) *nameserver {
	t.Helper()
	ns := &nameserver{t: t, ip: netip.MustParseAddr(ip), zone: zone}
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ns.ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	ns.pc, ns.port = pc, pc.LocalAddr().(*net.UDPAddr).Port
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			ns.mu.Lock()
			ns.asked = append(ns.asked, q.Name.String()+" "+strings.TrimPrefix(q.Type.String(), "Type"))
			respond := ns.respond
			ns.mu.Unlock()
			if respond == nil {
				respond = (*nameserver).answerFromZone
			}
			respond(ns, from, h.ID, q)
		}
	}()
	return ns
}

func (ns *nameserver) setRespond(f func(ns *nameserver, from *net.UDPAddr, id uint16, q dnsmessage.Question)) {
	ns.mu.Lock()
	ns.respond = f
	ns.mu.Unlock()
}

func (ns *nameserver) queries() []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return slices.Clone(ns.asked)
}

func (ns *nameserver) answerFromZone(from *net.UDPAddr, id uint16, q dnsmessage.Question) {
	ns.send(from, ns.reply(id, q, false))
}

func (ns *nameserver) send(to *net.UDPAddr, msg []byte) {
	if _, err := ns.pc.WriteToUDP(msg, to); err != nil {
		ns.t.Errorf("nameserver: %v", err)
	}
}

// reply is the zone's answer: NXDOMAIN for a name it lacks, else the
// addresses of the type asked (none: NODATA).
func (ns *nameserver) reply(id uint16, q dnsmessage.Question, truncated bool) []byte {
	addrs, ok := ns.zone[strings.ToLower(q.Name.String())]
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, Response: true, RecursionAvailable: true, Truncated: truncated},
		Questions: []dnsmessage.Question{q},
	}
	if !ok {
		m.RCode = dnsmessage.RCodeNameError
	}
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
		switch {
		case truncated:
		case ip.Is4() && q.Type == dnsmessage.TypeA:
			rh.Type = dnsmessage.TypeA
			m.Answers = append(m.Answers, dnsmessage.Resource{Header: rh, Body: &dnsmessage.AResource{A: ip.As4()}})
		case ip.Is6() && q.Type == dnsmessage.TypeAAAA:
			rh.Type = dnsmessage.TypeAAAA
			m.Answers = append(m.Answers, dnsmessage.Resource{Header: rh, Body: &dnsmessage.AAAAResource{AAAA: ip.As16()}})
		}
	}
	b, err := m.Pack()
	if err != nil {
		ns.t.Fatal(err)
	}
	return b
}

// serveTCP answers queries over TCP on the nameserver's port, from its
// zone; it reports whether it could take the port.
func (ns *nameserver) serveTCP() bool {
	l, err := net.Listen("tcp", netip.AddrPortFrom(ns.ip, uint16(ns.port)).String())
	if err != nil {
		return false
	}
	done := make(chan struct{})
	ns.t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var n uint16
			if binary.Read(c, binary.BigEndian, &n) == nil {
				msg := make([]byte, n)
				if _, err := io.ReadFull(c, msg); err == nil {
					var p dnsmessage.Parser
					h, _ := p.Start(msg)
					q, _ := p.Question()
					ns.mu.Lock()
					ns.asked = append(ns.asked, q.Name.String()+" "+strings.TrimPrefix(q.Type.String(), "Type")+" tcp")
					ns.mu.Unlock()
					out := ns.reply(h.ID, q, false)
					c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(out))))
					c.Write(out)
				}
			}
			c.Close()
		}
	}()
	return true
}

// silent never answers.
func silent(*nameserver, *net.UDPAddr, uint16, dnsmessage.Question) {}

// newResolver writes a hosts file and a resolv.conf naming the servers
// (then the conf lines), and returns a resolver on them whose tries last
// timeout.
func newResolver(t *testing.T, hosts, conf string, timeout time.Duration, servers ...*nameserver) *Resolver {
	t.Helper()
	dir := t.TempDir()
	r := &Resolver{
		HostsFile:  filepath.Join(dir, "hosts"),
		ResolvConf: filepath.Join(dir, "resolv.conf"),
		ports:      map[netip.Addr]int{},
		timeout:    timeout,
	}
	var rc strings.Builder
	for _, ns := range servers {
		rc.WriteString("nameserver " + ns.ip.String() + "\n")
		r.ports[ns.ip] = ns.port
	}
	// No search domain from the machine's own name.
	rc.WriteString("search .\n" + conf)
	writeFile(t, r.ResolvConf, rc.String())
	writeFile(t, r.HostsFile, hosts)
	return r
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func lookup(t *testing.T, r *Resolver, host string) ([]netip.Addr, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return r.LookupHost(ctx, host)
}

func wantAddrs(t *testing.T, got []netip.Addr, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if d := cmp.Diff(addrs(want...), got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("addresses (-want +got):\n%s", d)
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"hub.internal": true, "hub.internal.": true, "hub": true, "a-b.c_d.example": true, "10.0.0.1x": true,
		strings.Repeat("a", 63) + ".x": true, strings.Repeat("a", 64) + ".x": false,
		strings.Repeat("abcdefghi.", 25) + "abc": true, strings.Repeat("abcdefghi.", 25) + "abcd": false,
		"": false, ".": false, "hub..internal": false, ".hub": false, "-hub.x": false, "hub-.x": false,
		"hub internal": false, "hub!": false, "hüb.internal": false, "hub%eth0": false, "hub.internal..": false,
	} {
		if got := ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v; want %v", s, got, want)
		}
	}
}

func TestParseConf(t *testing.T) {
	local := addrs("127.0.0.1", "::1")
	for _, tc := range []struct {
		name, file, hostname string
		want                 config
	}{
		{name: "empty: glibc's defaults", want: config{servers: local, ndots: 1, timeout: 5 * time.Second, attempts: 2}},
		{name: "the domain of the machine's name", hostname: "box.lab.example",
			want: config{servers: local, search: []string{"lab.example"}, ndots: 1, timeout: 5 * time.Second, attempts: 2}},
		{name: "everything",
			file: "# generated\n; also a comment\nnameserver 10.0.0.53\nnameserver  fd00::53 \nnameserver fe80::1%eth0\nnameserver bogus\n" +
				"nameserver ::ffff:10.0.0.54\nnameserver 10.0.0.55\nnameserver 10.0.0.56\n" +
				"search corp.example. lab.example corp.example\noptions ndots:2 timeout:1 attempts:3 rotate edns0 ndots:x\nsortlist 10.0.0.0/8\n",
			hostname: "box.other.example",
			want: config{servers: addrs("10.0.0.53", "fd00::53", "10.0.0.54"), search: []string{"corp.example", "lab.example"},
				ndots: 2, timeout: time.Second, attempts: 3, rotate: true}},
		{name: "the last of domain and search wins",
			file: "search a.example b.example\ndomain c.example d.example\n",
			want: config{servers: local, search: []string{"c.example"}, ndots: 1, timeout: 5 * time.Second, attempts: 2}},
		{name: "search . is no search list", file: "search .\n", hostname: "box.lab.example",
			want: config{servers: local, ndots: 1, timeout: 5 * time.Second, attempts: 2}},
		{name: "limits", file: "options ndots:40 timeout:90 attempts:9\noptions timeout:0\n",
			want: config{servers: local, ndots: 15, timeout: time.Second, attempts: 5}},
		{name: "more limits", file: "options timeout:90 attempts:0 ndots:-1\n",
			want: config{servers: local, ndots: 0, timeout: 30 * time.Second, attempts: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseConf(tc.file, tc.hostname)
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(config{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("config (-want +got):\n%s", d)
			}
		})
	}
}

func TestNames(t *testing.T) {
	c := config{search: []string{"corp.example", "lab.example"}, ndots: 1}
	for host, want := range map[string][]string{
		"db":          {"db.corp.example.", "db.lab.example.", "db."},
		"db.eu":       {"db.eu.", "db.eu.corp.example.", "db.eu.lab.example."},
		"db.example.": {"db.example."},
	} {
		if d := cmp.Diff(want, c.names(host)); d != "" {
			t.Errorf("names(%q) (-want +got):\n%s", host, d)
		}
	}
	c.ndots = 2
	if d := cmp.Diff([]string{"db.eu.corp.example.", "db.eu.lab.example.", "db.eu."}, c.names("db.eu")); d != "" {
		t.Errorf("with ndots:2 (-want +got):\n%s", d)
	}
}

// The hosts file answers before DNS, which is not asked at all.
func TestHostsFile(t *testing.T) {
	ns := startNameserver(t, "127.0.0.1", map[string][]string{"hub.internal.": {"10.9.9.9"}})
	r := newResolver(t, `# static
127.0.0.1	localhost
10.0.0.7   hub.internal hub   # the hub
fd00::7    HUB.internal.
fe80::7%eth0 hub.internal
10.0.0.7   hub.internal
not-an-ip  hub.internal
10.0.0.8   other.internal
`, "", time.Second, ns)
	for _, host := range []string{"hub.internal", "Hub.Internal", "hub.internal."} {
		got, err := lookup(t, r, host)
		wantAddrs(t, got, err, "10.0.0.7", "fd00::7")
	}
	got, err := lookup(t, r, "hub")
	wantAddrs(t, got, err, "10.0.0.7")
	got, err = lookup(t, r, "localhost")
	wantAddrs(t, got, err, "127.0.0.1")
	if q := ns.queries(); len(q) != 0 {
		t.Errorf("DNS was asked %v; want nothing", q)
	}

	// IP literals are their own answer; a name missing from the hosts
	// file goes to DNS; localhost needs no hosts file.
	got, err = lookup(t, r, "fd00::1")
	wantAddrs(t, got, err, "fd00::1")
	writeFile(t, r.HostsFile, "10.0.0.8 other.internal\n")
	got, err = lookup(t, r, "hub.internal")
	wantAddrs(t, got, err, "10.9.9.9")
	got, err = lookup(t, r, "localhost")
	wantAddrs(t, got, err, "127.0.0.1", "::1")
	os.Remove(r.HostsFile)
	got, err = lookup(t, r, "hub.internal")
	wantAddrs(t, got, err, "10.9.9.9")

	if _, err := lookup(t, r, "hub!.internal"); err == nil || !strings.Contains(err.Error(), "not a valid host name") {
		t.Errorf("invalid name: err %v", err)
	}
}

func TestDNSAnswers(t *testing.T) {
	ns := startNameserver(t, "127.0.0.1", map[string][]string{
		"hub.internal.":  {"fd00::7", "10.0.0.7", "10.0.0.8"},
		"v4.internal.":   {"10.0.0.4"},
		"none.internal.": {},
	})
	r := newResolver(t, "", "", 2*time.Second, ns)
	got, err := lookup(t, r, "hub.internal")
	wantAddrs(t, got, err, "10.0.0.7", "10.0.0.8", "fd00::7")
	if q := ns.queries(); !slices.Equal(q, []string{"hub.internal. A", "hub.internal. AAAA"}) {
		t.Errorf("queries %q; want A and AAAA for hub.internal.", q)
	}
	got, err = lookup(t, r, "v4.internal")
	wantAddrs(t, got, err, "10.0.0.4")

	for _, host := range []string{"nope.internal", "none.internal"} {
		_, err = lookup(t, r, host)
		if !errors.Is(err, ErrNotFound) || err.Error() != "lookup "+host+": no such host" {
			t.Errorf("%s: err %v; want lookup %s: no such host", host, err, host)
		}
	}
}

// A server that drops AAAA queries (some middleboxes do) still gives the
// A answer, after the timeout.
func TestDNSDroppedAAAA(t *testing.T) {
	ns := startNameserver(t, "127.0.0.1", map[string][]string{"hub.internal.": {"10.0.0.7", "fd00::7"}})
	ns.setRespond(func(ns *nameserver, from *net.UDPAddr, id uint16, q dnsmessage.Question) {
		if q.Type == dnsmessage.TypeA {
			ns.answerFromZone(from, id, q)
		}
	})
	r := newResolver(t, "", "", 50*time.Millisecond, ns)
	got, err := lookup(t, r, "hub.internal")
	wantAddrs(t, got, err, "10.0.0.7")
}

// Only an answer with the query's ID, from the server's address and
// port, is taken.
func TestDNSForgedAnswers(t *testing.T) {
	ns := startNameserver(t, "127.0.0.1", map[string][]string{"hub.internal.": {"10.0.0.7"}})
	forged := &nameserver{t: t, zone: map[string][]string{"hub.internal.": {"10.6.6.6"}}}
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	forged.pc = other
	ns.setRespond(func(ns *nameserver, from *net.UDPAddr, id uint16, q dnsmessage.Question) {
		ns.send(from, forged.reply(id+1, q, false))              // wrong ID
		forged.send(from, forged.reply(id, q, false))            // another port
		ns.send(from, append(forged.reply(id, q, false)[:4], 0)) // garbage
		ns.send(from, nil)                                       // empty
		ns.answerFromZone(from, id, q)
	})
	r := newResolver(t, "", "", 2*time.Second, ns)
	got, err := lookup(t, r, "hub.internal")
	wantAddrs(t, got, err, "10.0.0.7")
}

// A server that does not answer is given up after the timeout for the
// next; one that is not there (ICMP port unreachable) at once; and one
// that fails (SERVFAIL) for the next too.
func TestDNSNextServer(t *testing.T) {
	dead := startNameserver(t, "127.0.0.2", nil)
	dead.setRespond(silent)
	failing := startNameserver(t, "127.0.0.3", nil)
	failing.setRespond(func(ns *nameserver, from *net.UDPAddr, id uint16, q dnsmessage.Question) {
		m := dnsmessage.Message{Header: dnsmessage.Header{ID: id, Response: true, RCode: dnsmessage.RCodeServerFailure}, Questions: []dnsmessage.Question{q}}
		b, _ := m.Pack()
		ns.send(from, b)
	})
	good := startNameserver(t, "127.0.0.1", map[string][]string{"hub.internal.": {"10.0.0.7"}})

	const timeout = 150 * time.Millisecond
	r := newResolver(t, "", "", timeout, dead, good)
	start := time.Now()
	got, err := lookup(t, r, "hub.internal")
	wantAddrs(t, got, err, "10.0.0.7")
	if e := time.Since(start); e < timeout {
		t.Errorf("answered after %v, before the first server's timeout", e)
	}
	if len(dead.queries()) != 2 {
		t.Errorf("the silent server was asked %q; want A and AAAA", dead.queries())
	}

	r = newResolver(t, "", "", 5*time.Second, failing, good)
	got, err = lookup(t, r, "hub.internal")
	wantAddrs(t, got, err, "10.0.0.7")

	// Nothing on the first server's port: no waiting for it.
	gone := startNameserver(t, "127.0.0.2", nil)
	r = newResolver(t, "", "", 5*time.Second, gone, good)
	gone.pc.Close()
	start = time.Now()
	got, err = lookup(t, r, "hub.internal")
	wantAddrs(t, got, err, "10.0.0.7")
	if e := time.Since(start); e > 2*time.Second {
		t.Errorf("took %v; want the refusal noticed at once", e)
	}
}

// Rounds through the servers (attempts), then an error that says why.
func TestDNSNoAnswer(t *testing.T) {
	dead := startNameserver(t, "127.0.0.1", nil)
	dead.setRespond(silent)
	r := newResolver(t, "", "search corp.example\noptions attempts:3\n", 30*time.Millisecond, dead)
	_, err := lookup(t, r, "hub")
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "lookup hub: nameserver 127.0.0.1: no answer within") {
		t.Errorf("err %v; want no answer from 127.0.0.1", err)
	}
	// Three rounds for the first name; the search stops there.
	want := slices.Repeat([]string{"hub.corp.example. A", "hub.corp.example. AAAA"}, 3)
	if q := dead.queries(); !slices.Equal(q, want) {
		t.Errorf("queries %q; want %q", q, want)
	}

	// The context's deadline comes before resolv.conf's timeout.
	r.timeout = 0
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := r.LookupHost(ctx, "hub"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v; want the context's deadline", err)
	}
	if e := time.Since(start); e > 2*time.Second {
		t.Errorf("took %v; want the context's 100ms", e)
	}
	// Cancelling ends it too.
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := r.LookupHost(ctx, "hub"); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v; want canceled", err)
	}
}

func TestDNSSearch(t *testing.T) {
	ns := startNameserver(t, "127.0.0.1", map[string][]string{
		"db.lab.example.":   {"10.0.0.2"},
		"db.lab.":           {"10.0.0.3"},
		"db.lab.a.example.": {"10.0.0.4"},
	})
	r := newResolver(t, "", "search a.example lab.example\n", time.Second, ns)
	got, err := lookup(t, r, "db")
	wantAddrs(t, got, err, "10.0.0.2")
	want := []string{"db.a.example. A", "db.a.example. AAAA", "db.lab.example. A", "db.lab.example. AAAA"}
	if q := ns.queries(); !slices.Equal(q, want) {
		t.Errorf("queries %q; want %q", q, want)
	}
	// With ndots dots, the name as it is comes first.
	got, err = lookup(t, r, "db.lab")
	wantAddrs(t, got, err, "10.0.0.3")
	// With fewer, the search list first.
	r = newResolver(t, "", "search a.example lab.example\noptions ndots:2\n", time.Second, ns)
	got, err = lookup(t, r, "db.lab")
	wantAddrs(t, got, err, "10.0.0.4")
	// Absolute: no search.
	if _, err = lookup(t, r, "db."); !errors.Is(err, ErrNotFound) {
		t.Errorf("db.: err %v; want not found", err)
	}
}

// A truncated answer is asked again over TCP.
func TestDNSTruncated(t *testing.T) {
	var ns *nameserver
	for range 20 {
		ns = startNameserver(t, "127.0.0.1", map[string][]string{"big.internal.": {"10.0.0.1", "10.0.0.2", "fd00::1"}})
		if ns.serveTCP() {
			break
		}
		ns = nil
	}
	if ns == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	ns.setRespond(func(ns *nameserver, from *net.UDPAddr, id uint16, q dnsmessage.Question) {
		ns.send(from, ns.reply(id, q, q.Type == dnsmessage.TypeA))
	})
	r := newResolver(t, "", "", 2*time.Second, ns)
	got, err := lookup(t, r, "big.internal")
	wantAddrs(t, got, err, "10.0.0.1", "10.0.0.2", "fd00::1")
	if q := ns.queries(); !slices.Contains(q, "big.internal. A tcp") {
		t.Errorf("queries %q; want A over TCP", q)
	}
}
