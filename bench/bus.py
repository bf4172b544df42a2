#!/usr/bin/env python3
"""The pub/sub bus: one Node.js instance broadcasting 128-byte messages to
4 receivers, tend's bus against pm2's, side by side.

  tend   bench/apps/bus-recv.js, 4 instances, and bench/apps/bus-send.js,
         1 instance, both with --bus (bus: true), using the stock `nats`
         npm package (nats@2.29.3, installed next to pm2, on NODE_PATH):
         one subject, nc.publish / nc.subscribe.
  pm2    the same two scripts, fork mode: the sender calls
         process.send({type: 'process:msg', topic, data}) (to pm2's daemon),
         each of the 4 receivers is a pm2-managed instance that opens
         pm2.launchBus() (the pm2 module, on NODE_PATH) and listens to
         'process:msg': sender → IPC → daemon → axon pub socket → 4 receivers.

Per repetition and manager (alternating who goes first), in one fresh
daemon:

  memory, bus off   the 5 instances started without --bus and without any
                    transport (they idle; tend: no $TEND_HOME/bus.json, so
                    the bus never starts); the daemon's VmRSS after 3 s, the
                    median of 5 readings 0.5 s apart. pm2: the same idle
                    apps (pm2's bus always runs).
  (the idle apps are deleted, the bus apps started)
  probe             the sender sends a probe every 20 ms until each
                    receiver has written "ready-<n>" on hearing one: the
                    path works end to end before anything is measured.
  memory, on        the daemon's VmRSS, 5 connected instances, idle.
  latency           3000 messages, one every 2 ms (paced on the sender's
                    clock), each carrying performance.timeOrigin +
                    performance.now(); each receiver records (its own
                    clock - that) for every one. p50 and p99 over the 4
                    receivers' samples together.
  throughput        200 000 messages as fast as the transport takes them
                    (nats: nc.publish each, nc.flush() at the end; pm2:
                    process.send in batches of 500, each batch waiting for
                    the callback of its last send). Per receiver: distinct
                    messages / (its last - its first message); lost =
                    sent - distinct received (worst receiver). Three rounds,
                    each once every receiver is done with the last.
                    The daemon's VmRSS is sampled every 50 ms meanwhile
                    (peak), and read (settled, as above) after each round:
                    a daemon that keeps what it grew to, or keeps growing.

A receiver ends a phase on the sender's end marker, or after 10 s without a
message of the phase, or when the benchmark writes stop-<phase> (after the
phase's bound: the sender's end + 120 s). Every wait is bounded, and a
crashed instance or an error file stops the run.

--quick: 500 latency messages, 50 000 throughput messages, 1 s to settle.
"""

import json
import math
import os
import shutil
import statistics
import subprocess
import time

import benchlib as bl

NATS_VERSION = "2.29.3"
SEND = os.path.join(bl.APPS, "bus-send.js")
RECV = os.path.join(bl.APPS, "bus-recv.js")
RECEIVERS = 4
SIZE = 128
INTERVAL_MS = 2
BATCH = 500  # pm2: process.send calls per wait for the IPC channel
QUIET_MS = 10000  # a receiver ends a phase after this long without a message of it
DRAIN_S = 120  # how long after the sender finished the receivers may take
TPUT_ROUNDS = 3  # throughput rounds: does the daemon keep growing, or stay at its first peak?


def node_modules():
    return os.path.join(bl.PM2_PREFIX, "node_modules")


def ensure_nats():
    """nats@NATS_VERSION in pm2's prefix (npm install, once)."""
    pkg = os.path.join(node_modules(), "nats", "package.json")
    try:
        with open(pkg) as f:
            if json.load(f)["version"] == NATS_VERSION:
                return
    except (OSError, ValueError, KeyError):
        pass
    if not shutil.which("npm"):
        raise bl.BenchError("npm is not on PATH (needed to install the nats package)")
    bl.say(f"installing nats: npm install --prefix {bl.PM2_PREFIX} nats@{NATS_VERSION}")
    p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", bl.PM2_PREFIX, f"nats@{NATS_VERSION}"],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0 or not os.path.exists(pkg):
        raise bl.BenchError(f"npm install nats failed: {p.stderr.strip()[-2000:]}")


