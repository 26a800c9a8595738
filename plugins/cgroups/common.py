"""What the cgroup drivers share: finding the hierarchies, reading and
writing controller files with errors that name the setting, removing a
cgroup whose processes linger, and the v1 -> v2 value conversions.

The manager interface each driver implements (after youki's)::

    driver = registry.get("cgroup_driver", "v1")
    driver.check(cgroup_config)         # ConfigError if this host cannot do it
    m = driver.new(path)                # nothing created yet
    m = driver.load(stash)              # from container.stash["cgroups"]
    m.apply(cgroup_config)              # create the dirs, write resources/devices
    m.update(resources)                 # new limits for a running container
    m.add_task(pid)
    m.freeze(); m.thaw()
    m.stats() -> dict; m.pids() -> list[int]
    m.remove()                          # kill what lingers, thaw, rmdir
    m.stash() -> dict                   # JSON state to find the cgroup again
"""
import errno
import os
import re
import select
import signal
import time

from libcontainer import configs
from libcontainer.errors import ConfigError, LibcontainerError

ROOT = "/sys/fs/cgroup"
DRIVER_ENV = "LIBCONTAINER_CGROUP_DRIVER"
# values at or above this in v1 limit files mean "unlimited"
V1_UNLIMITED = 0x7FFFFFFFFFFFF000


class CgroupError(LibcontainerError):
    """A cgroup operation failed; the message names the setting or file."""


# -- where the hierarchies are ------------------------------------------------

_mounts_cache = {}


def mounts():
    """{mountpoint: (fstype, root, super options)} of the visible cgroup
    mounts: the last mount on a path hides earlier ones. Parsed once per
    mount namespace: the runtime never mounts cgroup hierarchies itself."""
    ns = os.readlink("/proc/self/ns/mnt")
    if ns not in _mounts_cache:
        _mounts_cache.clear()
        _mounts_cache[ns] = _parse_mounts()
    return _mounts_cache[ns]


def _parse_mounts():
    seen = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            point, root = _unescape(parts[4]), _unescape(parts[3])
            fstype, opts = parts[sep + 1], parts[sep + 3] if len(parts) > sep + 3 else ""
            seen[point] = (fstype, root, opts)
    return {p: v for p, v in seen.items() if v[0] in ("cgroup", "cgroup2")}


