"""Shared parts of tend's side-by-side benchmarks against pm2.

A Bench owns one temporary work directory (short, under /tmp: unix socket
paths must stay under 108 bytes), builds tend from the repository into it,
finds or installs pm2, and hands out Managers: a tend or a pm2 with its own
fresh home directory. Everything a Manager starts carries the environment
variable TENDBENCH=<work dir>; at the end, and on error or Ctrl-C, every
manager is told to kill itself (`tend kill`, `pm2 kill`), then any process
left over that carries the marker, or that was recorded as a daemon or
child, is killed by pid.

Figures are collected as Figure objects; each prints one summary line:

  cli ls: tend 1.9 ms [1.8..2.1], pm2 212 ms [205..230] → pm2/tend = 111 (goal ≥ 50) OK

Progress goes to stderr, summary lines to stdout. Python 3 stdlib only.
"""

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
APPS = os.path.join(BENCH_DIR, "apps")
PM2_PREFIX = os.environ.get("PM2_PREFIX", "/tmp/pm2bench")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(msg):
    """Progress, on stderr so that stdout holds only the summary."""
    print("  · " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------
# Processes: /proc readers and clean-up by pid.

def proc_stat(pid):
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()


def alive(pid):
    """True if pid exists and is not a zombie (this VM's PID 1 is slow to
    reap orphans, so kill -0 is not enough)."""
    try:
        return proc_stat(pid)[0] != "Z"
    except (OSError, ValueError, IndexError):
        return False


def start_time(pid):
    try:
        return int(proc_stat(pid)[19])
    except (OSError, ValueError, IndexError):
        return None


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def cpu_ticks(pid):
    """utime + stime of the whole process, in clock ticks."""
    st = proc_stat(pid)
    return int(st[11]) + int(st[12])


def cpu_ns(pid):
    """CPU time of all the process's threads in ns, from schedstat: finer
    than the 10 ms ticks of /proc/PID/stat (threads that exit are lost, so
    it is a lower bound; a daemon's threads live on)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                kids.setdefault(int(proc_stat(d)[1]), []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def descendants(pid):
    kids, out, todo = children_map(), [], [pid]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            out.append(k)
            todo.append(k)
    return out


def marked_pids(marker):
    """Processes whose environment holds TENDBENCH=<marker>, or whose
    command line names the directory marker (pm2's daemon retitles itself
    "PM2 ...: God Daemon (<PM2_HOME>)")."""
    needle = f"TENDBENCH={marker}\0".encode()
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    env = f.read() + b"\0"
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if needle in env or (marker + "/").encode() in cmd:
                out.append(int(d))
    return out


def kill_pids(pids, grace=2.0):
    """SIGTERM, then SIGKILL after grace seconds, the (pid, start time)
    pairs still alive; the start time guards against a reused pid."""
    pids = [(p, t) for p, t in pids if alive(p) and start_time(p) == t]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p, _ in pids:
            try:
                os.kill(p, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(alive(p) for p, _ in pids):
            time.sleep(0.05)
        pids = [(p, t) for p, t in pids if alive(p)]
        if not pids:
            return
    say(f"could not kill {pids}")


def with_start(pids):
    return [(p, start_time(p)) for p in pids if start_time(p) is not None]


# ---------------------------------------------------------------------------
# Timing.

def time_exec(argv, env, runs):
    """Wall time in seconds of each of runs executions of argv, spawned
    directly (posix_spawn, no shell) with stdout and stderr on /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    acts = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    out = []
    try:
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            pid = os.posix_spawn(argv[0], argv, env, file_actions=acts)
            _, status = os.waitpid(pid, 0)
            out.append((time.perf_counter_ns() - t0) / 1e9)
            if status != 0:
                raise BenchError(f"{' '.join(argv)} failed (wait status {status})")
    finally:
        os.close(devnull)
    return out


def unix_http(path, url_path, timeout):
    """One HTTP/1.1 GET on a unix socket, in this process; returns the
    whole answer (the server answers with Connection: close)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(f"GET {url_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return data


def unix_http_get(path, url_path, timeout=5):
    """One GET on a unix socket; returns the status line."""
    return unix_http(path, url_path, timeout).split(b"\r\n", 1)[0].decode()


def unix_http_body(path, url_path, timeout=10):
    """One GET on a unix socket; returns the body as text."""
    data = unix_http(path, url_path, timeout)
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode()
    if " 200 " not in status + " ":
        raise BenchError(f"GET {url_path} on {path}: {status}")
    return body.decode()


def wait_until(cond, timeout, what, step=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


# ---------------------------------------------------------------------------
# Managers.

class Manager:
    """A process manager (tend or pm2) with its own home directory."""

    kind = "?"

    def __init__(self, bench, home):
        self.bench = bench
        self.home = home
        os.makedirs(home, mode=0o700)
        self.env = dict(os.environ, TENDBENCH=bench.work)
        self.env.pop("NO_COLOR", None)
        self.recorded = []  # (pid, start time) of the daemon and its children
        self.stopped = False
        bench.managers.append(self)

    def cli(self, *args, timeout=120, check=True):
        p = subprocess.run(self.argv(*args), env=self.env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise BenchError(f"{self.kind} {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
        return p

    def daemon_pid(self):
        with open(self.pid_file()) as f:
            return int(f.read().strip())

    def record(self):
        """Remember the daemon and its descendants, to kill them by pid if
        the manager's own kill does not."""
        try:
            pid = self.daemon_pid()
        except (OSError, ValueError):
            return
        self.recorded += with_start([pid] + descendants(pid))

    def online(self):
        return sum(1 for _, _, st in self.apps() if st == "online")

    def wait_online(self, n, timeout=120):
        return wait_until(lambda: self.online() >= n, timeout, f"{n} apps online under {self.kind}", step=0.5)

    def start_apps(self, apps, timeout=180):
        """Start apps, a list of {"name", "script", "args"?} dicts, from one
        JSON ecosystem file (both managers read pm2's format)."""
        path = os.path.join(self.home, f"apps-{len(self.recorded)}-{time.monotonic_ns()}.json")
        with open(path, "w") as f:
            json.dump({"apps": apps}, f)
        self.cli("start", path, timeout=timeout)
        self.record()

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        if not os.path.exists(self.pid_file()):
            return  # no daemon was started (the kill command could start one)
        self.record()
        try:
            self.cli(*self.kill_args(), timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            say(f"{self.kind} kill: {e}")
        kill_pids(self.recorded)


class Tend(Manager):
    kind = "tend"

    def __init__(self, bench, home):
        super().__init__(bench, home)
        self.env["TEND_HOME"] = home

    def argv(self, *args):
        return [self.bench.tend_bin, *args]

    def pid_file(self):
        return os.path.join(self.home, "daemon.pid")

    def kill_args(self):
        return ["kill"]

    def start_daemon(self):
        self.cli("ping")
        self.record()

    def apps(self):
        out = json.loads(self.cli("ls", "--json").stdout)
        return [(a["name"], i.get("pid", 0), i["status"]) for a in out for i in a["instances"]]

    def out_log(self, name):
        return os.path.join(self.home, "logs", f"{name}-out.log")

    def socket_path(self):
        return os.path.join(self.home, "tend.sock")


class PM2(Manager):
    kind = "pm2"

    def __init__(self, bench, home):
        super().__init__(bench, home)
        self.env["PM2_HOME"] = home

    def argv(self, *args):
        return [self.bench.pm2_bin, *args]

    def pid_file(self):
        return os.path.join(self.home, "pm2.pid")

    def kill_args(self):
        return ["kill"]

    def start_daemon(self):
        self.cli("ping")
        wait_until(lambda: os.path.exists(self.pid_file()), 30, "pm2.pid")
        self.record()

    def apps(self):
        text = self.cli("jlist").stdout
        out = json.loads(text[text.index("["):])
        return [(p["name"], p.get("pid", 0), p["pm2_env"]["status"]) for p in out]

    def out_log(self, name):
        return os.path.join(self.home, "logs", f"{name}-out.log")


# ---------------------------------------------------------------------------
# The bench: work directory, builds, clean-up.

class Bench:
    def __init__(self, keep=False):
        self.work = tempfile.mkdtemp(prefix="tb.", dir="/tmp")
        self.keep = keep
        self.managers = []
        self.tend_bin = None
        self.pm2_bin = None
        self.pm2_version = "?"
        self.built = {}
        self.homes = 0
        self.cleaned = False
        atexit.register(self.cleanup)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        say(f"work directory {self.work}")

    def _on_signal(self, signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for m in self.managers:
            m.stop()
        left = marked_pids(self.work)
        if left:
            say(f"killing {len(left)} leftover processes by pid: {left[:10]}")
            kill_pids(with_start(left))
        if self.keep:
            say(f"kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- builds ------------------------------------------------------------

    def build_tend(self):
        if self.tend_bin:
            return self.tend_bin
        given = os.environ.get("TEND_BIN")
        if given:
            self.tend_bin = os.path.abspath(given)
            say(f"tend: using TEND_BIN={self.tend_bin}")
            return self.tend_bin
        say("building tend (CGO_ENABLED=0 go build -trimpath ./cmd/tend)")
        self.tend_bin = self.go_build("./cmd/tend", "tend")
        return self.tend_bin

    def go_build(self, pkg, name):
        if pkg in self.built:
            return self.built[pkg]
        if not shutil.which("go"):
            raise BenchError("go is not on PATH (needed to build tend and the benchmark apps)")
        out = os.path.join(self.work, name)
        env = dict(os.environ, CGO_ENABLED="0")
        p = subprocess.run(["go", "build", "-trimpath", "-o", out, pkg], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise BenchError(f"go build {pkg}: {p.stderr.strip()}")
        self.built[pkg] = out
        return out

    def ensure_pm2(self):
        if self.pm2_bin:
            return self.pm2_bin
        pm2 = os.path.join(PM2_PREFIX, "node_modules", ".bin", "pm2")
        if not os.path.exists(pm2):
            if not shutil.which("npm") or not shutil.which("node"):
                raise BenchError("pm2 is needed for the comparison and node/npm are not on PATH")
            say(f"installing pm2: npm install --prefix {PM2_PREFIX} pm2")
            os.makedirs(PM2_PREFIX, exist_ok=True)
            p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", PM2_PREFIX, "pm2"],
                               capture_output=True, text=True, timeout=600)
            if p.returncode != 0 or not os.path.exists(pm2):
                raise BenchError(f"npm install pm2 failed: {p.stderr.strip()[-2000:]}")
        self.pm2_bin = pm2
        # Not `pm2 --version`: it starts a daemon.
        try:
            with open(os.path.join(PM2_PREFIX, "node_modules", "pm2", "package.json")) as f:
                self.pm2_version = json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            self.pm2_version = "?"
        say(f"pm2 {self.pm2_version} at {pm2}")
        return pm2

    def setup(self):
        self.build_tend()
        self.ensure_pm2()

    # -- managers ----------------------------------------------------------

    def _home(self, letter):
        self.homes += 1
        return os.path.join(self.work, f"{letter}{self.homes}")

    def tend(self):
        return Tend(self, self._home("t"))

    def pm2(self):
        return PM2(self, self._home("p"))

    def pair(self, rep):
        """Fresh tend and pm2, in the order of repetition rep: the two
        managers alternate going first."""
        t, p = self.tend(), self.pm2()
        return [t, p] if rep % 2 == 0 else [p, t]

    def finish(self, m):
        """Stop a manager and free its home (log files can be large)."""
        m.stop()
        if not self.keep:
            shutil.rmtree(m.home, ignore_errors=True)


# ---------------------------------------------------------------------------
# Figures and the summary.

def fmt_num(x):
    if x == float("inf"):
        return "∞"
    if isinstance(x, int) or x == 0:
        return str(int(x))
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def spread(samples, unit=""):
    """'median unit [min..max]' of samples."""
    med = statistics.median(samples)
    u = unit if unit.startswith("%") else f" {unit}" if unit else ""
    if len(samples) == 1:
        return fmt_num(med) + u
    return f"{fmt_num(med)}{u} [{fmt_num(min(samples))}..{fmt_num(max(samples))}]"


class Figure:
    """One compared figure.

    better="lower": the ratio is pm2/tend (times, memory, CPU) and the goal
    is a minimum for it. better="higher": the ratio is tend/pm2
    (throughput). better="zero": the goal is tend's worst repetition being
    0 (lines lost). better="max": the goal is a ceiling for tend's median,
    in the figure's unit (no ratio is printed). A Figure with no pm2 samples
    is a reference (a floor or a ceiling) and has no goal.
    """

    def __init__(self, name, unit, tend, pm2=None, better="lower", goal=None, note=""):
        self.name, self.unit, self.tend, self.pm2 = name, unit, list(tend), list(pm2 or [])
        self.better, self.goal, self.note = better, goal, note

    def ratio(self):
        """The ratio of the medians; None when both are 0 (nothing measured)."""
        t, p = statistics.median(self.tend), statistics.median(self.pm2)
        if t == 0 and p == 0:
            return None
        if self.better == "lower":
            return p / t if t else float("inf")
        return t / p if p else float("inf")

    def ok(self):
        if self.goal is None or not self.pm2 and self.better not in ("zero", "max"):
            return None
        if self.better == "zero":
            return max(self.tend) == 0
        if self.better == "max":
            return statistics.median(self.tend) <= self.goal
        r = self.ratio()
        return r is None or r >= self.goal  # both 0: tend is no worse

    def line(self):
        if not self.pm2:
            s = f"{self.name}: {spread(self.tend, self.unit)}"
        else:
            s = f"{self.name}: tend {spread(self.tend, self.unit)}, pm2 {spread(self.pm2, self.unit)}"
        if self.better == "zero" and self.goal is not None:
            s += f" (goal: tend 0) {'OK' if self.ok() else 'MISS'}"
        elif self.better == "max" and self.goal is not None:
            s += f" (goal: tend ≤ {self.goal:g} {self.unit}) {'OK' if self.ok() else 'MISS'}"
        elif self.pm2:
            r = self.ratio()
            rs = "n/a (both 0)" if r is None else "∞" if r == float("inf") else fmt_num(r)
            label = "pm2/tend" if self.better == "lower" else "tend/pm2"
            s += f" → {label} = {rs}"
            if self.goal is not None:
                g = f"{self.goal:g}"
                s += f" (goal ≥ {g}) {'OK' if self.ok() else 'MISS'}"
        if self.note:
            s += f"  [{self.note}]"
        return s

    def as_dict(self):
        return {"name": self.name, "unit": self.unit, "tend": self.tend, "pm2": self.pm2,
                "better": self.better, "goal": self.goal, "ok": self.ok(), "note": self.note}


def print_figures(title, figures):
    print(f"== {title}")
    for f in figures:
        print(f.line())
    sys.stdout.flush()


def common_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--reps", type=int, default=3, help="repetitions, alternating which manager goes first (default 3)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run: fewer runs, shorter windows")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (homes, logs) at the end")
    ap.add_argument("--json", metavar="FILE", help="also write every sample as JSON to FILE")
    return ap


def write_json(path, results):
    with open(path, "w") as f:
        json.dump({name: [fig.as_dict() for fig in figs] for name, figs in results.items()}, f, indent=2)


def standalone(title, description, run, add_args=None):
    """main() of a benchmark run alone: run(bench, args) returns figures;
    add_args(parser), if given, adds the benchmark's own flags."""
    ap = common_args(description)
    if add_args:
        add_args(ap)
    args = ap.parse_args()
    bench = Bench(keep=args.keep)
    try:
        bench.setup()
        figs = run(bench, args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        bench.cleanup()
    print_figures(title, figs)
    if args.json:
        write_json(args.json, {title: figs})
    return 0
