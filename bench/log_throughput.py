#!/usr/bin/env python3
"""Log throughput: an app prints numbered 100-byte lines on stdout as fast
as it can for 5 s; how many lines per second reach the log file, and how
many are lost.

Apps (both write one line per write and exit by themselves after 5 s,
leaving {"lines": n, "start_ms", "end_ms"} in a result file):
  node  bench/apps/logspam.js: process.stdout.write, waiting for 'drain'
        when write() returns false (backpressure);
  go    bench/apps/logwriter: one write(2) per line, no buffering.

Per repetition and app, in this order:
  /dev/null    the app alone, stdout on /dev/null (its own top speed);
  cat > file   the app piped into `cat > file` (the ceiling for a manager
               that reads a pipe and writes a file);
  tend, pm2    the app started with --no-autorestart (alternating which
               goes first), log file $HOME/logs/<name>-out.log.

Lines per second = distinct lines found in the log / (time of the last
write to the log file - the app's start): lines still queued in the manager
when the app exits count, but so does the time they took.
Lost = lines the app wrote - distinct lines found (missing sequence
numbers); malformed and duplicate lines are reported in the note.

tend rotates logs by default (10 MiB, gzip): the live file and every
rotated file (<name>-out__*.log and .log.gz) are read back, once the files
stop changing. tend runs with --log-retain 1000 so that its default of 10
kept files does not delete lines (5 s of logs are ~40 rotations); size and
compression stay at their defaults. pm2 does not rotate.
"""

import gzip
import json
import os
import shutil
import statistics
import subprocess
import time

import benchlib as bl

GOAL = 2  # tend ≥ 2× pm2's lines/s, 0 lost
NAME = "spam"


def count_lines(files, written):
    """Distinct, duplicate and malformed lines in files (gzip or plain)."""
    seen = bytearray(written)
    distinct = dup = bad = 0
    for path in files:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            rest = b""
            while True:
                chunk = f.read(16 << 20)
                if not chunk:
                    break
                data = rest + chunk
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                lines = data[:cut].split(b"\n")
                lines.pop()
                for ln in lines:
                    if len(ln) != 99 or ln[0] != 76:  # "L"
                        bad += 1
                        continue
                    try:
                        i = int(ln[1:11])
                    except ValueError:
                        bad += 1
                        continue
                    if i >= written:
                        bad += 1
                    elif seen[i]:
                        dup += 1
                    else:
                        seen[i] = 1
                        distinct += 1
            if rest:
                bad += 1
    return distinct, dup, bad


def log_files(live):
    """The live file and its rotated files (plain name wins over .gz while a
    file is being compressed: the plain one is complete)."""
    d, base = os.path.split(live)
    stem = base[:-len(".log")]
    rotated = {}
    for n in os.listdir(d):
        if n.startswith(stem + "__") and (n.endswith(".log") or n.endswith(".log.gz")):
            key = n[:-3] if n.endswith(".gz") else n
            if key not in rotated or n == key:
                rotated[key] = os.path.join(d, n)
    return [rotated[k] for k in sorted(rotated)] + [live]


def wait_files_settled(live, timeout=120):
    """Wait until the log files stop changing (the manager has written what
    it held, rotated files are compressed)."""
    d = os.path.dirname(live)
    stem = os.path.basename(live)[:-len(".log")]
    prev, since = None, time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline:
        names = [n for n in os.listdir(d) if n.startswith(stem)]
        snap = sorted((n, os.stat(os.path.join(d, n)).st_size) for n in names
                      if os.path.exists(os.path.join(d, n)))
        compressing = any(n + ".gz" in names for n in names)
        if snap != prev or compressing:
            prev, since = snap, time.monotonic()
        elif time.monotonic() - since >= 1.5:
            return True
        time.sleep(0.25)
    bl.say(f"log files under {d} still changing after {timeout} s; counting what is there")
    return False


def read_result(path, timeout):
    bl.wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > 0, timeout, f"result file {path}")
    time.sleep(0.05)
    with open(path) as f:
        return json.load(f)


class Sample:
    def __init__(self, res, files, live):
        self.written = res["lines"]
        start, end = res["start_ms"] / 1000, res["end_ms"] / 1000
        last = max(end, os.stat(live).st_mtime)
        self.distinct, self.dup, self.bad = count_lines(files, self.written)
        self.lost = self.written - self.distinct
        self.rate = self.distinct / (last - start)  # lines/s reaching the file
        self.app_rate = self.written / (end - start)  # lines/s the app managed to write
        self.lag = last - end
        self.files = len(files)

    def __str__(self):
        return (f"{self.rate / 1000:.0f} k lines/s to the file, app wrote {self.app_rate / 1000:.0f} k/s, "
                f"{self.lost} lost, {self.dup} dup, {self.bad} malformed, {self.files} files, "
                f"last write {self.lag:.2f} s after the app's end")