def pct(samples, q):
    """The q-th percentile (0..100), nearest rank."""
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def rss_mb(pid):
    return bl.vm_rss_kb(pid) / 1024


def settled_rss(m, settle):
    time.sleep(settle)
    pid = m.daemon_pid()
    samples = []
    for _ in range(5):
        samples.append(rss_mb(pid))
        time.sleep(0.5)
    return statistics.median(samples)


class Timeout(bl.BenchError):
    pass


class Run:
    """One manager's apps, talking through files in one directory."""

    def __init__(self, m, d, args, transport):
        self.m, self.d, self.transport = m, d, transport
        self.lat_n = 500 if args.quick else 3000
        self.tput_n = 50000 if args.quick else 200000
        os.makedirs(d)
        env = {"BUS_DIR": d, "BUS_TRANSPORT": transport, "BUS_RECEIVERS": str(RECEIVERS),
               "BUS_LAT_N": str(self.lat_n), "BUS_LAT_INTERVAL_MS": str(INTERVAL_MS),
               "BUS_TPUT_N": str(self.tput_n), "BUS_TPUT_ROUNDS": str(TPUT_ROUNDS), "BUS_SIZE": str(SIZE), "BUS_BATCH": str(BATCH),
               "BUS_QUIET_MS": str(QUIET_MS), "NODE_PATH": node_modules()}
        if m.kind == "pm2":
            env["PM2_HOME"] = m.home  # for pm2.launchBus in the receivers
        recv = {"name": "bus-recv", "script": RECV, "instances": RECEIVERS, "autorestart": False, "env": env}
        send = {"name": "bus-send", "script": SEND, "autorestart": False, "env": env}
        for app in (recv, send):
            if m.kind == "pm2":
                app["exec_mode"] = "fork"
            elif transport == "nats":
                app["bus"] = True
        self.apps = [recv, send]
        self.checked = 0.0

    def start(self):
        self.m.start_apps(self.apps)
        self.m.wait_online(RECEIVERS + 1)
        self.m.record()
        apps = self.m.apps()
        self.recv_pids = [pid for name, pid, _ in apps if name == "bus-recv" and pid]
        self.send_pids = [pid for name, pid, _ in apps if name == "bus-send" and pid]
        self.pids = self.recv_pids + self.send_pids
        if len(self.recv_pids) != RECEIVERS or len(self.send_pids) != 1:
            raise bl.BenchError(f"{self.m.kind}: want {RECEIVERS} + 1 bus instances, have {apps}")

    def path(self, name):
        return os.path.join(self.d, name)

    def touch(self, name):
        with open(self.path(name), "w"):
            pass

    def files(self, prefix):
        return sorted(f for f in os.listdir(self.d) if f.startswith(prefix) and not f.startswith("."))

    def check(self):
        """An app's error file, or (every 0.5 s) an instance that is gone,
        ends the run. Read from /proc: a CLI call (pm2's starts a Node
        process) would compete with what is measured."""
        errs = self.files("error-")
        if errs:
            with open(self.path(errs[0])) as f:
                raise bl.BenchError(f"{self.m.kind}: {errs[0]}: {f.read().strip()[-1500:]}")
        if time.monotonic() - self.checked > 0.5:
            self.checked = time.monotonic()
            gone = [p for p in self.pids if not bl.alive(p)]
            if gone:
                raise bl.BenchError(f"{self.m.kind}: bus instances {gone} exited: {self.m.apps()}")

    def wait(self, cond, timeout, what, tick=None):
        deadline = time.monotonic() + timeout
        while True:
            if tick:
                tick()
            if cond():
                return
            self.check()
            if time.monotonic() > deadline:
                raise Timeout(f"{self.m.kind}: timed out after {timeout:.0f} s waiting for {what} "
                                    f"(files: {', '.join(self.files(''))})")
            time.sleep(0.02)

    def wait_receivers(self, prefix, sent_file, bound, tick=None):
        """The receivers' result files of a phase: wait for the sender's
        file, then for RECEIVERS results; past DRAIN_S, tell the receivers
        to stop and take what they write."""
        self.wait(lambda: os.path.exists(self.path(sent_file)), bound, sent_file, tick)
        phase = prefix.rstrip("-")
        try:
            self.wait(lambda: len(self.files(prefix)) >= RECEIVERS, DRAIN_S, f"{RECEIVERS} {prefix}*.json", tick)
        except Timeout as e:
            bl.say(f"{e}; writing stop-{phase}")
            self.touch(f"stop-{phase}")
            self.wait(lambda: len(self.files(prefix)) >= RECEIVERS, 10, f"{RECEIVERS} {prefix}*.json after stop-{phase}", tick)
        out = []
        for name in self.files(prefix):
            with open(self.path(name)) as f:
                out.append(json.load(f))
        with open(self.path(sent_file)) as f:
            return json.load(f), out


