package supervisor

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/nodeshim"
	"github.com/tend-pm/tend/internal/proxy"
	"github.com/tend-pm/tend/internal/rawnet"
)

// sockets are the listening sockets the daemon holds for an app with a
// port (DESIGN 5). They outlive every instance, so a connection that
// arrives while an instance restarts or reloads waits in the kernel's
// queue instead of being refused.
type sockets struct {
	addrs   []rawnet.Addr
	balance string
	// shared: one socket per address, inherited by every instance.
	shared []*os.File
	// reuseport: per slot, one socket per address, all in the address's
	// SO_REUSEPORT group; slot i's process (old and new during a reload)
	// accepts on slot i's sockets.
	slots [][]*os.File
	// proxy: the daemon accepts on the public address and forwards.
	proxies []*proxy.Proxy
	// steered is the set of slots new connections are steered to, nil
	// when the kernel hashes across every slot (steerLocked).
	steered []int
	// bound are the unix socket paths this app created, removed when it
	// lets them go (never a path someone else listens on).
	bound []string
}

// listen binds addr and remembers a unix socket path it created.
func (k *sockets) listen(addr rawnet.Addr, o rawnet.ListenOptions) (*os.File, error) {
	f, err := rawnet.Listen(addr, o)
	if err == nil && addr.Unix() {
		k.bound = append(k.bound, addr.Path)
	}
	return f, err
}

// openSocketsLocked binds the app's addresses, if it has any and they are
// not bound yet.
func (s *Supervisor) openSocketsLocked(a *app) error {
	if len(a.spec.Listen) == 0 || a.socks != nil {
		return nil
	}
	k := &sockets{balance: a.spec.Balance}
	for _, l := range a.spec.Listen {
		addr, err := rawnet.ParseAddr(l)
		if err != nil {
			return fmt.Errorf("app %q: %w: %w", a.spec.Name, err, api.ErrInvalid)
		}
		k.addrs = append(k.addrs, addr)
	}
	fail := func(err error) error {
		k.close()
		return fmt.Errorf("app %q: %w", a.spec.Name, err)
	}
	switch k.balance {
	case api.BalanceReusePort:
		for range a.insts {
			if err := k.addSlot(); err != nil {
				return fail(err)
			}
		}
	case api.BalanceProxy:
		for _, addr := range k.addrs {
			f, err := k.listen(addr, rawnet.ListenOptions{NonBlocking: true})
			if err != nil {
				return fail(err)
			}
			p := proxy.New(f, proxy.Options{ProxyProtocol: a.spec.ProxyProtocol, Log: s.deps.Log.With("app", a.spec.Name, "listen", addr.String())})
			k.proxies = append(k.proxies, p)
			go p.Serve()
		}
	default:
		for _, addr := range k.addrs {
			f, err := k.listen(addr, rawnet.ListenOptions{})
			if err != nil {
				return fail(err)
			}
			k.shared = append(k.shared, f)
		}
	}
	a.socks = k
	return nil
}

// addSlot binds one more set of reuseport sockets, for a new slot. A unix
// socket path has no reuseport group: every slot shares one socket.
func (k *sockets) addSlot() error {
	var set []*os.File
	for i, addr := range k.addrs {
		if addr.Unix() && len(k.slots) > 0 {
			set = append(set, k.slots[0][i])
			continue
		}
		f, err := k.listen(addr, rawnet.ListenOptions{ReusePort: !addr.Unix()})
		if err != nil {
			for j, g := range set {
				if !k.addrs[j].Unix() || len(k.slots) == 0 {
					g.Close()
				}
			}
			return err
		}
		set = append(set, f)
	}
	k.slots = append(k.slots, set)
	return nil
}

func (k *sockets) close() {
	if k == nil {
		return
	}
	for _, f := range k.shared {
		f.Close()
	}
	for n, set := range k.slots {
		for i, f := range set {
			if n == 0 || f != k.slots[0][i] {
				f.Close()
			}
		}
	}
	for _, p := range k.proxies {
		_ = p.Close()
	}
	for _, p := range k.bound {
		_ = os.Remove(p)
	}
}

// closeSocketsLocked releases the app's port: when it is stopped by the
// user or deleted, a client should be refused rather than wait.
func (s *Supervisor) closeSocketsLocked(a *app) {
	a.socks.close()
	a.socks = nil
}

// files returns the sockets the process of slot inherits, in fd order
// from 3.
func (k *sockets) files(slot int) []*os.File {
	switch {
	case k == nil:
		return nil
	case k.balance == api.BalanceReusePort && slot < len(k.slots):
		return k.slots[slot]
	case k.balance == api.BalanceShared:
		return k.shared
	}
	return nil
}

