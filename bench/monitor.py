#!/usr/bin/env python3
"""Monitoring: what tend's sampler costs, what `monit` costs while open,
and how fast a memory limit is acted on, against pm2.

sampler  200 idle apps under tend alone (bash `sleep` loops: 400
         processes): the daemon's CPU over a window while nobody watches,
         then while watched (a GET /v1/monitor every 5 s keeps the sampler
         at full detail), with the sampler's own time from /metrics
         (tend_sampler_seconds_total). pm2 has no sampler to compare.
monit    10 idle apps; `tend monit` and `pm2 monit` each run in a tmux
         window of 120x40 for the window; the figure is the CPU of the
         monit process (utime+stime from /proc), and of its daemon.
limit    one node app with max_memory_restart 100M that allocates 300 MiB
         2 s after it starts (bench/apps/leak.js); the figure is the time
         from its allocation (its own clock, in a file) until its process
         is gone. pm2 checks memory every 30 s (its worker interval).
"""

import os
import shutil
import statistics
import subprocess
import time
import urllib.parse

import benchlib as bl

PARTS = ("sampler", "monit", "limit")


def add_args(ap):
    ap.add_argument("--parts", default=",".join(PARTS), help=f"which parts: {','.join(PARTS)}")


def ns(pid):
    return bl.cpu_ns(pid)


def sampler_seconds(t):
    text = bl.unix_http_body(t.socket_path(), "/metrics")
    for line in text.splitlines():
        if line.startswith("tend_sampler_seconds_total "):
            return float(line.split()[1])
    raise bl.BenchError("no tend_sampler_seconds_total in /metrics")


def part_sampler(bench, args):
    n = 50 if args.quick else 200
    window = 10.0 if args.quick else 30.0
    idle, watched, own_watched = [], [], []
    for rep in range(args.reps):
        bl.say(f"sampler: repetition {rep + 1}/{args.reps}, {n} apps")
        t = bench.tend()
        t.start_daemon()
        t.start_apps([{"name": f"idle{i}", "script": f"{bl.APPS}/idle.sh"} for i in range(n)], timeout=600)
        t.wait_online(n, timeout=600)
        pid = t.daemon_pid()
        time.sleep(20 if not args.quick else 5)  # quiet processes back off
        # Unwatched: nothing may GET /metrics or /v1/monitor before or
        # during the window (either keeps the sampler at full detail for
        # 15 s); `tend ls` (the online check) does not count as watching.
        c0, w0 = ns(pid), time.monotonic()
        time.sleep(window)
        c1, w1 = ns(pid), time.monotonic()
        idle.append((c1 - c0) / 1e9 / (w1 - w0) * 100)
        # Watched: the first scrape starts it; a GET /v1/monitor every 5 s
        # keeps it so, as an open monit or a scraper does.
        s0, c0, w0 = sampler_seconds(t), ns(pid), time.monotonic()
        while time.monotonic() - w0 < window:
            bl.unix_http_body(t.socket_path(), "/v1/monitor")
            time.sleep(5)
        c1, w1 = ns(pid), time.monotonic()
        s1 = sampler_seconds(t)
        watched.append((c1 - c0) / 1e9 / (w1 - w0) * 100)
        own_watched.append((s1 - s0) / (w1 - w0) * 100)
        if t.online() != n:
            raise bl.BenchError(f"tend: {t.online()} apps online after the windows, want {n}")
        bl.say(f"sampler {n}: daemon {idle[-1]:.4f}% unwatched, {watched[-1]:.4f}% watched "
               f"(passes {own_watched[-1]:.4f}%)")
        bench.finish(t)
    return [
        bl.Figure(f"sampler, {n} idle apps ({2 * n} processes), daemon CPU, nobody watching", "% of a core", idle),
        bl.Figure(f"sampler, {n} idle apps, daemon CPU, watched (GET /v1/monitor every 5 s)", "% of a core", watched),
        bl.Figure(f"sampler, {n} idle apps, watched: the passes alone (tend_sampler_seconds_total)", "% of a core", own_watched),
    ]