def one(bench, m, args, res, notes):
    settle = 1.0 if args.quick else 3.0
    transport = "nats" if m.kind == "tend" else "pm2"
    m.start_daemon()
    pid = m.daemon_pid()

    # Memory with the bus off: the same 5 instances, no bus, idle.
    busfile = os.path.join(m.home, "bus.json")
    if m.kind == "tend" and os.path.exists(busfile):
        os.remove(busfile)
    off = Run(m, os.path.join(m.home, "off"), args, "none")
    off.start()
    mb = settled_rss(m, settle)
    if m.kind == "tend" and os.path.exists(busfile):
        raise bl.BenchError("tend: the bus started although no app asked for it (bus.json exists)")
    res["mem_off"][m.kind].append(mb)
    m.cli("delete", "all")
    bl.wait_until(lambda: not m.apps(), 60, f"{m.kind}: no app left after delete all")

    # The bus apps.
    run = Run(m, os.path.join(m.home, "bus"), args, transport)
    run.start()
    run.wait(lambda: len(run.files("ready-")) >= RECEIVERS and os.path.exists(run.path("probed")), 60,
             f"{RECEIVERS} receivers to hear a probe")
    with open(run.path("probed")) as f:
        probes = int(f.read())
    mb_on = settled_rss(m, settle)
    res["mem_on"][m.kind].append(mb_on)
    bl.say(f"bus {m.kind}: daemon {mb:.1f} MB with the bus off, {mb_on:.1f} MB with 5 instances on it "
           f"({probes} probes until all heard one)")

    # Latency.
    run.touch("go-lat")
    sent, recs = run.wait_receivers("lat-", "sent-lat.json", run.lat_n * INTERVAL_MS / 1000 * 3 + 60)
    lats = [x for r in recs for x in r["lat_us"]]
    lost = [sent["sent"] - r["distinct"] for r in recs]
    if not lats:
        raise bl.BenchError(f"{m.kind}: no latency sample")
    p50, p99 = pct(lats, 50), pct(lats, 99)
    res["p50"][m.kind].append(p50)
    res["p99"][m.kind].append(p99)
    res["lat_lost"][m.kind].append(sum(lost))
    notes["lat_send_ms"][m.kind].append(sent["ms"] / sent["sent"])
    notes["lat_max"][m.kind].append(max(lats))
    bl.say(f"bus {m.kind} latency: p50 {p50} µs, p99 {p99} µs, max {max(lats)} µs over {len(lats)} samples; "
           f"lost per receiver {lost}; sender took {sent['ms'] / 1000:.2f} s for {sent['sent']}")

    # Throughput, in rounds, with the daemon's memory sampled meanwhile.
    peak = [rss_mb(pid)]
    last = [0.0]

    def sample():
        t = time.monotonic()
        if t - last[0] >= 0.05:
            last[0] = t
            peak[0] = max(peak[0], rss_mb(pid))

    all_rates, all_lost, after = [], [], []
    for r in range(TPUT_ROUNDS):
        cpu0 = bl.cpu_ns(pid)
        app_cpu0 = {p: bl.cpu_ns(p) for p in run.pids}
        t0 = time.monotonic()
        run.touch(f"go-tput-{r}")
        sent, recs = run.wait_receivers(f"tput-{r}-", f"sent-tput-{r}.json", 600, sample)
        wall = time.monotonic() - t0
        cpu = (bl.cpu_ns(pid) - cpu0) / 1e9
        app_cpu = {p: (bl.cpu_ns(p) - c) / 1e9 for p, c in app_cpu0.items()}
        send_cpu = app_cpu[run.send_pids[0]]
        recv_cpu = statistics.mean(app_cpu[p] for p in run.recv_pids)
        rates = [x["distinct"] / ((x["last_ms"] - x["first_ms"]) / 1000)
                 if x["distinct"] > 1 and x["last_ms"] > x["first_ms"] else 0 for x in recs]
        lost = [sent["sent"] - x["distinct"] for x in recs]
        dups = sum(x["dup"] for x in recs)
        ended = sorted({x["ended"] for x in recs})
        after.append(settled_rss(m, settle))
        all_rates += rates
        all_lost += lost
        notes["send_rate"][m.kind].append(sent["sent"] / (sent["ms"] / 1000))
        notes["min_rate"][m.kind].append(min(rates))
        notes["cpu"][m.kind].append(cpu)
        notes["send_cpu"][m.kind].append(send_cpu)
        notes["recv_cpu"][m.kind].append(recv_cpu)
        notes["wall"][m.kind].append(wall)
        notes["dup"][m.kind].append(dups)
        notes["ended"][m.kind].update(ended)
        extra = ""
        if m.kind == "tend":
            st = m.cli("bus", "status", "--json", check=False)
            try:
                st = json.loads(st.stdout)
            except ValueError:
                st = {}
            # Counters that are 0 are left out of the JSON.
            keep = ("clients", "subscriptions", "in_msgs", "out_msgs", "slow_consumers", "dropped")
            if st.get("running"):
                extra = "; bus status: " + ", ".join(f"{k} {st.get(k, 0)}" for k in keep)
                notes["slow"]["tend"].append(st.get("slow_consumers", 0))
            else:
                extra = "; bus status: not running?"
        bl.say(f"bus {m.kind} throughput round {r + 1}/{TPUT_ROUNDS}: {sent['sent']} sent in {sent['ms'] / 1000:.2f} s "
               f"({sent['sent'] / sent['ms']:.0f} k/s); per receiver {', '.join(f'{x / 1000:.0f}' for x in rates)} k/s; "
               f"lost {lost}, dup {dups}, ended {ended}; {wall:.1f} s from go to the last result; "
               f"CPU: daemon {cpu:.2f} s, sender {send_cpu:.2f} s, each receiver {recv_cpu:.2f} s; "
               f"daemon RSS peak so far {peak[0]:.1f} MB, after {after[-1]:.1f} MB{extra}")
    res["rate"][m.kind].append(statistics.mean(all_rates))
    res["lost"][m.kind].append(max(all_lost))
    res["mem_peak"][m.kind].append(peak[0])
    res["mem_after1"][m.kind].append(after[0])
    res["mem_after"][m.kind].append(after[-1])
    bench.finish(m)


