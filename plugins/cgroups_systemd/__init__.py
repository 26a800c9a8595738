"""The systemd cgroup driver: systemd makes the container's cgroup, a
transient ``.scope`` unit with ``Delegate=yes`` in a slice, and holds the
limits it knows as unit properties (so that a ``daemon-reload`` does not
reset them); the v2 driver's code, which this manager extends, writes every
limit to the cgroup's files too (exact values, as runc), and does pause,
stats and the device filter. cgroup v2 only.

A scope is born with its first process. The cgroup must exist with its
limits before the init is cloned (``pre_clone``), so a short-lived holder
process starts the scope; the init takes its place in ``add_task``.
"""
import os
import re
import signal

from libcontainer import hookimpl
from libcontainer.errors import ConfigError
from libcontainer.plugins.cgroups import common
from libcontainer.plugins.cgroups.common import CgroupError
from libcontainer.plugins import cgroups_v2

NAME = "systemd"
INFINITY = (1 << 64) - 1
_UNIT = re.compile(r"^[A-Za-z0-9:_.\\-]+$")
# unified keys systemd owns as properties (it would rewrite these files)
_UNIFIED = {"memory.min": "MemoryMin", "memory.low": "MemoryLow", "memory.high": "MemoryHigh",
            "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax",
            "pids.max": "TasksMax", "cpu.weight": "CPUWeight"}


def expand_slice(slice_):
    """systemd's cgroup path of a slice: ``a-b-c.slice`` lives in
    ``/a.slice/a-b.slice/a-b-c.slice``; ``-.slice`` is the root."""
    if not slice_.endswith(".slice") or "/" in slice_ or not _UNIT.match(slice_):
        raise ValueError(f"{slice_!r} is not a slice name (like system.slice)")
    name = slice_[:-len(".slice")]
    if name == "-":
        return "/"
    if not name or name.startswith("-") or name.endswith("-") or "--" in name:
        raise ValueError(f"{slice_!r} is not a valid slice name (dashes separate nested slices)")
    parts = name.split("-")
    return "".join(f"/{'-'.join(parts[:i + 1])}.slice" for i in range(len(parts)))


def unit_and_slice(path):
    """(unit, slice, cgroup path) of the container's cgroup path: its last
    component is the scope (".scope" added if missing), the one before it
    the slice, which must be where systemd puts that slice."""
    parts = path.strip("/").split("/")
    unit = parts[-1] if parts[-1].endswith(".scope") else parts[-1] + ".scope"
    if len(parts) < 2:
        raise ValueError(f"{path!r} has no slice: the systemd driver needs one (like "
                         f"/system.slice/NAME.scope)")
    slice_ = parts[-2]
    expanded = expand_slice(slice_)
    if len(parts) > 2 and "/" + "/".join(parts[:-1]) != expanded:
        raise ValueError(f"{path!r}: systemd puts {slice_} at {expanded}")
    if not _UNIT.match(unit) or len(unit) > 255:
        raise ValueError(f"{unit!r} is not a valid systemd unit name")
    return unit, slice_, os.path.join(expanded, unit)


class Driver:
    name = NAME

    def check(self, cgroup):
        if common.v2_mount() is None:
            raise ConfigError(f"cgroups.driver: the systemd cgroup driver needs cgroup v2 (this "
                              f"host is {common.mode()}; systemd on cgroup v1 is not supported)")
        if os.geteuid() != 0:
            raise ConfigError("cgroups.driver: the systemd cgroup driver needs root (a user's "
                              "systemd instance is not supported)")
        field = "cgroups.path" if cgroup.path else "cgroups.parent"
        if not cgroup.path and not cgroup.parent:
            raise ConfigError("cgroups.parent: the systemd driver needs a slice (like "
                              "system.slice)")
        try:
            unit_and_slice(common.cgroup_path(cgroup, "x"))
        except ValueError as e:
            raise ConfigError(f"{field}: {e}") from None
        cgroups_v2.Driver().check(cgroup)

    def new(self, path):
        unit, slice_, cgpath = unit_and_slice(path)
        return Manager(cgpath, common.v2_mount() or common.ROOT, unit, slice_)

    def load(self, stash):
        return Manager(stash["path"], stash["root"], stash["unit"], stash["slice"],
                       stash.get("owned", True), stash.get("holder"))


