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

Modules: runners (timing, statistics, host), contenders (bundles, configs,
the API), scenarios (the four sections), report (table, targets, JSON),
profiling (--profile).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from contenders import Api, Bundles, worker
from profiling import profile
from report import Report
from runners import PREFIX, REPO, cgroup_mounts, Run, Series, Spawner, console_script, install_runtimes, kill_cgroup_procs, remove_cgroups, tool_version
from scenarios import Scenarios


V1VIEW = os.path.join(os.path.dirname(REPO), "shared", "tools", "v1view")


def _hybrid():
    """A cgroup2 mount at /sys/fs/cgroup/unified: crun refuses such a host."""
    return any(m.endswith("/unified") and t == "cgroup2" for m, t, _ in cgroup_mounts())


class Bench(Scenarios, Report):
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
        self.state_roots = {}   # name -> its --root
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
        # every runtime's state root on a tmpfs, as engines keep it (/run):
        # here /tmp and /run are ext4, where a state file's rename costs ~0.4 ms
        state = os.path.join(self.tmp, "state")
        os.makedirs(state)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0711,size=64m",
                                  f"{PREFIX}{self.token}", state]).returncode == 0
        self.info["state_roots"] = "tmpfs" if mounted else "the file system of /tmp"
        if self.args.install:
            install_runtimes(self.log)
        for name in ("pyrunc", "runc", "crun"):
            path = console_script(name) if name == "pyrunc" else shutil.which(name)
            root = os.path.join(self.tmp, "state", name)
            if path is None:
                self.rt_error[name] = f"{name} not installed"
                continue
            # crun refuses a cgroup-hybrid host; v1view hides the unified mount
            # in a private mount namespace (it adds an unshare + sh exec)
            wrap = [V1VIEW] if name == "crun" and _hybrid() and os.path.exists(V1VIEW) else []
            self.runtimes[name] = [*wrap, path, "--root", root]
            self.state_roots[name] = root
            self.info[f"{name}_version"] = tool_version(path)
            if wrap:
                self.info["crun_note"] = "crun runs under shared/tools/v1view (hybrid host)"
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
            r = self.spawn(self.runtimes[name] + ["run", "--bundle", bundle, *extra,
                                                  self.uid(tag)])
            r.parts = {"cpu": r.cpu_ms}
            return r
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
            root = self.state_roots[name]
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
        if self.info.get("state_roots") == "tmpfs":
            subprocess.run(["umount", "--lazy", state], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)



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