def run(bench, args):
    ensure_nats()
    keys = ("mem_off", "mem_on", "p50", "p99", "lat_lost", "rate", "lost", "mem_peak", "mem_after1", "mem_after")
    res = {k: {"tend": [], "pm2": []} for k in keys}
    notes = {k: {"tend": [], "pm2": []} for k in ("lat_send_ms", "lat_max", "send_rate", "min_rate", "cpu", "send_cpu", "recv_cpu", "wall", "dup", "slow")}
    notes["ended"] = {"tend": set(), "pm2": set()}
    for rep in range(args.reps):
        bl.say(f"bus: repetition {rep + 1}/{args.reps} (load average {os.getloadavg()[0]:.2f})")
        for m in bench.pair(rep):
            one(bench, m, args, res, notes)

    def med(k, kind, f="{:.0f}"):
        v = notes[k][kind]
        return f.format(statistics.median(v)) if v else "?"

    def fig(name, key, unit, better="lower", note="", scale=1.0):
        return bl.Figure(name, unit, [x * scale for x in res[key]["tend"]], [x * scale for x in res[key]["pm2"]],
                         better=better, note=note)

    lat_n = 500 if args.quick else 3000
    tput_n = 50000 if args.quick else 200000
    lat_note = (f"{lat_n} msgs × {RECEIVERS} receivers, {SIZE} B every {INTERVAL_MS} ms; "
                f"lost: tend {max(res['lat_lost']['tend'])}, pm2 {max(res['lat_lost']['pm2'])}; "
                f"max: tend {med('lat_max', 'tend')} µs, pm2 {med('lat_max', 'pm2')} µs")
    tput_note = (f"{TPUT_ROUNDS} rounds of {tput_n} msgs of {SIZE} B; sender: tend {med('send_rate', 'tend', '{:.0f}')} msg/s, "
                 f"pm2 {med('send_rate', 'pm2', '{:.0f}')} msg/s; slowest receiver: tend "
                 f"{med('min_rate', 'tend', '{:.0f}')}, pm2 {med('min_rate', 'pm2', '{:.0f}')} msg/s; "
                 f"CPU s per round (daemon/sender/each receiver), go to last result (tend {med('wall', 'tend', '{:.1f}')} s, "
                 f"pm2 {med('wall', 'pm2', '{:.1f}')} s): "
                 f"tend {med('cpu', 'tend', '{:.2f}')}/{med('send_cpu', 'tend', '{:.2f}')}/{med('recv_cpu', 'tend', '{:.2f}')}, "
                 f"pm2 {med('cpu', 'pm2', '{:.2f}')}/{med('send_cpu', 'pm2', '{:.2f}')}/{med('recv_cpu', 'pm2', '{:.2f}')}")
    lost_note = (f"dup: tend {max(notes['dup']['tend'])}, pm2 {max(notes['dup']['pm2'])}; receivers ended on: "
                 f"tend {'/'.join(sorted(notes['ended']['tend']))}, pm2 {'/'.join(sorted(notes['ended']['pm2']))}"
                 + (f"; tend slow consumers {max(notes['slow']['tend'])}" if notes["slow"]["tend"] else ""))
    on_minus_off = [a - b for a, b in zip(res["mem_on"]["tend"], res["mem_off"]["tend"])]
    return [
        fig("bus latency p50", "p50", "µs", note=lat_note),
        fig("bus latency p99", "p99", "µs"),
        fig("bus throughput per receiver", "rate", "k msg/s", better="higher", scale=1 / 1000, note=tput_note),
        fig("bus throughput: lost (sent - received, worst receiver)", "lost", "msgs", note=lost_note),
        fig("bus daemon memory, apps off the bus", "mem_off", "MB",
            note="tend: bus not started; pm2: its bus always runs, no client"),
        fig("bus daemon memory, 4+1 instances connected, idle", "mem_on", "MB",
            note=f"tend on - off: {bl.spread(on_minus_off, 'MB')}"),
        fig(f"bus daemon memory, peak during throughput ({TPUT_ROUNDS} rounds)", "mem_peak", "MB"),
        fig("bus daemon memory after 1 round of throughput", "mem_after1", "MB"),
        fig(f"bus daemon memory after {TPUT_ROUNDS} rounds of throughput", "mem_after", "MB"),
    ]


if __name__ == "__main__":
    raise SystemExit(bl.standalone("The bus (1 Node.js sender, 4 receivers, 128-byte messages)", __doc__, run))