class Manager(cgroups_v2.Manager):
    def __init__(self, path, root, unit, slice_, owned=False, holder=None):
        super().__init__(path, root, [], owned=owned)
        self.unit, self.slice, self.holder = unit, slice_, holder

    def stash(self):
        return {**super().stash(), "driver": NAME, "unit": self.unit, "slice": self.slice,
                "holder": self.holder}

    # -- creating -------------------------------------------------------------------
    def apply(self, cgroup):
        """Start the scope around a holder process, then let the v2 code
        write the files and the device filter."""
        props = [("Description", ("s", f"libcontainer container {self.unit}")),
                 ("Slice", ("s", self.slice)), ("Delegate", ("b", True)),
                 ("DefaultDependencies", ("b", False)),
                 *[(f"{c}Accounting", ("b", True)) for c in ("Memory", "CPU", "Tasks", "IO")],
                 *_properties(cgroup.resources, self.dir)]
        from .systemd import Bus
        with Bus(f"cgroups.path {self.path}") as bus:
            if bus.exists(self.unit) or os.path.isdir(self.dir):
                raise CgroupError(f"cgroups.path: {self.path}: the systemd unit {self.unit} "
                                  f"already exists")
            holder = _holder()
            try:
                bus.start_scope(self.unit, [*props, ("PIDs", ("au", [holder]))])
                self.owned = True       # from here remove() kills and stops it
                self.holder = holder
                super().apply(cgroup)
            except BaseException:
                _end(holder)
                raise

    def claim(self):
        pass            # systemd made the cgroup

    def _enable_controllers(self):
        pass            # Delegate=yes: systemd enables them down to the scope

    def add_task(self, pid):
        super().add_task(pid)
        # the first process in: the holder may go (checked: its pid may be reused)
        if self.holder and self.holder in common.read_pids(self.dir) \
                and _is_holder(self.holder):
            _end(self.holder)

    def update(self, resources):
        from .systemd import Bus
        with Bus(f"cgroups.path {self.path}") as bus:
            bus.set_properties(self.unit, _properties(resources, self.dir))
        super().update(resources)

    # -- the end ------------------------------------------------------------------------
    def remove(self):
        """Kill and thaw (v2 code), then stop the unit: systemd removes the
        cgroup. A unit this container did not start is left alone."""
        if not self.owned:
            return
        super().remove()
        from .systemd import Bus
        try:
            bus = Bus(f"cgroups.path {self.path}")
        except CgroupError:
            if os.path.isdir(self.dir):
                raise
            return      # the scope ended with its processes: nothing of ours is left
        with bus:
            bus.stop(self.unit)     # also forgets a failed one (an OOM kill)
        common.rmdir_tree(self.dir)     # normally gone with the unit


# -- the holder: the scope's first process, until the init joins ------------------------

_HOLDER_NAME = b"lct-scope-hold"


def _holder():
    """A child that only waits to be killed (and dies with the runtime)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.closerange(0, 1 << 16)   # hold no pipe or socket of the runtime open
            from libcontainer.linux import misc
            misc.prctl(misc.PR_SET_PDEATHSIG, signal.SIGKILL)
            misc.set_name(_HOLDER_NAME.decode())
            while True:
                signal.pause()
        finally:
            os._exit(0)
    return pid


def _is_holder(pid):
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip() == _HOLDER_NAME
    except OSError:
        return False


def _end(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass        # another process's child: its parent reaps it
    except ProcessLookupError:
        pass


# -- resources as unit properties -----------------------------------------------------

def _properties(r, directory):
    """The unit properties for the limits systemd knows. The files are
    written too, with the exact values (as runc): systemd keeps a CPU quota
    with 1% precision, and rewrites the files only on a reload."""
    props = []

    def t(name, value):
        props.append((name, ("t", INFINITY if value in (-1, "max") else int(value))))

    if r.memory:
        t("MemoryMax", r.memory)
    if r.memory_reservation:
        t("MemoryLow", r.memory_reservation)
    if r.memory_swap:
        t("MemorySwapMax", common.swap_to_v2(r.memory_swap, r.memory))
    if r.cpu_weight or r.cpu_shares:
        t("CPUWeight", r.cpu_weight or common.shares_to_weight(r.cpu_shares))
    if r.cpu_quota or r.cpu_period:
        quota, period = (common.read(directory, "cpu.max") or "max 100000").split()
        quota = r.cpu_quota or (-1 if quota == "max" else int(quota))
        period = r.cpu_period or int(period)
        if quota == -1:
            t("CPUQuotaPerSecUSec", -1)
        else:
            # systemd keeps the quota per second with 1% (10 ms) precision: round up
            per_sec = -(-quota * 1000000 // period)
            t("CPUQuotaPerSecUSec", -(-per_sec // 10000) * 10000)
        t("CPUQuotaPeriodUSec", period)
    if r.cpuset_cpus:
        props.append(("AllowedCPUs", ("ay", _bitmask(r.cpuset_cpus))))
    if r.cpuset_mems:
        props.append(("AllowedMemoryNodes", ("ay", _bitmask(r.cpuset_mems))))
    if r.pids_limit:
        t("TasksMax", r.pids_limit)
    if r.blkio_weight:
        t("IOWeight", common.blkio_to_io_weight(r.blkio_weight))
    for key, value in sorted(r.unified.items()):
        if key in _UNIFIED and (value.strip() == "max" or value.strip().isdigit()):
            t(_UNIFIED[key], value.strip())
    return props


def _bitmask(cpus):
    """'0-2,9' -> systemd's byte array, bit n of byte n // 8 for CPU n."""
    out = bytearray()
    for part in filter(None, cpus.replace(" ", "").split(",")):
        lo, _, hi = part.partition("-")
        for n in range(int(lo), int(hi or lo) + 1):
            while len(out) <= n // 8:
                out.append(0)
            out[n // 8] |= 1 << (n % 8)
    return bytes(out)


@hookimpl
def libcontainer_register(registry):
    registry.add("cgroup_driver", NAME, Driver())
