#!/usr/bin/env python3
"""make bench: how fast libcontainer starts containers, against runc and crun.

Builds a busybox OCI bundle and measures, in one run, interleaved (every
round runs each contender once, alternating the order) and after warm-up:

1. latency: the in-process API (create -> start(/bin/true) -> wait ->
   destroy), ``pyrunc run``, ``nsinit exec``, ``runc run``, ``crun run``, the
   ``unshare`` floor; ``create+start+delete``; ``state``, ``kill``, ``list``
   and ``exec`` on a running container;
2. throughput: containers per second with 1, 2, 8 and 32 in flight
   (separate processes);
3. memory: peak RSS of the runtime process, memory charged to the
   container's cgroup by a created-but-not-started and by a running
   container;
4. the smallest memory limit under which ``echo hi`` runs (binary search).

Prints one table with ratios against runc and crun, checks the targets of
the speed issue, and writes JSON to bench/results/<timestamp>.json.

    bench/bench.py [--quick] [--runs N] [--install] [--no-save] [--profile]

Everything it creates is named lct-bench-<token> (cgroups, state dirs, the
bundle dir in /tmp) and removed at the end, also on Ctrl-C.
"""
import argparse
import dataclasses
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
RESULTS = os.path.join(REPO, "bench", "results")
PREFIX = "lct-bench-"
NAMESPACES = ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"]
MiB = 1 << 20

# a minimal program using the API, for its peak RSS
API_SNIPPET = """
import os, sys
import libcontainer
from libcontainer import configs
root, rootfs, cgpath, prefix, n = sys.argv[1:6]
factory = libcontainer.new(root)
null = os.open(os.devnull, os.O_RDWR)
for i in range(int(n)):
    config = configs.Config(
        rootfs=rootfs, hostname="bench",
        namespaces=[configs.Namespace(t) for t in %r],
        cgroups=configs.Cgroup(path=f"{cgpath}-{i}") if cgpath else None)
    c = factory.create(f"{prefix}-{i}", config)
    p = libcontainer.Process(args=["/bin/true"], stdin=null, stdout=null, stderr=null)
    try:
        c.start(p)
        p.wait()
    finally:
        c.destroy()
""" % (NAMESPACES,)
KiB = 1 << 10


# --------------------------------------------------------------------------
# running a command and timing it
# --------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    ok: bool
    ms: float = 0.0
    rc: int = 0
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
        status, timed_out = _wait(pid, timeout)
        dt = (time.perf_counter() - t0) * 1000
        rc = os.waitstatus_to_exitcode(status)
        run = Run(rc in ok_codes and not timed_out, dt, rc)
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
    _, status = os.waitpid(pid, 0)
    return status, timed_out


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


# --------------------------------------------------------------------------
# bundles and configs
# --------------------------------------------------------------------------

CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def oci_config(rootfs, args, cgroups_path, memory=None):
    """`runc spec` (terminal off), root.path absolute so that
    every bundle shares one rootfs, and a cgroupsPath under the bench's."""
    nosx = ["nosuid", "noexec", "nodev"]
    resources = {"devices": [{"allow": False, "access": "rwm"}]}
    if memory is not None:
        resources["memory"] = {"limit": memory}
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": list(args),
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            # as runc 1.2's spec: 1.1 also listed them as ambient (without
            # inheritable, so that part never worked)
            "capabilities": {k: list(CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": [*nosx, "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": nosx},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": [*nosx, "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": [*nosx, "relatime", "ro"]},
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": resources,
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": list(MASKED),
            "readonlyPaths": list(READONLY),
        },
    }


class Bundles:
    def __init__(self, tmp, rootfs, cgroot):
        self.dir = os.path.join(tmp, "bundles")
        self.rootfs, self.cgroot = rootfs, cgroot

    def get(self, name, args, memory=None):
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            os.makedirs(path)
            with open(os.path.join(path, "config.json"), "w") as f:
                json.dump(oci_config(self.rootfs, args, f"{self.cgroot}/{name}", memory), f)
        return path


def api_config(rootfs, cgroup_path, full=False, memory=0):
    """The library config: 5 namespaces + a cgroup (the issue's in-process
    case); `full` adds what runc's default spec also does (capabilities,
    masked and read-only paths, read-only root, no_new_privileges, rlimit)."""
    from libcontainer import configs
    cg = None
    if cgroup_path:
        cg = configs.Cgroup(path=cgroup_path, resources=configs.Resources(memory=memory))
    kw = {}
    if full:
        kw = dict(readonlyfs=True, capabilities=[c[4:] for c in CAPS],
                  rlimits=[configs.Rlimit(type="RLIMIT_NOFILE", hard=1024, soft=1024)],
                  mask_paths=list(MASKED), readonly_paths=list(READONLY),
                  no_new_privileges=True)
    return configs.Config(rootfs=rootfs, hostname="bench",
                          namespaces=[configs.Namespace(t) for t in NAMESPACES],
                          cgroups=cg, **kw)


# --------------------------------------------------------------------------
# the in-process API
# --------------------------------------------------------------------------