def _unescape(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def v1_hierarchies():
    """{controller: (mountpoint, mount root)} of the mounted v1 controllers
    (named hierarchies such as name=systemd are left out)."""
    out = {}
    for point, (fstype, root, opts) in mounts().items():
        if fstype != "cgroup":
            continue
        for opt in opts.split(","):
            if opt in V1_CONTROLLERS and opt not in out:
                out[opt] = (point, root)
    return out


def v1_mounts():
    """{key: mountpoint} of every hierarchy a v1 container joins, as runc:
    each controller, each named hierarchy ("name=systemd") and, on a hybrid
    host, the cgroup2 one ("unified"). Comounted controllers share a
    mountpoint."""
    out = {c: point for c, (point, _root) in v1_hierarchies().items()}
    for point, (fstype, _root, opts) in mounts().items():
        if fstype == "cgroup":
            for opt in opts.split(","):
                if opt.startswith("name=") and opt not in out:
                    out[opt] = point
        elif fstype == "cgroup2" and "unified" not in out:
            out["unified"] = point
    return out


def v2_mount():
    """The cgroup2 mountpoint when it is the unified hierarchy at
    /sys/fs/cgroup, else None."""
    entry = mounts().get(ROOT)
    return ROOT if entry and entry[0] == "cgroup2" else None


def mode():
    """'unified', 'hybrid', 'legacy' or 'none', by filesystem type."""
    types = {fstype for fstype, _, _ in mounts().values()}
    if v2_mount():
        return "unified"
    if v1_hierarchies():
        return "hybrid" if "cgroup2" in types else "legacy"
    return "none"


def detect():
    """The driver for this host: v2 on a unified host, v1 on a legacy or
    hybrid one (where the v2 hierarchy has no controllers to speak of)."""
    m = mode()
    if m == "unified":
        return "v2"
    if m in ("hybrid", "legacy"):
        return "v1"
    raise ConfigError("cgroups: no cgroup hierarchy is mounted on this host")


V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                  "pids", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc")


# fields whose 0 (or False) is a value to write: None leaves them alone
OPTIONAL = ("cpu_burst", "cpu_idle", "memory_swappiness", "memory_use_hierarchy")


def is_set(resources, field):
    value = getattr(resources, field)
    return value is not None if field in OPTIONAL else bool(value)


def controllers_needed(cgroup, v2=False):
    """{controller: the config field that needs it}."""
    r = cgroup.resources
    need = {}
    for field, ctrl in (("cpu_burst", "cpu"), ("cpu_idle", "cpu"), ("cpu_rt_period", "cpu"),
                        ("cpu_rt_runtime", "cpu"), ("memory_swappiness", "memory"),
                        ("memory_use_hierarchy", "memory"),
                        ("blkio_leaf_weight", "io" if v2 else "blkio"),
                        ("net_cls_classid", "net_cls"), ("net_prio_ifpriomap", "net_prio"),
                        ("rdma", "rdma"), ("memory", "memory"), ("memory_reservation", "memory"),
                        ("memory_swap", "memory"), ("oom_kill_disable", "memory"),
                        ("cpu_shares", "cpu"), ("cpu_weight", "cpu"), ("cpu_quota", "cpu"),
                        ("cpu_period", "cpu"), ("cpuset_cpus", "cpuset"),
                        ("cpuset_mems", "cpuset"), ("pids_limit", "pids"),
                        ("blkio_weight", "io" if v2 else "blkio"),
                        ("blkio_weight_device", "io" if v2 else "blkio"),
                        ("blkio_throttle_read_bps_device", "io" if v2 else "blkio"),
                        ("blkio_throttle_write_bps_device", "io" if v2 else "blkio"),
                        ("blkio_throttle_read_iops_device", "io" if v2 else "blkio"),
                        ("blkio_throttle_write_iops_device", "io" if v2 else "blkio"),
                        ("hugetlb_limit", "hugetlb")):
        if is_set(r, field) and ctrl not in need:
            need[ctrl] = f"cgroups.resources.{field}"
    if not v2 and not cgroup.allow_all_devices:
        need.setdefault("devices", "cgroups.allowed_devices")
    if v2:
        for key in r.unified:
            need.setdefault(key.split(".", 1)[0], f"cgroups.resources.unified.{key}")
    return need


def device_rules(cgroup):
    """The device rules to enforce, or None to allow every device."""
    if cgroup.allow_all_devices:
        return None
    if cgroup.allowed_devices is None:
        return list(configs.DEFAULT_ALLOWED_DEVICES)
    return list(cgroup.allowed_devices)


def v1_rule(d):
    """A rule as devices.allow/devices.deny want it: "c 1:3 rwm"."""
    major = "*" if d.major == -1 else d.major
    minor = "*" if d.minor == -1 else d.minor
    return f"{d.type} {major}:{minor} {d.permissions}"


# -- the path ---------------------------------------------------------------

def cgroup_path(cgroup, container_id):
    """The container's absolute cgroup path: ``path``, or parent/name
    (default parent /libcontainer, default name the container id)."""
    if cgroup.path:
        return os.path.normpath(cgroup.path)
    parent = cgroup.parent or "/libcontainer"
    return os.path.normpath("/" + parent.strip("/") + "/" + (cgroup.name or container_id))


# -- files ------------------------------------------------------------------

def write(directory, name, value, setting):
    """Write `value` to a controller file; a refusal becomes one line naming
    the config `setting`. Never creates a file: on a tmpfs that would
    "succeed" silently."""
    if directory is None:
        raise CgroupError(f"{setting}: the cgroup controller of {name} is not available "
                          f"on this host")
    path = os.path.join(directory, name)
    text = str(value)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CgroupError(f"{setting}: {name} does not exist in {directory} "
                          f"(controller not enabled or not supported by this kernel)") from None
    except OSError as e:
        raise CgroupError(f"{setting}: cannot open {path}: {e.strerror}") from None
    try:
        os.write(fd, text.encode())
    except OSError as e:
        raise CgroupError(f"{setting}: writing {text!r} to {name}: {e.strerror}") from None
    finally:
        os.close(fd)


def read(directory, name, default=None):
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read()
    except OSError:
        return default


def read_int(directory, name, default=None):
    """An integer file; "max" reads as None (unlimited)."""
    text = read(directory, name)
    if text is None:
        return default
    text = text.strip()
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return default


def read_keyed(directory, name):
    """A "key value" per line file as {key: int}."""
    out = {}
    for line in (read(directory, name) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def read_pids(directory):
    return [int(p) for p in (read(directory, "cgroup.procs") or "").split()]


def v1_limit(value):
    return None if value is None or value >= V1_UNLIMITED else value


def missing_dirs(root, path):
    """The directories makedirs(root, path) would create now, outermost
    first: saved before they are made, so a runtime killed meanwhile leaves
    nothing its teardown cannot find."""
    out, current = [], root
    for part in path.strip("/").split("/"):
        current = os.path.join(current, part)
        if out or not os.path.isdir(current):
            out.append(current)
    return out


def makedirs(root, path):
    """Create `path` (absolute cgroup path) under `root`; return the
    directories created, outermost first."""
    created = []
    for _attempt in range(5):
        current = root
        try:
            for part in path.strip("/").split("/"):
                current = os.path.join(current, part)
                try:
                    os.mkdir(current, 0o755)
                    created.append(current)
                except FileExistsError:
                    pass
            return created
        except FileNotFoundError:
            continue    # another container removed a shared parent meanwhile
        except OSError as e:
            raise CgroupError(f"cgroups.path: cannot create cgroup {current}: "
                              f"{e.strerror}") from None
    raise CgroupError(f"cgroups.path: cannot create cgroup {current}: its parent keeps vanishing")


def subtree_pids(directory):
    """Pids in the cgroup and all its sub-cgroups (a v2 inner node holds none
    itself)."""
    pids = set()
    for top, _dirs, _files in os.walk(directory):
        pids.update(read_pids(top))
    return sorted(pids)


def check_adoptable(directory, frozen, setting="cgroups.path"):
    """runc's rule for a cgroup that exists before the container: taken over
    only when no process is anywhere in its subtree (destroying it kills
    what is there) and it is not frozen (the init would hang). `frozen`
    tells whether the directory is frozen."""
    pids = subtree_pids(directory)
    if pids:
        raise CgroupError(f"{setting}: container's cgroup is not empty: {len(pids)} "
                          f"process(es) found in {directory}")
    if frozen(directory):
        raise CgroupError(f"{setting}: container's cgroup {directory} is unexpectedly frozen")


def sub_path(sub):
    """A sub-cgroup path given to join_sub, relative, checked: no '..' (it
    could leave the container's cgroup), not empty."""
    parts = [p for p in sub.split("/") if p not in ("", ".")]
    if not parts or ".." in sub.split("/"):
        raise CgroupError(f"cgroup {sub!r}: not a sub-cgroup path of the container's cgroup "
                          f"(no '..')")
    return "/".join(parts)


def join_dir(directory, pid, what):
    """Put `pid` into the existing cgroup `directory` (runc: the sub-cgroup
    must exist)."""
    if not os.path.isdir(directory):
        raise CgroupError(f"{what}: cgroup {directory} does not exist")
    write(directory, "cgroup.procs", pid, f"{what}: adding pid {pid} to {directory}")


# -- removal ---------------------------------------------------------------

def kill_all(directories):
    """SIGKILL every process in the cgroups (they may be frozen: the caller
    thaws)."""
    for d in directories:
        for pid in read_pids(d):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def kill_subtree(directory):
    """SIGKILL every process in the cgroup and its sub-cgroups."""
    kill_all([top for top, _dirs, _files in os.walk(directory)])


def rmdir_tree(directory, before_retry=lambda: None, timeout=5.0):
    """Remove a cgroup and any sub-cgroups, deepest first, retrying EBUSY
    while killed processes finish exiting."""
    if not os.path.isdir(directory):
        return
    subdirs = []
    for top, dirs, _ in os.walk(directory):
        subdirs.extend(os.path.join(top, d) for d in dirs)
    deadline = time.monotonic() + timeout
    delay = 0.005
    for d in sorted(subdirs, key=lambda p: p.count("/"), reverse=True) + [directory]:
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.EAGAIN) or time.monotonic() > deadline:
                    raise CgroupError(f"cannot remove cgroup {d}: {e.strerror}") from None
                before_retry()
                time.sleep(delay)
                delay = min(delay * 2, 0.1)


def rmdir_parents(created):
    """Remove the parent directories this container created, if now empty
    (another container may still use them: then they stay)."""
    for d in reversed(created):
        try:
            os.rmdir(d)
        except OSError:
            pass


def wait_file(path, done, timeout=10.0):
    """Wait until done(content of `path`) is true, woken by the kernel's
    notification on the file (cgroup.events); return the final test."""
    deadline = time.monotonic() + timeout
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLPRI | select.POLLERR)
        while True:
            os.lseek(fd, 0, os.SEEK_SET)
            if done(os.read(fd, 4096).decode()):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.poll(min(left, 0.1) * 1000)
    finally:
        os.close(fd)


