"""The contenders' inputs: OCI bundles, library configs, the in-process API
(and its worker processes for the throughput section)."""
import json
import os
import shutil
import sys
import time

from runners import NAMESPACES, Run


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