class Api:
    """create -> start -> wait -> destroy in this process."""

    def __init__(self, root, rootfs, cgroot, with_cgroup):
        import libcontainer
        self.lib = libcontainer
        self.factory = libcontainer.new(root)
        self.rootfs, self.cgroot, self.with_cgroup = rootfs, cgroot, with_cgroup
        self.idprefix = cgroot.strip("/")         # lct-bench-<token>
        self.null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.n = 0

    def cgroup_drivers(self):
        return self.factory.plugin_manager.registry.names("cgroup_driver")

    def config(self, tag, full=False, memory=0):
        self.n += 1
        path = f"{self.cgroot}/{tag}-{self.n}" if self.with_cgroup else ""
        return f"{self.idprefix}-{tag}-{self.n}", api_config(self.rootfs, path, full, memory)

    def run(self, args=("/bin/true",), full=False, memory=0, stdout=None, tag="api"):
        cid, cfg = self.config(tag, full, memory)
        t0 = time.perf_counter()
        c = self.factory.create(cid, cfg)
        try:
            p = self.lib.Process(args=list(args), stdin=self.null,
                                 stdout=self.null if stdout is None else stdout,
                                 stderr=self.null)
            c.start(p)
            rc = p.wait()
        finally:
            c.destroy()
        return Run(rc == 0, (time.perf_counter() - t0) * 1000, rc,
                   err="" if rc == 0 else f"exit status {rc}")

    def started(self, args, hold, tag):
        """A container left running (or held before exec); returns it."""
        cid, cfg = self.config(tag)
        c = self.factory.create(cid, cfg)
        p = self.lib.Process(args=list(args), stdin=self.null, stdout=self.null,
                             stderr=self.null)
        try:
            c.start(p, hold=hold)
        except BaseException:
            c.destroy()
            raise
        return c

    def destroy_all(self):
        for cid in self.factory.list():
            try:
                self.factory.load(cid).destroy()
            except Exception:
                shutil.rmtree(os.path.join(self.factory.root, cid), ignore_errors=True)


def worker(spec):
    """A separate process running `count` containers through the API once
    told to go (throughput): prints one JSON line of results."""
    t_import = time.perf_counter()
    api = Api(spec["root"], spec["rootfs"], spec["cgroot"], spec["cgroup"])
    try:
        api.run(tag=spec["tag"] + "-warm")      # plugins loaded, caches warm
    except Exception:
        pass                                    # counted below if it persists
    t_ready = time.perf_counter()
    rss_ready = vm_status("VmRSS")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if not sys.stdin.readline():
        return                          # the bench is gone
    ok, fail, errors, times = 0, 0, [], []
    deadline = time.monotonic() + spec["max_s"]
    for _ in range(spec["count"]):
        if time.monotonic() > deadline:
            break
        try:
            r = api.run(tag=spec["tag"])
        except Exception as e:
            r = Run(False, err=f"{type(e).__name__}: {e}")
        if r.ok:
            ok += 1
            times.append(r.ms)
        else:
            fail += 1
            errors.append(r.err)
    api.destroy_all()
    print(json.dumps({"ok": ok, "fail": fail, "errors": errors[:3], "times": times,
                      "rss_ready_kb": rss_ready, "hwm_kb": vm_status("VmHWM"),
                      "startup_ms": (t_ready - t_import) * 1000}))