# -- v1 -> v2 conversions (as crun documents them) -------------------------------

def shares_to_weight(shares):
    """cpu.shares [2-262144] -> cpu.weight [1-10000]."""
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    return 1 + ((shares - 2) * 9999) // 262142


def weight_to_shares(weight):
    """cpu.weight [1-10000] -> cpu.shares [2-262144] (the inverse)."""
    return 2 + ((weight - 1) * 262142) // 9999


def blkio_to_io_weight(weight):
    """blkio.weight [10-1000] -> io.weight [1-10000]."""
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(memory_swap, memory):
    """v1 memory+swap limit -> v2 memory.swap.max (swap alone)."""
    if memory_swap == -1:
        return "max"
    return max(memory_swap - memory, 0)


def rdma_lines(rdma):
    """[(device, "dev hca_handle=N hca_object=M")] for rdma.max."""
    keys = (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object"))
    return [(dev, " ".join([dev] + [f"{name}={limits[key]}" for key, name in keys
                                    if key in limits]))
            for dev, limits in sorted(rdma.items())]


def fmt_limit(value, v2):
    """-1 means unlimited: "max" on v2, -1 on v1."""
    if value == -1:
        return "max" if v2 else -1
    return value


def dev(major, minor):
    return f"{major}:{minor}"


# -- the common stats structure --------------------------------------------------

def empty_stats():
    """The structure both drivers fill: the same keys on v1 and v2. Limits
    are None when unlimited; a value the kernel does not report is None."""
    return {
        "cpu": {"usage_ns": 0, "user_ns": 0, "system_ns": 0, "per_cpu_ns": [],
                "periods": 0, "throttled_periods": 0, "throttled_ns": 0},
        "memory": {"usage": 0, "max_usage": None, "limit": None, "cache": 0, "rss": 0,
                   "swap_usage": 0, "swap_limit": None, "failcnt": 0,
                   "oom_events": 0, "oom_kills": 0},
        "pids": {"current": 0, "limit": None},
        "blkio": {"read_bytes": 0, "write_bytes": 0, "read_ops": 0, "write_ops": 0,
                  "devices": []},
        "hugetlb": {},
    }


def blkio_device(stats, major, minor):
    for d in stats["blkio"]["devices"]:
        if (d["major"], d["minor"]) == (major, minor):
            return d
    d = {"major": major, "minor": minor, "read_bytes": 0, "write_bytes": 0,
         "read_ops": 0, "write_ops": 0}
    stats["blkio"]["devices"].append(d)
    return d


def blkio_totals(stats):
    for key in ("read_bytes", "write_bytes", "read_ops", "write_ops"):
        stats["blkio"][key] = sum(d[key] for d in stats["blkio"]["devices"])