def run(bench, args, writers=("node", "go")):
    secs = 2 if args.quick else 5
    node = shutil.which("node")
    apps = {"node": [node, f"{bl.APPS}/logspam.js"],
            "go": [bench.go_build("./bench/apps/logwriter", "logwriter")]}
    rates = {w: {"tend": [], "pm2": [], "cat": [], "null": []} for w in writers}
    lost = {w: {"tend": [], "pm2": [], "cat": []} for w in writers}
    notes = {w: {"tend": [], "pm2": []} for w in writers}
    for w in writers:
        app = apps[w]
        for rep in range(args.reps):
            bl.say(f"logs ({w}): repetition {rep + 1}/{args.reps}")
            d = os.path.join(bench.work, f"direct-{w}-{rep}")
            os.makedirs(d)
            env = dict(os.environ, TENDBENCH=bench.work)
            # The app alone, on /dev/null.
            res = os.path.join(d, "null.json")
            subprocess.run(app + [str(secs), res], stdout=subprocess.DEVNULL, env=env, timeout=secs + 60, check=True)
            r = read_result(res, 5)
            rates[w]["null"].append(r["lines"] / ((r["end_ms"] - r["start_ms"]) / 1000))
            # The ceiling: the app piped into cat > file.
            res, out = os.path.join(d, "cat.json"), os.path.join(d, "cat.log")
            subprocess.run(["bash", "-c", 'out=$1; shift; "$@" | cat > "$out"', "bash", out] + app + [str(secs), res],
                           env=env, timeout=secs + 60, check=True)
            s = Sample(read_result(res, 5), [out], out)
            rates[w]["cat"].append(s.rate)
            lost[w]["cat"].append(s.lost)
            bl.say(f"logs {w} cat > file: {s}")
            shutil.rmtree(d, ignore_errors=True)
            # The managers.
            for m in bench.pair(rep):
                m.start_daemon()
                res = os.path.join(m.home, "result.json")
                extra = ["--log-retain", "1000"] if m.kind == "tend" else []
                if w == "go" and m.kind == "pm2":
                    extra = ["--interpreter", "none"]
                script = app[-1] if w == "node" else app[0]
                m.cli("start", script, "--name", NAME, "--no-autorestart", *extra, "--", str(secs), res)
                live = m.out_log(NAME)
                r = read_result(res, secs + 60)
                wait_files_settled(live)
                s = Sample(r, log_files(live), live)
                rates[w][m.kind].append(s.rate)
                lost[w][m.kind].append(s.lost)
                notes[w][m.kind].append(s)
                bl.say(f"logs {w} {m.kind}: {s}")
                bench.finish(m)
    figs = []
    k = 1000
    for w in writers:
        tn = notes[w]["tend"]
        note = (f"app wrote: tend {statistics.median(x.app_rate for x in tn) / k:.0f} k/s, "
                f"pm2 {statistics.median(x.app_rate for x in notes[w]['pm2']) / k:.0f} k/s; "
                f"tend files {max(x.files for x in tn)}, malformed {max(x.bad for x in tn)}, dup {max(x.dup for x in tn)}")
        figs.append(bl.Figure(f"logs {w}", "k lines/s", [x / k for x in rates[w]["tend"]],
                              [x / k for x in rates[w]["pm2"]], better="higher", goal=GOAL, note=note))
        figs.append(bl.Figure(f"logs {w} lost", "lines", lost[w]["tend"], lost[w]["pm2"], better="zero", goal=0))
        figs.append(bl.Figure(f"logs {w} ceiling: app | cat > file", "k lines/s", [x / k for x in rates[w]["cat"]],
                              note=f"lost {max(lost[w]['cat'])}; "
                                   f"tend reaches {statistics.median(rates[w]['tend']) / statistics.median(rates[w]['cat']):.2f}× of it"))
        figs.append(bl.Figure(f"logs {w} app alone > /dev/null", "k lines/s", [x / k for x in rates[w]["null"]]))
    return figs


if __name__ == "__main__":
    raise SystemExit(bl.standalone("Log throughput (100-byte lines, 5 s)", __doc__, run))
