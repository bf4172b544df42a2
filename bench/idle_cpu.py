#!/usr/bin/env python3
"""Daemon idle CPU: the CPU the daemon uses while 50 idle apps run.

Per repetition and manager: a fresh home, 50 apps started from a JSON
ecosystem file, a settle time once they are all online, then a 30 s window.
The figure is the daemon's utime+stime delta from /proc/PID/stat over the
window, as % of one core. Its resolution is one clock tick (10 ms, 0.033% of
a core over 30 s), so the same window is also measured from the threads'
/proc/PID/task/*/schedstat (nanoseconds) and shown in the note. The apps
must all still be online at the end of the window (no restart loop).

Two kinds of app: `node`, an idle Node script (setInterval(() => {}, 1000),
bench/apps/idle.js), and `sleep`, a bash loop that sleeps (bench/apps/idle.sh).
"""

import statistics
import time

import benchlib as bl

GOAL = 10  # tend's daemon ≤ 1/10 of pm2's CPU
APPS = 50
SCRIPTS = {"node": "idle.js", "sleep": "idle.sh"}


def run(bench, args, kinds=("node", "sleep")):
    window = 5.0 if args.quick else 30.0
    settle = 2.0 if args.quick else 5.0
    ticks = {k: {"tend": [], "pm2": []} for k in kinds}
    fine = {k: {"tend": [], "pm2": []} for k in kinds}
    for kind in kinds:
        script = f"{bl.APPS}/{SCRIPTS[kind]}"
        for rep in range(args.reps):
            bl.say(f"cpu ({kind}): repetition {rep + 1}/{args.reps}")
            for m in bench.pair(rep):
                m.start_daemon()
                m.start_apps([{"name": f"idle{i}", "script": script} for i in range(APPS)])
                m.wait_online(APPS)
                time.sleep(settle)
                pid = m.daemon_pid()
                t0, n0, w0 = bl.cpu_ticks(pid), bl.cpu_ns(pid), time.monotonic()
                time.sleep(window)
                t1, n1, w1 = bl.cpu_ticks(pid), bl.cpu_ns(pid), time.monotonic()
                if m.online() != APPS:
                    raise bl.BenchError(f"{m.kind}: {m.online()} apps online after the window, want {APPS}")
                pct = (t1 - t0) / bl.CLK_TCK / (w1 - w0) * 100
                pct_ns = (n1 - n0) / 1e9 / (w1 - w0) * 100
                ticks[kind][m.kind].append(pct)
                fine[kind][m.kind].append(pct_ns)
                bl.say(f"cpu {kind}: {m.kind} {pct:.3f}% ({t1 - t0} ticks), schedstat {pct_ns:.4f}%")
                bench.finish(m)
    figs = []
    for kind in kinds:
        ft, fp = statistics.median(fine[kind]["tend"]), statistics.median(fine[kind]["pm2"])
        note = (f"schedstat: tend {bl.fmt_num(ft)}%, pm2 {bl.fmt_num(fp)}%, "
                f"pm2/tend = {bl.fmt_num(fp / ft) if ft else '∞' if fp else 'n/a'}")
        figs.append(bl.Figure(f"cpu {APPS} {kind} apps, {window:.0f} s", "% of a core",
                              ticks[kind]["tend"], ticks[kind]["pm2"], goal=GOAL, note=note))
    return figs


if __name__ == "__main__":
    raise SystemExit(bl.standalone("Daemon idle CPU", __doc__, run))
