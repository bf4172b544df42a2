#!/usr/bin/env python3
"""Cluster mode: throughput and spread over 2 instances, reload and restart
under load, crash to ready. tend against pm2, with the same Node app
(bench/apps/cluster.js, answering "ok <pid>") and the same load (wrk, with
bench/cluster.lua).

  tend   tend start cluster.js -i 2 --port P [--balance reuseport|shared|proxy] --name web
  pm2    PORT=P pm2 start cluster.js -i 2 --name web --wait-ready --listen-timeout 3000
         (cluster mode; --wait-ready: the app's process.send('ready'), as pm2's
         documentation recommends for a graceful reload)
  direct PORT=P node cluster.js (one process, no manager: a reference)

5  Throughput: wrk -t2 -c64 -d10s, on / (hello) and /cpu (~1 ms of CPU),
   keep-alive and with -H 'Connection: close'; responses per second that were
   not errors. tend with its default balance and with each of --balance
   reuseport, shared and proxy; pm2; direct node.
   Spread: wrk -t2 -c16, keep-alive, hello: responses of the busiest instance
   / responses of the idlest (1 = even; ∞ = one instance got nothing).
   Proxy cost: --balance proxy / --balance reuseport throughput, per run.
6  Reload under load: wrk -t2 -c32 on hello for 20 s, keep-alive then
   Connection: close; 5 `reload web` evenly spread over the window (one
   after the other if they take longer). Failed requests = socket errors
   (connect, read, write, timeout at wrk's default 2 s) + non-2xx responses.
7  Restart under load: the same with `restart web`; also the number of whole
   seconds of the window without a successful response, and the longest gap
   between two successful responses (10 ms resolution).
8  Crash to ready, fork mode, one instance, tend with --port (the daemon
   holds the socket): kill -9 the instance, then a client polls (connect,
   GET, 1 ms between attempts) until an answer from a new pid. The figure is
   kill-to-answer minus the app's own start time (spawn of `node cluster.js`
   to its first answer, polled the same way, measured just before each
   crash), and the connections refused (or reset) meanwhile.

Every repetition runs the setups alternately (order reversed every other
repetition), each on a fresh free port and a fresh manager home. A reload or
restart window goes on until 2 s after the last command returned.

--quick: 1 s throughput windows (1 s warm-up and spread), 2 reloads or
restarts in 5 s windows (1 s after the last), 2 crashes per repetition.
--parts and --kinds run a part of it, or one manager. A tend whose
`start --help` does not mention --balance (no cluster mode) is left out: the
lines then say [pm2 only].
"""

import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import time

import benchlib as bl

NAME = "web"
APP = os.path.join(bl.APPS, "cluster.js")
LUA = os.path.join(bl.BENCH_DIR, "cluster.lua")
MODES = ("reuseport", "shared", "proxy")
LOADS = (("hello", "/", False), ("hello", "/", True), ("cpu", "/cpu", False), ("cpu", "/cpu", True))
GOAL_KEEPALIVE, GOAL_CLOSE = 1.0, 1.3  # tend (default balance) / pm2
GOAL_CRASH_MS = 20  # crash to ready, beyond the app's own start
PM2_READY = ["--wait-ready", "--listen-timeout", "3000"]


def conn_name(close):
    return "close" if close else "keep-alive"


def load_name(route, close):
    return f"{route} {conn_name(close)}"


# ---------------------------------------------------------------------------
# Ports and a tiny HTTP client.

def free_port():
    """A port free on every address, below the ephemeral range (so that
    wrk's own connections never compete for it)."""
    for _ in range(200):
        p = random.randrange(20000, 32000)
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise bl.BenchError("no free port found")