def tmux_run(name, argv, env, seconds):
    """Runs argv in a detached tmux window of 120x40 for seconds; returns
    the CPU (% of a core) of the program, measured over the window."""
    sock = f"tb{os.getpid()}"
    cmd = ["tmux", "-L", sock, "new-session", "-d", "-s", name, "-x", "120", "-y", "40",
           " ".join(map(shlex_quote, ["env"] + [f"{k}={v}" for k, v in env.items() if k in KEEP_ENV] + argv))]
    subprocess.run(cmd, check=True)
    try:
        out = subprocess.run(["tmux", "-L", sock, "list-panes", "-t", name, "-F", "#{pane_pid}"],
                             capture_output=True, text=True, check=True).stdout
        pid = int(out.split()[0])
        time.sleep(3)  # start-up and first frames
        c0, w0 = ns(pid), time.monotonic()
        time.sleep(seconds)
        c1, w1 = ns(pid), time.monotonic()
        return (c1 - c0) / 1e9 / (w1 - w0) * 100
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


KEEP_ENV = ("TEND_HOME", "PM2_HOME", "PATH", "HOME", "TERM", "TENDBENCH")


def shlex_quote(s):
    import shlex
    return shlex.quote(s)


def part_monit(bench, args):
    if not shutil.which("tmux"):
        bl.say("monit: tmux not found (apt-get install tmux); skipped")
        return []
    window = 10.0 if args.quick else 30.0
    prog = {"tend": [], "pm2": []}
    daemon = {"tend": [], "pm2": []}
    for rep in range(args.reps):
        bl.say(f"monit: repetition {rep + 1}/{args.reps}")
        for m in bench.pair(rep):
            m.start_daemon()
            m.start_apps([{"name": f"idle{i}", "script": f"{bl.APPS}/idle.sh"} for i in range(10)])
            m.wait_online(10)
            env = dict(m.env, TERM="xterm-256color")
            pid = m.daemon_pid()
            c0, w0 = ns(pid), time.monotonic()
            prog[m.kind].append(tmux_run(f"monit{m.kind}", m.argv("monit"), env, window))
            c1, w1 = ns(pid), time.monotonic()
            daemon[m.kind].append((c1 - c0) / 1e9 / (w1 - w0) * 100)
            bl.say(f"monit: {m.kind} monit {prog[m.kind][-1]:.3f}%, daemon {daemon[m.kind][-1]:.3f}%")
            bench.finish(m)
    return [
        bl.Figure(f"monit open, 10 apps, {window:.0f} s: the monit process", "% of a core", prog["tend"], prog["pm2"]),
        bl.Figure(f"monit open, 10 apps, {window:.0f} s: its daemon meanwhile", "% of a core", daemon["tend"], daemon["pm2"]),
    ]


def gone(pid):
    return not bl.alive(pid)


def part_limit(bench, args):
    if not shutil.which("node"):
        bl.say("limit: node not found; skipped")
        return []
    react = {"tend": [], "pm2": []}
    for rep in range(args.reps):
        bl.say(f"limit: repetition {rep + 1}/{args.reps}")
        for m in bench.pair(rep):
            m.start_daemon()
            leak_file = os.path.join(m.home, "leak.txt")
            m.env["LEAK_FILE"] = leak_file
            m.start_apps([{"name": "leak", "script": f"{bl.APPS}/leak.js", "max_memory_restart": "100M"}])
            line = bl.wait_until(lambda: open(leak_file).read().split("\n")[0] if os.path.exists(leak_file) else None,
                                 60, "the app to allocate")
            pid, at_ms = map(int, line.split())
            bl.wait_until(lambda: gone(pid), 120, f"{m.kind} to act on the limit", step=0.01)
            react[m.kind].append(time.time() * 1000 - at_ms)
            bl.say(f"limit: {m.kind} acted after {react[m.kind][-1]:.0f} ms")
            del m.env["LEAK_FILE"]
            bench.finish(m)
    return [bl.Figure("memory limit: from the breach to the process gone", "ms", react["tend"], react["pm2"], goal=10,
                      note="pm2 checks every 30 s; tend at every sample (1 s)")]


def run(bench, args):
    parts = getattr(args, "parts", ",".join(PARTS)).split(",")
    figs = []
    if "sampler" in parts:
        figs += part_sampler(bench, args)
    if "monit" in parts:
        figs += part_monit(bench, args)
    if "limit" in parts:
        figs += part_limit(bench, args)
    return figs


if __name__ == "__main__":
    raise SystemExit(bl.standalone("Monitoring: sampler, monit, memory limit", __doc__, run, add_args))