def vm_status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------
# the bench
# --------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.token = uuid.uuid4().hex[:6]
        self.cgroot = f"/{PREFIX}{self.token}"
        self.tmp = tempfile.mkdtemp(prefix=f"{PREFIX}{self.token}-")
        self.spawn = Spawner(self.tmp)
        self.rootfs = os.path.join(REPO, "build", "rootfs")
        self.rows = []          # finished rows for the table and the JSON
        self.targets = []
        self.info = {}
        self.runtimes = {}      # name -> [binary, "--root", state dir]
        self.rt_error = {}      # name -> why it cannot be measured
        self.api = None
        self.api_note = ""
        self.n = 0
        self.t_start = time.monotonic()

    def log(self, msg):
        el = time.monotonic() - self.t_start
        print(f"[{el:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def uid(self, tag):
        self.n += 1
        return f"{PREFIX}{self.token}-{tag}-{self.n}"

    # -- set-up -------------------------------------------------------------
    def setup(self):
        if not os.path.exists(os.path.join(self.rootfs, "bin", "busybox")):
            self.rootfs = os.path.join(self.tmp, "rootfs")
            self.log("building the busybox rootfs")
            subprocess.run([os.path.join(REPO, "tools", "mkrootfs"), self.rootfs], check=True)
        # the CLIs' start-up must not pay for compiling the library: a real
        # install has bytecode (PYTHONDONTWRITEBYTECODE may be set here)
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j0",
                        *(os.path.join(REPO, d) for d in ("core", "cli", "plugins"))],
                       capture_output=True)
        self.bundles = Bundles(self.tmp, self.rootfs, self.cgroot)
        if self.args.install:
            install_runtimes(self.log)
        for name in ("pyrunc", "runc", "crun"):
            path = console_script(name) if name == "pyrunc" else shutil.which(name)
            root = os.path.join(self.tmp, "state", name)
            if path is None:
                self.rt_error[name] = f"{name} not installed"
                continue
            self.runtimes[name] = [path, "--root", root]
            self.info[f"{name}_version"] = tool_version(path)
            r = self.spawn(self.runtimes[name] + ["run", "--bundle",
                                                  self.bundles.get(f"{name}-probe",
                                                                   ["/bin/true"]),
                                                  self.uid(f"{name}-probe")], timeout=20)
            if not r.ok:
                self.rt_error[name] = r.err if r.err.startswith(name) else f"{name}: {r.err}"
                self.log(f"{name} cannot run a container here: {r.err}")
        self.nsinit = console_script("nsinit")
        if self.nsinit:
            self.nsinit_config = self._nsinit_config()
        import libcontainer
        self.info["libcontainer_version"] = libcontainer.__version__
        self.api = Api(os.path.join(self.tmp, "state", "api"), self.rootfs, self.cgroot, True)
        drivers = self.api.cgroup_drivers()
        self.info["cgroup_drivers"] = drivers
        self.info["plugins"] = [e["name"] for e in self.api.factory.plugin_manager.entries]
        if not drivers:
            self.api.with_cgroup = False
            self.api_note = "no cgroup: the cgroups plugin is not installed"
        else:
            try:
                probe = self.api.run(tag="api-probe")
            except Exception as e:
                probe = Run(False, err=f"{type(e).__name__}: {e}")
            if not probe.ok:
                self.api.with_cgroup = False
                self.api_note = f"no cgroup: with one it fails ({probe.err})"
        if self.api_note:
            self.log(f"in-process API: {self.api_note}")

    def _nsinit_config(self):
        """`nsinit config` (the sample), with our rootfs and cgroup path."""
        out = subprocess.run([self.nsinit, "config"], capture_output=True, text=True)
        cfg = json.loads(out.stdout)
        cfg["rootfs"] = self.rootfs
        if cfg.get("cgroups") is not None:
            cfg["cgroups"].update(path=f"{self.cgroot}/nsinit", name="", parent="")
        path = os.path.join(self.tmp, "nsinit.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    # -- contenders -----------------------------------------------------------
    def rt(self, name):
        return self.runtimes.get(name) if name not in self.rt_error else None

    def cli_series(self, section, name, label, fn):
        if self.rt(name) is None:
            return Series(section, name, label, fn, error=self.rt_error[name])
        return Series(section, name, label, fn)

    def cli_run(self, name, bundle, tag, extra=()):
        def fn():
            return self.spawn(self.runtimes[name] + ["run", "--bundle", bundle, *extra,
                                                     self.uid(tag)])
        return fn

    def cli_two_phase(self, name, bundle):
        argv = self.runtimes.get(name, [])

        def fn():
            cid = self.uid(f"{name}-2ph")
            parts = {}
            for step, cmd in (("create", ["create", "--bundle", bundle, cid]),
                              ("start", ["start", cid]),
                              ("delete", ["delete", "--force", cid])):
                r = self.spawn(argv + cmd)
                if not r.ok:
                    self.spawn(argv + ["delete", "--force", cid])
                    return Run(False, err=f"{step}: {r.err}")
                parts[step] = r.ms
            return Run(True, sum(parts.values()), parts=parts)
        return fn

    def cli_op(self, name, cmd):
        def fn():
            return self.spawn(self.runtimes[name] + cmd)
        return fn

    # -- 1. latency -----------------------------------------------------------
    def latency(self):
        runs, warm = self.args.runs, self.args.warmup
        start = "start a container (/bin/true)"
        sec = [Series(start, "api", "in-process API", lambda: self.api.run(),
                      note=self.api_note),
               Series(start, "api-full", "in-process API, runc-spec features",
                      lambda: self.api.run(full=True, tag="apif"), note=self.api_note)]
        for name in ("pyrunc", "runc", "crun"):
            sec.append(self.cli_series(start, name, f"{name} run", self.cli_run(
                name, self.bundles.get(f"{name}-true", ["/bin/true"]), f"{name}-run")))
        if self.nsinit:
            ns_root = os.path.join(self.tmp, "state", "nsinit")
            sec.append(Series(start, "nsinit", "nsinit exec", lambda: self.spawn(
                [self.nsinit, "--root", ns_root, "exec", "--id", self.uid("nsinit"),
                 "--config", self.nsinit_config, "/bin/true"])))
        else:
            sec.append(Series(start, "nsinit", "nsinit exec", None, error="nsinit not installed"))
        sec.append(Series(start, "unshare", "unshare+chroot floor", lambda: self.spawn(
            ["/usr/bin/unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net",
             "--mount-proc", shutil.which("chroot") or "/usr/sbin/chroot", self.rootfs,
             "/bin/true"])))
        sec.append(Series(start, "python", "python -I -S -c pass",
                          lambda: self.spawn([sys.executable, "-I", "-S", "-c", "pass"])))
        self.log(f"latency: start a container, {warm}+{runs} rounds")
        interleave(sec, runs, warm)
        self.add_rows(sec)

        two = "create + start + delete"
        sec = [self.cli_series(two, name, name, self.cli_two_phase(
            name, self.bundles.get(f"{name}-2ph", ["/bin/true"])))
            for name in ("pyrunc", "runc", "crun")]
        self.log(f"latency: create+start+delete, {warm}+{runs} rounds")
        interleave(sec, runs, warm)
        self.add_rows(sec)

        # operations on a running `sleep` container, one per runtime
        running = {}
        for name in ("pyrunc", "runc", "crun"):
            if self.rt(name) is None:
                continue
            cid = self.uid(f"{name}-sleep")
            bundle = self.bundles.get(f"{name}-sleep", ["sleep", "100000"])
            r = self.spawn(self.runtimes[name] + ["create", "--bundle", bundle, cid])
            if r.ok:
                r = self.spawn(self.runtimes[name] + ["start", cid])
            if r.ok:
                running[name] = cid
            else:
                self.rt_error[f"{name}-running"] = \
                    f"{name}: cannot start a sleep container: {r.err}"
                self.spawn(self.runtimes[name] + ["delete", "--force", cid])
        for op, cmd in (("state", lambda c: ["state", c]),
                        ("kill", lambda c: ["kill", c, "28"]),      # SIGWINCH: ignored
                        ("list", lambda c: ["list"]),
                        ("exec", lambda c: ["exec", c, "/bin/true"])):
            section = f"{op} (running container)"
            sec = []
            for name in ("pyrunc", "runc", "crun"):
                if name in running:
                    sec.append(Series(section, name, f"{name} {op}",
                                      self.cli_op(name, cmd(running[name]))))
                else:
                    err = self.rt_error.get(name) or self.rt_error.get(f"{name}-running")
                    sec.append(Series(section, name, f"{name} {op}", None, error=err))
            self.log(f"latency: {op}, {warm}+{runs} rounds")
            interleave(sec, runs, warm)
            self.add_rows(sec)
        for name, cid in running.items():
            self.spawn(self.runtimes[name] + ["delete", "--force", cid])

    # -- 2. throughput -------------------------------------------------------
    def throughput(self):
        """Two passes, 1 2 8 32 then 32 8 2 1, each runtime in turn within a
        level; a level's rate is the better of its two passes (load from
        elsewhere only ever lowers a rate), its failures the sum."""
        levels = [1, 2, 8, 32]
        keys = (("api", "in-process API (worker processes)"), ("pyrunc", "pyrunc run"),
                ("runc", "runc run"), ("crun", "crun run"))
        passes = {}
        for c in levels + levels[::-1]:
            total = self.args.tp_total(c)
            self.log(f"throughput: {c} in flight, up to {total} containers each")
            got = passes.setdefault(c, {k: [] for k, _ in keys})
            got["api"].append(self.tp_api(c, total))
            for name in ("pyrunc", "runc", "crun"):
                got[name].append(self.tp_cli(name, c, total) if self.rt(name) else
                                 {"error": self.rt_error[name]})
        for c in levels:
            for key, label in keys:
                runs = passes[c][key]
                row = {"section": f"throughput, {c} in flight", "key": key, "label": label,
                       "unit": "ctr/s", "higher_is_better": True, "concurrency": c}
                good = [r for r in runs if "error" not in r]
                if not good:
                    row["error"] = runs[0]["error"]
                else:
                    best = max(good, key=lambda r: r["rate"])
                    row.update(median=best["rate"], passes=[round(r["rate"], 1) for r in good],
                               failures=sum(r["fail"] for r in good),
                               n=sum(r["ok"] for r in good),
                               errors=[e for r in good for e in r["errors"]][:3])
                    if key == "api":
                        row["note"] = self.api_note
                        row["worker"] = {k: best[k] for k in ("hwm_kb", "rss_ready_kb",
                                                               "startup_ms") if k in best}
                self.rows.append(row)

    def tp_api(self, c, total):
        per = max(1, total // c)
        spec = {"rootfs": self.rootfs, "cgroot": self.cgroot, "cgroup": self.api.with_cgroup,
                "count": per, "max_s": self.args.tp_max_s}
        procs = []
        try:
            for i in range(c):
                # a state root per worker: each destroys its own at the end
                s = dict(spec, tag=f"tp{c}-{i}",
                         root=os.path.join(self.tmp, "state", "api-tp", f"{c}-{i}"))
                procs.append(subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(s)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            for p in procs:
                if p.stdout.readline().strip() != "ready":
                    raise RuntimeError("a worker did not start")
            t0 = time.perf_counter()
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
            outs = [json.loads(p.stdout.readline()) for p in procs]
            wall = time.perf_counter() - t0
        except BaseException as e:
            for p in procs:
                p.kill()
            if not isinstance(e, Exception):
                raise
            return {"error": f"workers: {type(e).__name__}: {e}"}
        finally:
            for p in procs:
                try:
                    p.stdin.close()
                except OSError:
                    pass
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        ok = sum(o["ok"] for o in outs)
        fail = sum(o["fail"] for o in outs)
        errors = [e for o in outs for e in o["errors"]][:3]
        return {"rate": ok / wall, "ok": ok, "fail": fail, "errors": errors, "wall_s": wall,
                "hwm_kb": max(o["hwm_kb"] for o in outs),
                "rss_ready_kb": max(o["rss_ready_kb"] for o in outs),
                "startup_ms": statistics.median(o["startup_ms"] for o in outs)}

    def tp_cli(self, name, c, total):
        """Keep `c` `run`s in flight, each slot with its own bundle (and so
        its own cgroup); containers per second over the whole batch, which
        stops growing after tp_max_s seconds (a slow runtime runs fewer)."""
        slots = [self.bundles.get(f"{name}-tp{c}-{i}", ["/bin/true"]) for i in range(c)]
        errfile = open(os.path.join(self.tmp, f"tp-{name}-{c}.err"), "w+b")
        env = self.spawn.env
        running, free = {}, list(range(c))
        ok = fail = started = 0
        errors = []
        t0 = time.perf_counter()
        deadline = time.monotonic() + self.args.tp_max_s     # a slow runtime: fewer
        while True:
            if started >= c and time.monotonic() > deadline:
                total = started
            while free and started < total:
                slot = free.pop()
                argv = self.runtimes[name] + ["run", "--bundle", slots[slot],
                                              self.uid(f"{name}-tp{c}")]
                pid = os.posix_spawn(argv[0], argv, env, file_actions=[
                    (os.POSIX_SPAWN_DUP2, self.spawn.null, 0),
                    (os.POSIX_SPAWN_DUP2, self.spawn.null, 1),
                    (os.POSIX_SPAWN_DUP2, errfile.fileno(), 2)])
                running[pid] = slot
                started += 1
            if not running:
                break
            pid, status = os.waitpid(-1, 0)
            if pid not in running:
                continue
            free.append(running.pop(pid))
            if os.waitstatus_to_exitcode(status) == 0:
                ok += 1
            else:
                fail += 1
        wall = time.perf_counter() - t0
        if fail:
            errfile.seek(0)
            errors = [last_line(errfile.read().decode(errors="replace"))]
        errfile.close()
        return {"rate": ok / wall, "ok": ok, "fail": fail, "errors": errors, "wall_s": wall}

    # -- 3. memory -----------------------------------------------------------
    def memory(self):
        reps = 2 if self.args.quick else 3
        self.peak_rss(reps)
        self.log("memory: cgroup charge of created and of running containers")
        for phase, args, hold in (("created", ["sleep", "100000"], True),
                                  ("running sleep", ["sleep", "100000"], False)):
            sec = f"memory charged to the cgroup: {phase}"
            # libcontainer API
            vals, err = [], ""
            for _ in range(reps):
                if not self.api.with_cgroup:
                    err = self.api_note
                    break
                c = None
                try:
                    c = self.api.started(args, hold, tag="mem")
                    time.sleep(0.1)
                    v = memory_charge(c.init_pid)
                    if isinstance(v, str):
                        err = v
                        break
                    vals.append(v)
                except Exception as e:
                    err = f"{type(e).__name__}: {e}"
                    break
                finally:
                    if c is not None:
                        c.destroy()
            self.rows.append(self._mem_row(sec, "api", "in-process API", vals, err))
            for name in ("pyrunc", "runc", "crun"):
                vals, err = [], self.rt_error.get(name, "")
                for _ in range(0 if err else reps):
                    v = self._cli_charge(name, args, hold)
                    if isinstance(v, str):
                        err = v
                        break
                    vals.append(v)
                self.rows.append(self._mem_row(sec, name, name, vals, err))

    def peak_rss(self, reps):
        """Peak RSS (max of the process and the children it reaped) through
        /usr/bin/time: a vfork from this process would report our own."""
        section = "peak RSS of the runtime process"
        self.log("memory: peak RSS of the runtime process")
        timefile = os.path.join(self.tmp, "time.out")
        gnu_time = shutil.which("time", path="/usr/bin:/bin")
        ns_root = os.path.join(self.tmp, "state", "nsinit")
        cg = f"{self.cgroot}/rss-api" if self.api.with_cgroup else ""
        contenders = [("api", "in-process API (python -c: 10 containers)",
                       lambda: [sys.executable, "-c", API_SNIPPET,
                                os.path.join(self.tmp, "state", "api-rss"), self.rootfs, cg,
                                f"{PREFIX}{self.token}-rss", "10"], None)]
        for name in ("pyrunc", "runc", "crun"):
            bundle = self.bundles.get(f"{name}-true", ["/bin/true"])
            contenders.append((name, f"{name} run", (lambda n=name, b=bundle: self.runtimes[n] + [
                "run", "--bundle", b, self.uid(f"{n}-rss")]), self.rt_error.get(name)))
        contenders.insert(2, ("nsinit", "nsinit exec", lambda: [
            self.nsinit, "--root", ns_root, "exec", "--id", self.uid("nsinit-rss"),
            "--config", self.nsinit_config, "/bin/true"],
            None if self.nsinit else "nsinit not installed"))
        for key, label, argv, err in contenders:
            row = {"section": section, "key": key, "label": label, "unit": "MiB"}
            if key == "api" and self.api_note:
                row["note"] = self.api_note
            vals = []
            if gnu_time is None:
                err = "/usr/bin/time not installed (apt-get install time)"
            for _ in range(0 if err else reps):
                r = self.spawn([gnu_time, "-f", "%M", "-o", timefile, *argv()])
                if not r.ok:
                    err = r.err
                    break
                with open(timefile) as f:
                    vals.append(int(f.read().split()[-1]) / 1024)
            if vals:
                row.update(median=statistics.median(vals), n=len(vals))
            else:
                row["error"] = err or "not measured"
            self.rows.append(row)

    def _cli_charge(self, name, args, hold):
        argv = self.runtimes[name]
        cid = self.uid(f"{name}-mem")
        bundle = self.bundles.get(cid[len(PREFIX):], args)
        try:
            r = self.spawn(argv + ["create", "--bundle", bundle, cid])
            if r.ok and not hold:
                r = self.spawn(argv + ["start", cid])
            if not r.ok:
                return r.err
            time.sleep(0.1)
            st = self.spawn(argv + ["state", cid], capture=True)
            if not st.ok:
                return f"state: {st.err}"
            pid = json.loads(st.out)["pid"]
            return memory_charge(pid)
        except (OSError, ValueError, KeyError) as e:
            return f"{type(e).__name__}: {e}"
        finally:
            self.spawn(argv + ["delete", "--force", cid])

    @staticmethod
    def _mem_row(section, key, label, vals, err):
        row = {"section": section, "key": key, "label": label, "unit": "MiB"}
        if vals:
            row["median"] = statistics.median(v[0] for v in vals) / MiB
            row["max_usage_mib"] = statistics.median(v[1] for v in vals) / MiB
            row["n"] = len(vals)
        else:
            row["error"] = err or "not measured"
        return row

    # -- 4. the smallest memory limit ------------------------------------------
    def min_memory(self):
        section = "smallest memory limit for `echo hi`"
        self.log("memory: smallest limit under which `echo hi` runs")
        out_path = os.path.join(self.tmp, "echo.out")

        def api_probe(limit):
            with open(out_path, "w+b") as out:
                try:
                    r = self.api.run(args=["echo", "hi"], memory=limit, stdout=out, tag="lim")
                except Exception as e:
                    return Run(False, err=f"{type(e).__name__}: {e}")
                out.seek(0)
                return Run(r.ok and out.read().strip() == b"hi", err=r.err)

        def cli_probe(name):
            def probe(limit):
                cid = self.uid(f"{name}-lim")
                bundle = self.bundles.get(cid[len(PREFIX):], ["echo", "hi"], memory=limit)
                r = self.spawn(self.runtimes[name] + ["run", "--bundle", bundle, cid],
                               capture=True)
                self.spawn(self.runtimes[name] + ["delete", "--force", cid])
                return Run(r.ok and r.out.strip() == "hi", err=r.err)
            return probe

        contenders = [("api", "in-process API", api_probe if self.api.with_cgroup else None,
                       self.api_note)]
        for name in ("pyrunc", "runc", "crun"):
            contenders.append((name, f"{name} run", cli_probe(name) if self.rt(name) else None,
                               self.rt_error.get(name)))
        for key, label, probe, err in contenders:
            row = {"section": section, "key": key, "label": label, "unit": "KiB"}
            if probe is None:
                row["error"] = err or "n/a"
            else:
                row.update(self._bisect(probe))
            self.rows.append(row)

    @staticmethod
    def _bisect(probe, step=64 * KiB, hi=32 * MiB):
        """Smallest multiple of `step` <= `hi` under which probe passes."""
        top = probe(hi)
        if not top.ok:
            return {"error": f"fails even at {hi // MiB} MiB: {top.err}"}
        lo, fail_err = 0, ""           # lo: known to fail (0 is assumed to)
        while hi - lo > step:
            mid = (lo + hi) // 2 // step * step
            r = probe(mid)
            if r.ok:
                hi = mid
            else:
                lo, fail_err = mid, r.err
        return {"median": hi / KiB, "fails_at_kib": lo / KiB, "fail_error": fail_err}

    # -- results ---------------------------------------------------------------
    def add_rows(self, series):
        for s in series:
            row = {"section": s.section, "key": s.key, "label": s.label, "unit": "ms"}
            if s.note:
                row["note"] = s.note
            st = summary(s.samples)
            if s.error or st is None:
                row["error"] = s.error or f"no successful run ({s.last_error})"
            else:
                row.update(st)
                row["failures"] = s.failures
                if s.failures:
                    row["last_error"] = s.last_error
                if s.parts:
                    row["parts"] = {k: statistics.median(v) for k, v in s.parts.items()}
            self.rows.append(row)

    def ratios(self):
        """Each row against the runc and crun rows of its section."""
        ref = {}
        for r in self.rows:
            if r["key"] in ("runc", "crun") and r.get("median"):
                ref[(r["section"], r["key"])] = r["median"]
        for r in self.rows:
            r["vs"] = {}
            for other in ("crun", "runc"):
                base = ref.get((r["section"], other))
                if base and r.get("median") is not None and r["key"] != other:
                    r["vs"][other] = r["median"] / base

    def get(self, section, key):
        return next((r for r in self.rows if r["section"] == section and r["key"] == key), {})

    def check_targets(self):
        start = "start a container (/bin/true)"

        def ratio(what, section, key, other, limit=1.0):
            row, base = self.get(section, key), self.get(section, other)
            t = {"target": what, "limit": f"<= {limit:.1f}x {other}"}
            if not row.get("median"):
                t.update(verdict="n/a", why=row.get("error", "not measured"))
            elif not base.get("median"):
                why = base.get("error", "not measured")
                t.update(verdict="n/a", why=why if why.startswith(other) else f"{other}: {why}",
                         measured=f"{row['median']:.1f} {row['unit']}")
            else:
                x = row["median"] / base["median"]
                t.update(verdict="PASS" if x <= limit else "FAIL", ratio=round(x, 2),
                         measured=f"{row['median']:.1f} vs {base['median']:.1f} {row['unit']}")
            self.targets.append(t)

        ratio("in-process API per container <= crun run", start, "api", "crun")
        ratio("in-process API per container vs runc run (for reference)", start, "api", "runc")
        ratio("pyrunc run <= runc run", start, "pyrunc", "runc")
        for op in ("state", "kill", "list"):
            ratio(f"pyrunc {op} <= runc {op}", f"{op} (running container)", "pyrunc", "runc")
        for key, label in (("api", "in-process API"), ("pyrunc", "pyrunc run")):
            row = self.get("smallest memory limit for `echo hi`", key)
            if not row and key != "api":
                continue
            t = {"target": f"`echo hi` under a 1 MiB memory limit ({label})",
                 "limit": "<= 1024 KiB"}
            if row.get("median"):
                t.update(verdict="PASS" if row["median"] <= 1024 else "FAIL",
                         measured=f"{row['median']:.0f} KiB")
            else:
                t.update(verdict="n/a", why=row.get("error", "not measured"))
            self.targets.append(t)
        for key in ("api", "pyrunc"):
            one = self.get("throughput, 1 in flight", key)
            two = self.get("throughput, 2 in flight", key)
            many = self.get("throughput, 32 in flight", key)
            par = [self.get(f"throughput, {c} in flight", key) for c in (2, 8, 32)]
            t = {"target": f"{key}: parallel throughput scales to 2 cores, no failures at 32",
                 "limit": "best of 2/8/32 in flight >= 1.5x 1 in flight; 0 failures"}
            if not (one.get("median") and all(r.get("median") for r in par)):
                t.update(verdict="n/a", why=(one.get("error") or two.get("error")
                                             or many.get("error") or "not measured"))
            else:
                best = max(r["median"] for r in par)
                x = best / one["median"]
                fails = sum(r.get("failures", 0) for r in [one, *par])
                t.update(verdict="PASS" if x >= 1.5 and fails == 0 else "FAIL",
                         ratio=round(x, 2),
                         measured=f"1: {one['median']:.0f}, 2: {two['median']:.0f}, "
                                  f"8: {par[1]['median']:.0f}, 32: {many['median']:.0f} ctr/s; "
                                  f"{fails} failures")
            self.targets.append(t)

    def table(self):
        la, lb = self.info.get("loadavg_start", (0, 0, 0)), os.getloadavg()
        versions = ", ".join(f"{n} {self.info[n + '_version'].split()[-1]}"
                             for n in ("pyrunc", "runc", "crun") if n + "_version" in self.info)
        lines = [f"libcontainer {self.info.get('libcontainer_version', '?')} | "
                 f"{os.cpu_count()} cpus, linux {platform.release()} | {versions} | "
                 f"load avg {la[0]:.2f} -> {lb[0]:.2f} | {self.args.runs} rounds"
                 f"{' (quick)' if self.args.quick else ''}"]
        for name, err in self.info.get("section_errors", {}).items():
            lines.append(f"SECTION {name} FAILED: {err}")
        lines.append("")
        w = 44
        head = (f"{'':<{w}} {'median':>10} {'p25-p75 / spread':>19} {'n':>4} "
                f"{'x crun':>7} {'x runc':>7}")
        lines.append(head)
        lines.append("-" * len(head))
        section = None
        for r in self.rows:
            if r["section"] != section:
                section = r["section"]
                lines.append(section)
            label = "  " + r["label"]
            if r.get("error"):
                lines.append(f"{label:<{w}} n/a ({r['error']})"[:200])
                continue
            unit = r["unit"]
            val = fmt(r["median"], unit)
            if "p25" in r:
                spread = f"{r['p25']:.1f}-{r['p75']:.1f}"
            elif "max_usage_mib" in r:
                spread = f"peak {r['max_usage_mib']:.2f}"
            elif "fails_at_kib" in r:
                spread = f"fails at {r['fails_at_kib']:.0f}"
            elif unit == "ctr/s":
                spread = "/".join(f"{v:.0f}" for v in r.get("passes", [])) + \
                    f", {r.get('failures', 0)} failed"
            else:
                spread = ""
            n = r.get("n", "")
            vs = [f"{r['vs'][o]:.2f}" if o in r.get("vs", {}) else "-" for o in ("crun", "runc")]
            extra = []
            if r.get("failures") and unit != "ctr/s":
                extra.append(f"{r['failures']} failed: {r.get('last_error', '')}")
            if r.get("failures") and r.get("errors"):
                extra.append(f"failure: {r['errors'][0]}")
            if r.get("note"):
                extra.append(r["note"])
            if r.get("parts"):
                extra.append(" ".join(f"{k} {v:.1f}" for k, v in r["parts"].items()))
            line = f"{label:<{w}} {val:>10} {spread:>19} {n!s:>4} {vs[0]:>7} {vs[1]:>7}"
            if extra:
                line += "  " + "; ".join(extra)
            lines.append(line)
        lines.append("")
        lines.append("targets")
        for t in self.targets:
            detail = t.get("measured", "")
            if "ratio" in t:
                detail = f"{t['ratio']:.2f}x ({detail})"
            if t.get("why"):
                detail = (detail + " " if detail else "") + f"({t['why']})"
            lines.append(f"  {t['verdict']:<5} {t['target']}: {detail}"[:220])
        return "\n".join(lines)

    def save(self, text):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        data = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": self.args.quick,
                "runs": self.args.runs, "warmup": self.args.warmup,
                "elapsed_s": round(time.monotonic() - self.t_start, 1),
                "host": self.host(), "info": self.info, "rows": self.rows,
                "targets": self.targets, "table": text.splitlines()}
        os.makedirs(RESULTS, exist_ok=True)
        path = os.path.join(RESULTS, f"{stamp}{'-quick' if self.args.quick else ''}.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
        return path

    def host(self):
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain"],
                               capture_output=True, text=True).stdout.strip()
        return {"kernel": platform.release(), "cpus": os.cpu_count(),
                "python": platform.python_version(), "commit": commit + ("+dirty" if dirty else ""),
                "loadavg_end": os.getloadavg(), "loadavg_start": self.info.get("loadavg_start"),
                "cgroup_hierarchies": [f"{t}:{m}" for m, t, _ in cgroup_mounts()]}

    # -- clean-up -----------------------------------------------------------------
    def cleanup(self):
        # first kill what runs in our cgroups (all ours), so that nothing
        # below waits on a process
        kill_cgroup_procs(self.cgroot)
        state = os.path.join(self.tmp, "state")
        tp = os.path.join(state, "api-tp")
        roots = [os.path.join(state, "api"), os.path.join(state, "api-rss")]
        roots += [os.path.join(tp, d) for d in sorted(os.listdir(tp))] if os.path.isdir(tp) else []
        for root in roots:
            if os.path.isdir(root):
                import libcontainer
                factory = libcontainer.new(root)
                for cid in factory.list():
                    try:
                        factory.load(cid).destroy()
                    except Exception as e:
                        self.log(f"cleanup: {cid}: {e}")
        cmds = []
        for name, argv in self.runtimes.items():
            root = argv[2]
            for cid in sorted(os.listdir(root)) if os.path.isdir(root) else []:
                cmds.append(argv + ["delete", "--force", cid])
        ns_root = os.path.join(state, "nsinit")
        for cid in sorted(os.listdir(ns_root)) if os.path.isdir(ns_root) else []:
            cmds.append([self.nsinit, "--root", ns_root, "destroy", "--force", cid])
        for cmd in cmds:
            try:
                subprocess.run(cmd, capture_output=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as e:
                self.log(f"cleanup: {' '.join(cmd)}: {e}")
        left = remove_cgroups(self.cgroot)
        if left:
            self.log(f"cleanup: could not remove {left}")
        shutil.rmtree(self.tmp, ignore_errors=True)


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


def fmt(value, unit):
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "MiB":
        return f"{value:.2f} MiB"
    if unit == "KiB":
        return f"{value:.0f} KiB"
    if unit == "ctr/s":
        return f"{value:.1f}/s"
    return f"{value:.2f} {unit}"


# --------------------------------------------------------------------------
# profiling (--profile): where the time goes
# --------------------------------------------------------------------------

# cProfile of a console script, run as its launcher would (sys.path[0] is
# the script's directory, which the plugin index cache keys on)
PROFILE_WRAPPER = """
import cProfile, os, runpy, sys
out, script = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[2:]
sys.path[0] = os.path.dirname(script)
prof = cProfile.Profile()
prof.enable()
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit:
    pass
finally:
    prof.disable()
    prof.dump_stats(out)
"""
OURS = r"/(core|plugins|cli)/[a-z_/]+\.py"


def profile(bench):
    """Where the time goes: wall-time split and -X importtime of nsinit exec
    (and pyrunc), cProfile of the API loop and of the CLIs."""
    import cProfile
    import io
    import pstats
    out = []

    def fresh(cmd):
        return [bench.uid("prof") if c == "ID" else c for c in cmd]

    def timed(cmd, n=15):
        ts = [r.ms for r in (bench.spawn(fresh(cmd)) for _ in range(n)) if r.ok]
        return statistics.median(ts) if ts else float("nan")

    def stats_text(st, sort, restrict, n):
        buf = io.StringIO()
        st.stream = buf
        st.sort_stats(sort).print_stats(*restrict, n)
        keep = [ln for ln in buf.getvalue().splitlines()
                if ln.strip() and not ln.lstrip().startswith(("Ordered by", "List reduced"))
                and not ln.rstrip().endswith(".prof")]
        return ["  " + ln.replace(REPO + "/", "") for ln in keep]

    ns_root = os.path.join(bench.tmp, "state", "nsinit")
    commands = {}
    if bench.nsinit:
        commands["nsinit exec /bin/true"] = [
            bench.nsinit, "--root", ns_root, "exec", "--id", "ID", "--config",
            bench.nsinit_config, "/bin/true"]
    if bench.rt("pyrunc"):
        commands["pyrunc run"] = bench.runtimes["pyrunc"] + [
            "run", "--bundle", bench.bundles.get("pyrunc-true", ["/bin/true"]), "ID"]

    out.append("== wall time split (medians of 15)")
    rows = [("python -I -S -c pass", [sys.executable, "-I", "-S", "-c", "pass"]),
            ("python -c pass (site, .pth files)", [sys.executable, "-c", "pass"]),
            ("python -c 'import libcontainer'", [sys.executable, "-c", "import libcontainer"]),
            ("python -c 'import ...cli.nsinit'",
             [sys.executable, "-c", "import libcontainer.cli.nsinit"])]
    if bench.nsinit:
        rows.append(("nsinit --help", [bench.nsinit, "--help"]))
    if bench.rt("pyrunc"):
        rows.append(("python -c 'import ...cli.pyrunc'",
                     [sys.executable, "-c", "import libcontainer.cli.pyrunc"]))
        rows.append(("pyrunc --version", [bench.runtimes["pyrunc"][0], "--version"]))
    rows += list(commands.items())
    for label, cmd in rows:
        out.append(f"  {label:<40} {timed(cmd):7.1f} ms")

    for label, cmd in commands.items():
        out.append(f"== -X importtime of {label}: top-level imports by cumulative time "
                   f"(medians of 7 runs, ms)")
        agg, totals = {}, []
        for _ in range(7):
            r = subprocess.run([sys.executable, "-X", "importtime", *fresh(cmd)],
                               capture_output=True, text=True)
            total = 0
            for line in r.stderr.splitlines():
                if not line.startswith("import time:") or "cumulative" in line:
                    continue
                self_us, cum, name = line[len("import time:"):].split("|", 2)
                total += int(self_us)
                if not name[1:].startswith(" "):            # top level
                    agg.setdefault(name.strip(), []).append(int(cum))
            totals.append(total)
        out.append(f"  all imports: {statistics.median(totals) / 1000:.1f} ms")
        for name, v in sorted(agg.items(), key=lambda kv: -statistics.median(kv[1]))[:15]:
            out.append(f"  {statistics.median(v) / 1000:7.1f}  {name}")

    n = 40
    out.append(f"== cProfile of the in-process API, {n} containers")
    bench.api.run()
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    for _ in range(n):
        bench.api.run()
    pr.disable()
    out.append(f"  {(time.perf_counter() - t0) * 1000 / n:.1f} ms per container under cProfile "
               f"(cumtime / {n} = per container)")
    st = pstats.Stats(pr)
    out.append("  -- library functions by cumulative time")
    out += stats_text(st, "cumulative", [OURS], 25)
    out.append("  -- everything by own time")
    out += stats_text(st, "tottime", [], 12)

    for label, cmd in commands.items():
        out.append(f"== cProfile of {label} (one run; library functions by cumulative time)")
        pfile = os.path.join(bench.tmp, "cli.prof")
        subprocess.run([sys.executable, "-c", PROFILE_WRAPPER, pfile, *fresh(cmd)],
                       capture_output=True)
        try:
            st = pstats.Stats(pfile)
        except OSError:
            out.append("  (no profile written)")
            continue
        out.append(f"  total {st.total_tt * 1000:.1f} ms")
        out += stats_text(st, "cumulative", [OURS], 20)
    return "\n".join(out)


# --------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="few runs: a smoke check")
    p.add_argument("--runs", type=int, default=None, help="measured rounds (default 30)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up rounds (default 3)")
    p.add_argument("--install", action="store_true",
                   default=os.environ.get("BENCH_INSTALL", "") not in ("", "0"),
                   help="apt-get install runc and crun if missing (or BENCH_INSTALL=1)")
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    p.add_argument("--skip", default="", help="comma list of: latency,throughput,memory,limit")
    p.add_argument("--profile", action="store_true",
                   help="also profile nsinit exec and the API (importtime, cProfile)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.runs is None:
        a.runs = 5 if a.quick else 30
    if a.warmup is None:
        a.warmup = 1 if a.quick else 3
    a.tp_total = (lambda c: max(2 * c, 8)) if a.quick else (lambda c: max(4 * c, 48))
    a.tp_max_s = 2 if a.quick else 6      # per runtime and pass: a slow one runs fewer
    return a


def main():
    args = parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if os.geteuid() != 0:
        print("bench: needs root (real namespaces and cgroups)", file=sys.stderr)
        return 1

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    bench = Bench(args)
    bench.info["loadavg_start"] = os.getloadavg()
    skip = set(filter(None, args.skip.split(",")))
    try:
        bench.setup()
        for name, fn in (("latency", bench.latency), ("throughput", bench.throughput),
                         ("memory", bench.memory), ("limit", bench.min_memory)):
            if name in skip:
                continue
            try:
                fn()
            except Exception:       # a bug in one section must not lose the others
                import traceback
                traceback.print_exc()
                bench.info.setdefault("section_errors", {})[name] = \
                    traceback.format_exc().strip().splitlines()[-1]
        bench.ratios()
        bench.check_targets()
        text = bench.table()
        print(text)
        prof = profile(bench) if args.profile else ""
        if prof:
            print()
            print(prof)
        if not args.no_save:
            path = bench.save(text + ("\n\n" + prof if prof else ""))
            print(f"\nresults: {os.path.relpath(path, os.getcwd())}")
    except KeyboardInterrupt:
        print("bench: interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        bench.cleanup()
        bench.log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
