#!/usr/bin/env python3
"""CLI latency: `ls`, `ls --json` (pm2: `jlist`) and `describe <app>`, with
2 idle apps running under each manager.

Per repetition, both daemons run side by side with the same 2 apps; each
command gets 3 warm-up runs per manager, then 20 timed runs where tend and
pm2 alternate (who goes first alternates too). A repetition's figure is the
median of its runs; the summary gives the median of the repetitions with
their min..max.

Floors, measured in the same repetitions: a static hello-world Go binary's
exec time (what any Go CLI costs), `tend --version` (tend's own start-up,
no socket), a raw round trip on tend's socket (GET /v1/ping from this
process: no exec), `curl --unix-socket ... /v1/ping` if curl exists, and
`node -e 0` (the floor under any pm2 command).
"""

import shutil
import statistics
import time

import benchlib as bl

GOAL = 50  # tend ≤ 1/50 of pm2's time


def run(bench, args):
    runs = 5 if args.quick else 20
    warm = 3
    hello = bench.go_build("./bench/apps/hello", "hello")
    node = shutil.which("node")
    curl = shutil.which("curl")
    if not curl:
        bl.say("curl not found: the socket floor is measured only from Python")
    idle = f"{bl.APPS}/idle.sh"
    cmds = [("ls", ["ls"], ["ls"]),
            ("ls --json", ["ls", "--json"], ["jlist"]),
            ("describe", ["describe", "app0"], ["describe", "app0"])]
    per = {name: {"tend": [], "pm2": []} for name, _, _ in cmds}
    floors = {"hello": [], "version": [], "sock": [], "curl": [], "node": []}

    for rep in range(args.reps):
        bl.say(f"cli: repetition {rep + 1}/{args.reps}")
        pair = bench.pair(rep)
        for m in pair:
            m.start_daemon()
            m.start_apps([{"name": f"app{i}", "script": idle} for i in range(2)])
            m.wait_online(2)
        t = next(m for m in pair if m.kind == "tend")
        for name, targs, pargs in cmds:
            argv = {"tend": t.argv(*targs), "pm2": next(m for m in pair if m.kind == "pm2").argv(*pargs)}
            env = {m.kind: m.env for m in pair}
            for m in pair:
                bl.time_exec(argv[m.kind], env[m.kind], warm)
            times = {"tend": [], "pm2": []}
            for i in range(runs):
                order = pair if i % 2 == 0 else pair[::-1]
                for m in order:
                    times[m.kind] += bl.time_exec(argv[m.kind], env[m.kind], 1)
            for k in times:
                per[name][k].append(statistics.median(times[k]) * 1000)
            bl.say(f"cli {name}: tend {per[name]['tend'][-1]:.2f} ms, pm2 {per[name]['pm2'][-1]:.1f} ms")

        # Floors, with the same daemons up.
        bl.time_exec([hello], t.env, warm)
        floors["hello"].append(statistics.median(bl.time_exec([hello], t.env, runs)) * 1000)
        floors["version"].append(statistics.median(bl.time_exec(t.argv("--version"), t.env, runs)) * 1000)
        sock = t.socket_path()
        rt = []
        for i in range(warm + 10 * runs):
            t0 = time.perf_counter_ns()
            status = bl.unix_http_get(sock, "/v1/ping")
            rt.append((time.perf_counter_ns() - t0) / 1e6)
            if " 200 " not in status + " ":
                raise bl.BenchError(f"GET /v1/ping on {sock}: {status}")
        floors["sock"].append(statistics.median(rt[warm:]))
        if curl:
            argv = [curl, "-fsS", "--unix-socket", sock, "http://x/v1/ping"]
            bl.time_exec(argv, t.env, warm)
            floors["curl"].append(statistics.median(bl.time_exec(argv, t.env, runs)) * 1000)
        if node:
            floors["node"].append(statistics.median(bl.time_exec([node, "-e", "0"], t.env, runs)) * 1000)
        for m in pair:
            bench.finish(m)

    figs = [bl.Figure(f"cli {name}", "ms", per[name]["tend"], per[name]["pm2"], goal=GOAL) for name, _, _ in cmds]
    figs.append(bl.Figure("floor: static Go hello-world exec", "ms", floors["hello"]))
    figs.append(bl.Figure("floor: tend --version (start-up, no socket)", "ms", floors["version"]))
    figs.append(bl.Figure("floor: GET /v1/ping on tend's socket, in-process", "ms", floors["sock"]))
    if floors["curl"]:
        figs.append(bl.Figure("floor: curl --unix-socket /v1/ping exec", "ms", floors["curl"]))
    if floors["node"]:
        figs.append(bl.Figure("pm2's floor: node -e 0", "ms", floors["node"]))
    return figs


if __name__ == "__main__":
    raise SystemExit(bl.standalone("CLI latency (2 apps running)", __doc__, run))
