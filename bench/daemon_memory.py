#!/usr/bin/env python3
"""Daemon memory: RSS of the daemon process (VmRSS of /proc/PID/status)
with 0, 10 and 50 managed processes.

Per repetition and manager: a fresh home; the daemon is started with no app
and measured; 10 apps are started from a JSON ecosystem file and measured;
40 more, and measured again. Each measurement waits for the apps to be
online, lets the daemon settle for a few seconds, then takes the median of
5 readings 0.5 s apart. The managers take turns (one daemon at a time) and
alternate which goes first.

Two kinds of app: `sleep`, a bash loop that sleeps (bench/apps/idle.sh),
and `node`, an idle Node script (bench/apps/idle.js).
The daemon pid comes from $TEND_HOME/daemon.pid and $PM2_HOME/pm2.pid.
"""

import statistics
import time

import benchlib as bl

GOAL = 4  # tend's daemon ≤ 1/4 of pm2's
COUNTS = (0, 10, 50)
SCRIPTS = {"sleep": "idle.sh", "node": "idle.js"}


def rss_mb(m, settle):
    time.sleep(settle)
    pid = m.daemon_pid()
    samples = []
    for _ in range(5):
        samples.append(bl.vm_rss_kb(pid) / 1024)
        time.sleep(0.5)
    return statistics.median(samples)


def run(bench, args, kinds=("sleep", "node")):
    settle = 1.0 if args.quick else 3.0
    res = {(k, n): {"tend": [], "pm2": []} for k in kinds for n in COUNTS}
    for kind in kinds:
        script = f"{bl.APPS}/{SCRIPTS[kind]}"
        for rep in range(args.reps):
            bl.say(f"memory ({kind}): repetition {rep + 1}/{args.reps}")
            for m in bench.pair(rep):
                m.start_daemon()
                have = 0
                for n in COUNTS:
                    if n > have:
                        m.start_apps([{"name": f"idle{i}", "script": script} for i in range(have, n)])
                        m.wait_online(n)
                        have = n
                    mb = rss_mb(m, settle)
                    if m.online() != n:
                        raise bl.BenchError(f"{m.kind}: {m.online()} apps online, want {n}")
                    res[(kind, n)][m.kind].append(mb)
                    bl.say(f"memory {kind} {n}: {m.kind} {mb:.1f} MB")
                bench.finish(m)
    return [bl.Figure(f"memory {n} {kind} apps", "MB", res[(kind, n)]["tend"], res[(kind, n)]["pm2"], goal=GOAL)
            for kind in kinds for n in COUNTS]


if __name__ == "__main__":
    raise SystemExit(bl.standalone("Daemon memory (VmRSS)", __doc__, run))
