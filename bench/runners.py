"""Running and timing commands, statistics, and what the host has (cgroup
mounts, tools)."""
import dataclasses
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
RESULTS = os.path.join(REPO, "bench", "results")
PREFIX = "lct-bench-"
NAMESPACES = ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"]
MiB = 1 << 20
KiB = 1 << 10


# --------------------------------------------------------------------------
# running a command and timing it
# --------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    ok: bool
    ms: float = 0.0
    rc: int = 0
    cpu_ms: float = 0.0     # user + system time of the command and the children it reaped
    err: str = ""
    out: str = ""
    parts: dict = dataclasses.field(default_factory=dict)


class Spawner:
    """posix_spawn + wait: the cheapest way to time a command from Python.
    stdin and stdout are /dev/null (or stdout a file), stderr a file.

    (Its ru_maxrss is useless: a vfork child records its parent's high-water
    mark at exec. Peak RSS is measured through /usr/bin/time instead.)"""

    def __init__(self, tmp):
        self.null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.err = open(os.path.join(tmp, "stderr"), "w+b")
        self.out = open(os.path.join(tmp, "stdout"), "w+b")
        self.env = dict(os.environ)

    def __call__(self, argv, capture=False, timeout=60, ok_codes=(0,)):
        for f in (self.err, self.out) if capture else (self.err,):
            f.seek(0)
            f.truncate()
        actions = [(os.POSIX_SPAWN_DUP2, self.null, 0),
                   (os.POSIX_SPAWN_DUP2, self.out.fileno() if capture else self.null, 1),
                   (os.POSIX_SPAWN_DUP2, self.err.fileno(), 2)]
        t0 = time.perf_counter()
        try:
            pid = os.posix_spawn(argv[0], argv, self.env, file_actions=actions)
        except OSError as e:
            return Run(False, err=f"{argv[0]}: {e.strerror}")
        status, rusage, timed_out = _wait(pid, timeout)
        dt = (time.perf_counter() - t0) * 1000
        rc = os.waitstatus_to_exitcode(status)
        run = Run(rc in ok_codes and not timed_out, dt, rc,
                  cpu_ms=(rusage.ru_utime + rusage.ru_stime) * 1000)
        if capture:
            self.out.seek(0)
            run.out = self.out.read().decode(errors="replace")
        if not run.ok:
            self.err.seek(0)
            text = self.err.read().decode(errors="replace").strip()
            run.err = last_line(text) or (f"timed out after {timeout}s" if timed_out
                                          else f"exit status {rc}")
        return run


def _wait(pid, timeout):
    """Wait for `pid` at most `timeout` seconds (then SIGKILL it)."""
    timed_out = False
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        fd = None
    if fd is not None:
        try:
            if not select.select([fd], [], [], timeout)[0]:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
        finally:
            os.close(fd)
    _, status, rusage = os.wait4(pid, 0)
    return status, rusage, timed_out


def last_line(text):
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[-1]
    # runc/pyrunc JSON or logfmt error records: keep the message
    if line.startswith("{"):
        try:
            return json.loads(line).get("msg", line)
        except ValueError:
            pass
    if 'msg="' in line:
        return line.split('msg="', 1)[1].rsplit('"', 1)[0]
    return line[:300]


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------

def summary(samples):
    if not samples:
        return None
    s = sorted(samples)
    q = statistics.quantiles(s, n=4) if len(s) >= 2 else [s[0], s[0], s[0]]
    return {"median": statistics.median(s), "p25": q[0], "p75": q[2],
            "min": s[0], "max": s[-1], "n": len(s)}


class Series:
    """One contender of a section: a callable returning a Run."""

    def __init__(self, section, key, label, fn, error=None, note=""):
        self.section, self.key, self.label, self.fn = section, key, label, fn
        self.error = error          # set: the row shows "n/a (error)"
        self.note = note
        self.samples, self.parts = [], {}
        self.failures = 0
        self.last_error = ""

    def once(self, record):
        try:
            run = self.fn()
        except Exception as e:      # a contender's bug must not stop the bench
            run = Run(False, err=f"{type(e).__name__}: {e}")
        if not run.ok:
            self.failures += 1
            self.last_error = run.err
            if not self.samples and self.failures >= 3:
                self.error = f"fails: {run.err}"
            return
        if record:
            self.samples.append(run.ms)
            for k, v in run.parts.items():
                self.parts.setdefault(k, []).append(v)


def interleave(series, runs, warmup):
    """A B C, C B A, A B C ...: every round runs each contender once."""
    for r in range(warmup + runs):
        order = series if r % 2 == 0 else series[::-1]
        for s in order:
            if s.error is None:
                s.once(record=r >= warmup)


# --------------------------------------------------------------------------
# the host: cgroup mounts, tools
# --------------------------------------------------------------------------

def cgroup_mounts():
    """[(mountpoint, fstype, controllers)] of every cgroup hierarchy, found
    by filesystem type (/sys/fs/cgroup itself is a tmpfs here)."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _, opts = right.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                mounts.append((left.split()[4], fstype, opts.split(",")))
    return mounts


def memory_cgroup_dir(pid):
    """The memory cgroup directory of `pid` (v1 memory controller or v2)."""
    mounts = cgroup_mounts()
    v1 = next((m for m, t, o in mounts if t == "cgroup" and "memory" in o), None)
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if v1 and "memory" in controllers.split(","):
                return os.path.join(v1, path.lstrip("/"))
    return None


def memory_charge(pid):
    """(usage, max_usage) in bytes of the memory cgroup of `pid`, or an error
    string if it is not in a cgroup of its own."""
    d = memory_cgroup_dir(pid)
    if d is None:
        return "no memory controller"
    if PREFIX not in d:
        return f"not in a bench cgroup ({d})"

    def read(name):
        with open(os.path.join(d, name)) as f:
            return int(f.read())
    return read("memory.usage_in_bytes"), read("memory.max_usage_in_bytes")


def tool_version(path):
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def install_runtimes(log):
    missing = [t for t in ("runc", "crun") if not shutil.which(t)]
    if not os.path.exists("/usr/bin/time"):
        missing.append("time")          # peak RSS of a command
    if not missing:
        return
    log(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", *missing]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            log(f"apt-get install failed: {last_line(r.stderr)}")


def console_script(name):
    path = os.path.join(BIN, name)
    return path if os.access(path, os.X_OK) else None




def kill_cgroup_procs(cgroot):
    """SIGKILL every process in our cgroups (all started by this run)."""
    for mnt, _, _ in cgroup_mounts():
        for d, _, _ in os.walk(os.path.join(mnt, cgroot.lstrip("/"))):
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def remove_cgroups(cgroot):
    """Remove our cgroups, deepest first, in every hierarchy (killing what
    is still in them). Returns what could not be removed."""
    kill_cgroup_procs(cgroot)
    left = []
    for mnt, _, _ in cgroup_mounts():
        top = os.path.join(mnt, cgroot.lstrip("/"))
        if not os.path.isdir(top):
            continue
        for d, _, _ in sorted(os.walk(top), key=lambda e: -e[0].count("/")):
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            else:
                left.append(d)
    return left