// launch is what one process of an instance gets beyond its app's spec.
type launch struct {
	files []*os.File // from fd 3
	env   map[string]string
	wrap  bool // through the exec wrapper (LISTEN_PID, WATCHDOG_PID)
	port  int  // private port, proxy mode
	// ipc is the daemon's end of a Node.js IPC channel (pm2's wait_ready:
	// the app calls process.send('ready')); ipcChild is the app's end,
	// among files, which the daemon closes once the process has it.
	ipc, ipcChild *os.File
}

// close releases what the daemon opened for a process that did not start.
func (l *launch) close() {
	for _, f := range []*os.File{l.ipc, l.ipcChild} {
		if f != nil {
			f.Close()
		}
	}
}

// launchLocked prepares the sockets, environment and private port of the
// next process of in.
func (s *Supervisor) launchLocked(in *instance) (launch, error) {
	a := in.app
	spec := &a.spec
	l := launch{env: map[string]string{}}
	if s.deps.NotifySocket != "" {
		l.env["NOTIFY_SOCKET"] = s.deps.NotifySocket
	}
	if spec.Watchdog > 0 {
		l.env["WATCHDOG_USEC"] = strconv.FormatInt(spec.Watchdog.Std().Microseconds(), 10)
		l.wrap = true
	}
	if err := s.socketsLaunch(in, &l); err != nil {
		return l, err
	}
	if spec.Bus && s.deps.Bus != nil {
		env, err := s.deps.Bus.Env()
		if err != nil {
			return l, err
		}
		maps.Copy(l.env, env)
	}
	if spec.RunsNode() {
		// Node's own IPC channel, as pm2 gives it (ipc.go): process.send
		// exists, process.send('ready') is wait_ready's signal, and
		// messages go both ways. Only node itself gets it: any other
		// program would find an fd it never asked for, and a package
		// manager (npm start) would keep it from the app. It does not
		// keep a script alive unless the script listens for messages.
		parent, child, err := socketPair()
		if err != nil {
			return l, fmt.Errorf("IPC channel: %w", err)
		}
		l.ipc, l.ipcChild = parent, child
		l.env["NODE_CHANNEL_FD"] = strconv.Itoa(3 + len(l.files))
		l.env["NODE_CHANNEL_SERIALIZATION_MODE"] = "json"
		if spec.WaitReady {
			l.env["TEND_NODE_READY"] = "message"
		}
		l.files = append(slices.Clone(l.files), child)
	}
	return l, nil
}

// socketsLaunch adds the app's sockets (socket modes) or a private port
// (proxy mode) to l.
func (s *Supervisor) socketsLaunch(in *instance, l *launch) error {
	spec := &in.app.spec
	k := in.app.socks
	if k == nil {
		return nil
	}
	if k.balance == api.BalanceProxy {
		port, err := rawnet.PrivatePort()
		if err != nil {
			return fmt.Errorf("private port: %w", err)
		}
		l.port = port
		l.env["PORT"] = strconv.Itoa(port)
		return nil
	}
	l.files = k.files(in.slot)
	if len(l.files) == 0 {
		return nil
	}
	names := make([]string, len(l.files))
	var node []nodeshim.Entry
	for i, addr := range k.addrs {
		names[i] = fdName(spec.Name)
		key := addr.Path
		if !addr.Unix() {
			key = strconv.Itoa(addr.Port)
		}
		node = append(node, nodeshim.Entry{Key: key, FD: 3 + i})
	}
	l.env["LISTEN_FDS"] = strconv.Itoa(len(l.files))
	l.env["LISTEN_FDNAMES"] = strings.Join(names, ":")
	l.wrap = true
	if s.deps.NodePreload != "" {
		existing := spec.Env["NODE_OPTIONS"]
		if existing == "" {
			existing = spec.BaseEnv["NODE_OPTIONS"]
		}
		l.env["NODE_OPTIONS"] = nodeshim.NodeOptions(existing, s.deps.NodePreload)
		l.env["TEND_NODE_LISTEN"] = nodeshim.ListenEnv(node)
	}
	return nil
}

// fdName is the app's name as LISTEN_FDNAMES allows it: no colons, at
// most 255 bytes.
func fdName(name string) string {
	name = strings.ReplaceAll(name, ":", "_")
	if len(name) > 255 {
		name = name[:255]
	}
	return name
}

// proxies returns the proxies of in's app, if it is in proxy mode.
func (in *instance) proxies() []*proxy.Proxy {
	if k := in.app.socks; k != nil {
		return k.proxies
	}
	return nil
}