def http_get(port, path="/", timeout=2.0):
    """One GET on a new connection; (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        raise ConnectionResetError("empty answer")
    return int(head.split()[1]), body.decode(errors="replace")


def answer_pid(port, timeout=2.0):
    """The pid that answers a GET, or None if nothing answers."""
    try:
        status, body = http_get(port, timeout=timeout)
    except OSError:
        return None
    if status == 200 and body.startswith("ok "):
        return int(body[3:])
    return None


def poll_until_answer(port, t0, not_pid=None, limit=30.0):
    """Polls the port from now on (connect, GET; 1 ms pause after a refused
    or failed attempt) until a 200 from a pid other than not_pid. Returns
    (seconds since t0, refused, failed, first and last refusal since t0)."""
    refused = failed = 0
    first_ref = last_ref = None
    deadline = t0 + limit
    while True:
        now = time.monotonic()
        if now > deadline:
            raise bl.BenchError(f"port {port}: no answer {limit:.0f} s after the start")
        try:
            status, body = http_get(port, timeout=max(0.1, deadline - now))
            if status == 200 and body.startswith("ok ") and int(body[3:]) != not_pid:
                return time.monotonic() - t0, refused, failed, first_ref, last_ref
            if not (status == 200 and body.startswith("ok ")):
                failed += 1
        except ConnectionRefusedError:
            refused += 1
            t = time.monotonic() - t0
            first_ref = t if first_ref is None else first_ref
            last_ref = t
        except (OSError, ValueError, IndexError):
            failed += 1
        time.sleep(0.001)


# ---------------------------------------------------------------------------
# wrk.

class Wrk:
    """One wrk run with bench/cluster.lua; result() waits for it and returns
    the parsed WRKJSON line plus a few derived numbers."""

    def __init__(self, bench, port, path, secs, conns, close=False, count=False):
        self.argv = ["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "-s", LUA]
        if close:
            self.argv += ["-H", "Connection: close"]
        self.argv.append(f"http://127.0.0.1:{port}{path}")
        env = dict(os.environ, TENDBENCH=bench.work, WRK_COUNT="1" if count else "0")
        self.secs = secs
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self):
        """Ends the run now (wrk reports what it has on SIGINT)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)

    def result(self, timeout=None):
        try:
            out, err = self.p.communicate(timeout=timeout if timeout is not None else self.secs + 60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.communicate()
            raise bl.BenchError(f"{' '.join(self.argv)}: did not finish")
        for line in out.splitlines():
            if line.startswith("WRKJSON "):
                r = json.loads(line[len("WRKJSON "):])
                break
        else:
            raise bl.BenchError(f"{' '.join(self.argv)} ({self.p.returncode}): no result: {err.strip()[-500:]} {out[-500:]}")
        r["errors"] = r["connect"] + r["read"] + r["write"] + r["timeout"]
        r["failed"] = r["errors"] + r["status"]
        r["ok"] = r["requests"] - r["status"]
        r["rps"] = r["ok"] / (r["duration_us"] / 1e6)
        r["slots"] = {int(k): v for k, v in r["slots"].items()}
        r["t0"] = self.t0
        return r


def errors_text(r):
    return (f"connect {r['connect']}, read {r['read']}, write {r['write']}, "
            f"timeout {r['timeout']}, non-2xx {r['status']}")


def gaps(r, start, end):
    """From the 10 ms success slots of a counted run: (longest gap in s
    between two successful responses, or from start/to end of the window if
    the successes stop; whole seconds of [start, end) with no success; the
    per-second counts)."""
    first, last = int(start * 100), int(end * 100)
    ok = sorted(s for s in r["slots"] if first <= s < last)
    longest, prev = 0, None
    for s in ok:
        if prev is not None:
            longest = max(longest, s - prev - 1)
        prev = s
    if ok:
        longest = max(longest, ok[0] - first - 50, last - ok[-1] - 1)  # 0.5 s for wrk's start-up
    else:
        longest = last - first
    secs = [0] * max(1, int(end - start))
    for s, n in r["slots"].items():
        i = int((s - first) // 100)
        if 0 <= i < len(secs):
            secs[i] += n
    return longest / 100, sum(1 for n in secs if n == 0), secs


# ---------------------------------------------------------------------------
# The app under a manager, or alone.

class Direct:
    """`node cluster.js` alone, no manager."""

    kind = "direct"

    def __init__(self, bench):
        self.bench = bench
        self.p = None

    def start(self, port):
        env = dict(os.environ, TENDBENCH=self.bench.work, PORT=str(port))
        self.p = subprocess.Popen([shutil.which("node"), APP], env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.p

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def instances(m):
    """[(pid, ready)] of the app's instances under manager m."""
    if m.kind == "tend":
        for a in json.loads(m.cli("ls", "--json").stdout):
            if a["name"] == NAME:
                return [(i.get("pid") or 0, i.get("status") == "online" and i.get("ready", True))
                        for i in a["instances"]]
        return []
    text = m.cli("jlist").stdout
    return [(p.get("pid") or 0, p["pm2_env"]["status"] == "online")
            for p in json.loads(text[text.index("["):]) if p["name"] == NAME]


def wait_ready(m, n, port, timeout=60, old=()):
    """Waits until n instances (none of them in old) are ready and the port
    answers; returns their pids."""
    def ready():
        got = instances(m)
        pids = [p for p, r in got if r and p and p not in old]
        return pids if len(pids) == n and len(got) == n else None
    pids = bl.wait_until(ready, timeout, f"{n} instances of {NAME} ready under {m.kind}", step=0.1)
    bl.wait_until(lambda: answer_pid(port) is not None, timeout, f"port {port} answering under {m.kind}", step=0.05)
    return pids


def start_app(m, port, n, balance=None):
    """Starts NAME on port under m, n instances (cluster mode if n > 1 for
    pm2); returns the instance pids once ready."""
    m.start_daemon()
    if m.kind == "tend":
        args = ["start", APP, "--name", NAME, "--port", str(port)]
        if n > 1:
            args += ["-i", str(n)]
        if balance:
            args += ["--balance", balance]
    else:
        m.env["PORT"] = str(port)
        args = ["start", APP, "--name", NAME, *PM2_READY]
        if n > 1:
            args += ["-i", str(n)]
    m.cli(*args)
    pids = wait_ready(m, n, port)
    m.record()
    return pids


def managers(bench, rep, kinds):
    """Fresh managers of the given kinds, the first one alternating."""
    ms = [bench.tend() if k == "tend" else bench.pm2() for k in ("tend", "pm2") if k in kinds]
    return ms if rep % 2 == 0 else ms[::-1]


def compare(name, unit, tend, pm2, **kw):
    """A Figure; a reference line for the one side measured if tend or pm2
    was not."""
    if tend and pm2:
        return bl.Figure(name, unit, tend, pm2, **kw)
    side = "tend" if tend else "pm2"
    return bl.Figure(f"{name} [{side} only]", unit, tend or pm2, note=kw.get("note", ""))


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def setup_label(s):
    kind, balance = s
    if kind == "tend":
        return f"tend --balance {balance}" if balance else "tend (default balance)"
    return {"pm2": "pm2 cluster", "direct": "direct node"}[kind]


# ---------------------------------------------------------------------------
# 5: throughput and spread.

def throughput(bench, args, figs, kinds):
    secs = 1 if args.quick else 10
    warm = 1 if args.quick else 2
    spread_secs = 1 if args.quick else 5
    setups = [("direct", None)]
    if "tend" in kinds:
        setups += [("tend", None)] + [("tend", b) for b in MODES]
    if "pm2" in kinds:
        setups.append(("pm2", None))
    rps = {s: {ld: [] for ld in LOADS} for s in setups}
    errs = {s: 0 for s in setups}
    spread = {s: [] for s in setups if s[0] != "direct"}
    for rep in range(args.reps):
        order = setups if rep % 2 == 0 else setups[::-1]
        for s in order:
            label = setup_label(s)
            bl.say(f"cluster throughput: repetition {rep + 1}/{args.reps}, {label}")
            port = free_port()
            if s[0] == "direct":
                m = Direct(bench)
                m.start(port)
                bl.wait_until(lambda: answer_pid(port) is not None, 30, "direct node answering", step=0.05)
                pids = None
            else:
                m = bench.tend() if s[0] == "tend" else bench.pm2()
                pids = start_app(m, port, 2, s[1])
            try:
                Wrk(bench, port, "/", warm, 64).result()
                for ld in LOADS:
                    route, path, close = ld
                    r = Wrk(bench, port, path, secs, 64, close).result()
                    rps[s][ld].append(r["rps"] / 1000)
                    errs[s] += r["failed"]
                    bl.say(f"  {load_name(route, close)}: {r['rps'] / 1000:.2f} k/s"
                           + (f" ({errors_text(r)})" if r["failed"] else ""))
                if pids:
                    r = Wrk(bench, port, "/", spread_secs, 16, count=True).result()
                    counts = dict.fromkeys(pids, 0)
                    for pid, n in r["pids"].items():
                        counts[int(pid)] = counts.get(int(pid), 0) + n
                    hi, lo = max(counts.values()), min(counts.values())
                    spread[s].append(hi / lo if lo else float("inf"))
                    bl.say(f"  spread (16 keep-alive connections): {sorted(counts.values(), reverse=True)}")
            finally:
                if s[0] == "direct":
                    m.stop()
                else:
                    bench.finish(m)

    direct, pm2 = ("direct", None), ("pm2", None)

    def get(d, s, *k):
        x = d.get(s, {})
        return x.get(k[0], []) if k else x or []

    for ld in LOADS:
        route, _, close = ld
        t, p, d = get(rps, ("tend", None), ld), get(rps, pm2, ld), rps[direct][ld]
        note = f"direct node {med(d):.2f} k/s; " + ", ".join(
            f"{k}/direct {med(v) / med(d):.2f}" for k, v in (("tend", t), ("pm2", p)) if v)
        figs.append(compare(f"cluster {load_name(route, close)}", "k req/s", t, p,
                            better="higher", goal=GOAL_CLOSE if close else GOAL_KEEPALIVE, note=note))
    if "tend" in kinds:
        for b in MODES:
            for ld in LOADS:
                route, _, close = ld
                figs.append(compare(f"cluster {load_name(route, close)} --balance {b}", "k req/s",
                                    rps[("tend", b)][ld], get(rps, pm2, ld), better="higher"))
    for ld in LOADS:
        route, _, close = ld
        figs.append(bl.Figure(f"cluster {load_name(route, close)}: direct node, 1 process", "k req/s", rps[direct][ld]))
    if "tend" in kinds:
        for ld in LOADS:
            route, _, close = ld
            ratio = [p / r for p, r in zip(rps[("tend", "proxy")][ld], rps[("tend", "reuseport")][ld])]
            figs.append(bl.Figure(f"cluster proxy cost, {load_name(route, close)}: proxy/reuseport", "×", ratio))
    for s in spread:
        if s[0] == "tend":
            figs.append(compare(f"cluster spread, {setup_label(s)}: busiest/idlest instance", "×",
                                spread[s], get(spread, pm2), better="lower"))
    if "tend" not in kinds:
        figs.append(bl.Figure("cluster spread, pm2 cluster: busiest/idlest instance", "×", spread[pm2]))
    bad = {setup_label(s): n for s, n in errs.items() if n}
    if bad:
        bl.say(f"failed requests during the throughput runs: {bad}")


# ---------------------------------------------------------------------------
# 6, 7: reload and restart under load.

def under_load(bench, m, port, op, close, secs, ops, tail):
    """ops `op web` evenly spread over secs of wrk -c32 load; the counted
    wrk result, plus the window and the commands' durations."""
    w = Wrk(bench, port, "/", secs + 300, 32, close, count=True)
    t0 = w.t0
    took, failed_ops = [], 0
    last_end = t0
    try:
        for k in range(1, ops + 1):
            at = t0 + secs * k / (ops + 1)
            time.sleep(max(0.0, at - time.monotonic()))
            s = time.monotonic()
            p = m.cli(op, NAME, check=False)
            last_end = time.monotonic()
            took.append(last_end - s)
            if p.returncode != 0:
                failed_ops += 1
                bl.say(f"  {m.kind} {op} {NAME} failed ({p.returncode}): {p.stderr.strip()[-300:]}")
        end = max(t0 + secs, last_end + tail)
        time.sleep(max(0.0, end - time.monotonic()))
    finally:
        w.stop()
    r = w.result(timeout=60)
    r["window"] = (t0, end)
    r["took"] = took
    r["failed_ops"] = failed_ops
    return r


def reload_restart(bench, args, figs, kinds):
    secs = 5 if args.quick else 20
    ops = 2 if args.quick else 5
    tail = 1 if args.quick else 2
    res = {(op, c): {"tend": [], "pm2": []} for op in ("reload", "restart") for c in (False, True)}
    for rep in range(args.reps):
        for m in managers(bench, rep, kinds):
            bl.say(f"cluster reload/restart: repetition {rep + 1}/{args.reps}, {m.kind}")
            port = free_port()
            pids = start_app(m, port, 2)
            for op in ("reload", "restart"):
                for close in (False, True):
                    time.sleep(1)
                    r = under_load(bench, m, port, op, close, secs, ops, tail)
                    new = wait_ready(m, 2, port)
                    gap, empty, persec = gaps(r, r["window"][0], r["window"][1])
                    r.update(gap=gap, empty=empty, replaced=not set(new) & set(pids))
                    pids = new
                    res[(op, close)][m.kind].append(r)
                    bl.say(f"  {ops}× {op}, {conn_name(close)}: {r['failed']} failed ({errors_text(r)}), "
                           f"{r['ok']} ok, longest gap {gap * 1000:.0f} ms, {empty} s without success, "
                           f"{op} took {', '.join(f'{t:.2f}' for t in r['took'])} s"
                           + ("" if r["replaced"] else "; SOME PIDS NOT REPLACED"))
                    bl.say(f"    successes per second: {' '.join(str(n) for n in persec)}")
            bench.finish(m)

    for op in ("reload", "restart"):
        for close in (False, True):
            rs = res[(op, close)]
            t, p = rs["tend"], rs["pm2"]
            extra = []
            if any(r["failed_ops"] for r in t + p):
                extra.append(f"{op} commands failed: tend {sum(r['failed_ops'] for r in t)}, "
                             f"pm2 {sum(r['failed_ops'] for r in p)}")
            if not all(r["replaced"] for r in t + p):
                extra.append(f"pids not all replaced: tend {sum(not r['replaced'] for r in t)}, "
                             f"pm2 {sum(not r['replaced'] for r in p)} windows")
            took = f"{op} took " + ", ".join(f"{k} {med([x for r in v for x in r['took']]):.2f} s"
                                             for k, v in (("tend", t), ("pm2", p)) if v)
            worst = max(t or p, key=lambda r: r["failed"])
            n = f"{ops} {op}s in {secs} s, wrk -c32; {took}; {'tend' if t else 'pm2'}'s worst: {errors_text(worst)}"
            base = f"cluster {op} under load, {conn_name(close)}"
            if op == "reload":
                figs.append(compare(f"{base}: failed requests", "", [r["failed"] for r in t], [r["failed"] for r in p],
                                      better="zero", goal=0, note="; ".join([n] + extra)))
                figs.append(compare(f"{base}: longest gap without a success", "ms",
                                      [r["gap"] * 1000 for r in t], [r["gap"] * 1000 for r in p]))
            else:
                figs.append(compare(f"{base}: failed requests", "", [r["failed"] for r in t], [r["failed"] for r in p],
                                      better="lower", goal=1, note="; ".join([n] + extra)))
                figs.append(compare(f"{base}: seconds without a success", "s", [r["empty"] for r in t],
                                      [r["empty"] for r in p], better="zero", goal=0))
                figs.append(compare(f"{base}: longest gap without a success", "ms",
                                      [r["gap"] * 1000 for r in t], [r["gap"] * 1000 for r in p]))


# ---------------------------------------------------------------------------
# 8: crash to ready.

def direct_start(bench, runs):
    """Seconds from spawning `node cluster.js` to its first answer."""
    out = []
    for _ in range(runs):
        port = free_port()
        d = Direct(bench)
        t0 = time.monotonic()
        d.start(port)
        try:
            out.append(poll_until_answer(port, t0)[0])
        finally:
            d.stop()
        time.sleep(0.2)
    return out


def crash(bench, args, figs, kinds):
    kills = 2 if args.quick else 7
    start = []
    beyond = {"tend": [], "pm2": []}
    raw = {"tend": [], "pm2": []}
    refused = {"tend": [], "pm2": []}
    failed = {"tend": [], "pm2": []}
    span = {"tend": [], "pm2": []}
    for rep in range(args.reps):
        bl.say(f"cluster crash to ready: repetition {rep + 1}/{args.reps}")
        for m in managers(bench, rep, kinds):
            port = free_port()
            pid = start_app(m, port, 1)[0]
            times, starts, refs, fails, spans = [], [], 0, 0, []
            for k in range(kills):
                # The app's own start time, measured next to each crash (this VM drifts).
                starts.append(direct_start(bench, 1)[0])
                time.sleep(1.2)  # past the minimum uptime of a stable run (1 s for both)
                t0 = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                dt, ref, fail, fr, lr = poll_until_answer(port, t0, not_pid=pid)
                times.append(dt)
                refs += ref
                fails += fail
                spans.append((lr - fr) if fr is not None else 0)
                pid = wait_ready(m, 1, port, old=(pid,))[0]
            bl.say(f"  {m.kind}: kill to answer {', '.join(f'{t * 1000:.1f}' for t in times)} ms; "
                   f"node alone {', '.join(f'{t * 1000:.1f}' for t in starts)} ms; {refs} refused, {fails} failed")
            raw[m.kind].append(statistics.median(times) * 1000)
            start.append(statistics.median(starts) * 1000)
            beyond[m.kind].append(statistics.median(t - s for t, s in zip(times, starts)) * 1000)
            refused[m.kind].append(refs)
            failed[m.kind].append(fails)
            span[m.kind].append(max(spans) * 1000)
            bench.finish(m)
    figs.append(compare("crash to ready, beyond the app's own start", "ms", beyond["tend"], beyond["pm2"],
                          better="max", goal=GOAL_CRASH_MS,
                          note=f"per repetition: median over {kills} kill -9 of (kill to answer - "
                               f"node alone, spawn to answer, measured just before)"))
    figs.append(compare("crash to ready, kill to first answer", "ms", raw["tend"], raw["pm2"]))
    figs.append(compare(f"crash: refused connections ({kills} crashes)", "", refused["tend"], refused["pm2"],
                          better="zero", goal=0,
                          note="polling every 1 ms; longest refusing span: " + ", ".join(
                              f"{k} {max(span[k]):.1f} ms" for k in kinds) + "; other failures: " + ", ".join(
                              f"{k} {sum(failed[k])}" for k in kinds)))
    figs.append(bl.Figure("crash: node cluster.js alone, spawn to first answer", "ms", start))


# ---------------------------------------------------------------------------

def check_tools():
    if not shutil.which("wrk"):
        raise bl.BenchError("wrk is not on PATH (Debian: apt-get install wrk)")
    if not shutil.which("node"):
        raise bl.BenchError("node is not on PATH")


def tend_has_cluster(bench):
    p = subprocess.run([bench.tend_bin, "start", "--help"], capture_output=True, text=True, timeout=60)
    return "--balance" in p.stdout + p.stderr


def run(bench, args, parts=("throughput", "reload", "crash"), kinds=("tend", "pm2")):
    check_tools()
    parts = getattr(args, "parts", None) or parts
    kinds = getattr(args, "kinds", None) or kinds
    if "tend" in kinds and not tend_has_cluster(bench):
        bl.say("this tend has no cluster mode (`tend start --help` does not mention --balance): measuring pm2 only")
        kinds = tuple(k for k in kinds if k != "tend")
    figs = []
    if "throughput" in parts:
        throughput(bench, args, figs, kinds)
    if "reload" in parts:
        reload_restart(bench, args, figs, kinds)
    if "crash" in parts:
        crash(bench, args, figs, kinds)
    return figs


def add_args(ap):
    ap.add_argument("--parts", type=lambda v: v.split(","), metavar="LIST",
                    help="comma-separated, of: throughput, reload (6 and 7), crash (default: all)")
    ap.add_argument("--kinds", type=lambda v: v.split(","), metavar="LIST",
                    help="managers to measure, of: tend, pm2 (default: both)")


if __name__ == "__main__":
    raise SystemExit(bl.standalone("Cluster mode (2 instances; crash: fork mode)", __doc__, run, add_args))