// proxyAddLocked registers the process of in with the app's proxies.
func (in *instance) proxyAddLocked() {
	for _, p := range in.proxies() {
		p.Add(in.run, rawnet.Addr{Host: "127.0.0.1", Port: in.port})
	}
}

func (in *instance) proxyReadyLocked(ready bool) {
	for _, p := range in.proxies() {
		p.SetReady(in.run, ready)
	}
}

func (in *instance) proxyRemoveLocked() {
	for _, p := range in.proxies() {
		p.Remove(in.run)
	}
}

// drain, in proxy mode, stops new connections to the process of in and
// waits until the ones it has are done, or d passes: an app that exits on
// the stop signal without finishing its requests (many do) then has none
// left to fail. It runs without s.mu held.
func (s *Supervisor) drain(in *instance, run uint64, ps []*proxy.Proxy, d time.Duration) {
	if len(ps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for _, p := range ps {
		p.Drain(ctx, run)
	}
}

// drainTimeout is how long a proxy drain waits before the stop signal.
// It is short: kept-alive connections do not end by themselves, and a
// graceful app ends them on the signal (answering with Connection: close);
// the wait is for the requests in flight on short connections, so an app
// that exits at once on the signal fails none of them.
func drainTimeout(spec *api.AppSpec) time.Duration {
	return min(250*time.Millisecond, spec.KillTimeout.Std())
}

// steerLocked points the new connections of a reuseport app at the slots
// that can take them: a slot being removed by a scale-down, or whose
// process crashed or has not said it is ready, is left out, so nothing new
// queues on a socket nobody accepts on. (What is queued there already
// waits for the slot's next process, or is forwarded by removeTopSlot.)
// With every slot able, or none, the kernel's hash is used.
func (s *Supervisor) steerLocked(a *app) {
	k := a.socks
	if k == nil || k.balance != api.BalanceReusePort || len(k.slots) == 0 {
		return
	}
	var live []int
	for i := range k.slots {
		if i < len(a.insts) && a.insts[i].pid != 0 && a.insts[i].ready {
			live = append(live, i)
		}
	}
	if len(live) == 0 && len(a.insts) < len(k.slots) {
		// Nothing serves right now, but slots are being removed: keep
		// new connections on the slots that stay, to wait there.
		for i := range a.insts {
			live = append(live, i)
		}
	}
	all := len(live) == 0 || len(live) == len(k.slots)
	if all && k.steered == nil || slices.Equal(live, k.steered) {
		return
	}
	for i, f := range k.slots[0] {
		if k.addrs[i].Unix() {
			continue
		}
		var err error
		if all {
			err = rawnet.Unsteer(f)
		} else {
			err = rawnet.Steer(f, live)
		}
		if err != nil {
			s.deps.Log.Warn("cannot steer new connections to the slots that serve; those of a stopped slot wait for its next process", "app", a.spec.Name, "err", err)
		}
	}
	k.steered = nil
	if !all {
		k.steered = live
	}
}

// detachTopSlot takes the top slot's sockets out of the app once its
// process is gone; the caller drains them with drainClosed, without s.mu.
func (k *sockets) detachTopSlot() (files []*os.File, addrs []rawnet.Addr) {
	if k == nil || k.balance != api.BalanceReusePort || len(k.slots) < 2 {
		return nil, nil
	}
	top := k.slots[len(k.slots)-1]
	k.slots = k.slots[:len(k.slots)-1]
	for i, f := range top {
		if f == k.slots[0][i] {
			continue // a unix socket, shared by every slot
		}
		files, addrs = append(files, f), append(addrs, k.addrs[i])
	}
	return files, addrs
}

// drainClosed accepts what is still queued on sockets nobody accepts on
// any more and forwards it to the public address, which steering sends to
// a slot that stays; then it closes them, with empty queues, so the kernel
// resets nothing.
func (s *Supervisor) drainClosed(files []*os.File, addrs []rawnet.Addr) {
	for i, f := range files {
		for rawnet.Pending(f) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			c, err := rawnet.Accept(ctx, f)
			cancel()
			if err != nil {
				break
			}
			go s.forward(c, addrs[i].Loopback())
		}
		f.Close()
	}
}

// forward pipes one connection to addr.
func (s *Supervisor) forward(c *os.File, addr rawnet.Addr) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	up, err := rawnet.Dial(ctx, addr)
	cancel()
	if err != nil {
		c.Close()
		s.deps.Log.Warn("forward a queued connection", "to", addr.String(), "err", err)
		return
	}
	proxy.Pipe(c, up)
}

// allInstances returns every instance object of a: the slots, and
// the processes a reload or scale-down is replacing or retiring.
func (a *app) allInstances() []*instance {
	return slices.Concat(a.insts, a.extra)
}
