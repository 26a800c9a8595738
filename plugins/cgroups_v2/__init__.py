"""The cgroup v2 driver: one directory in the unified hierarchy, v1-style
values converted as crun documents them, device rules as an eBPF program
attached to the cgroup, pause through cgroup.freeze."""
import os

from libcontainer import hookimpl
from libcontainer.errors import ConfigError
from libcontainer.plugins.cgroups import common
from libcontainer.plugins.cgroups.common import CgroupError, write

NAME = "v2"
R = "cgroups.resources."


# v1-only settings, refused by name (runc has no v2 mapping for them either)
_REFUSED = (
    ("cpu_rt_period", "cgroup v2 has no real-time group scheduling (cpu.rt_period_us)"),
    ("cpu_rt_runtime", "cgroup v2 has no real-time group scheduling (cpu.rt_runtime_us)"),
    ("memory_swappiness", "cgroup v2 has no per-cgroup swappiness"),
    ("memory_use_hierarchy", "cgroup v2 is always hierarchical (only true is accepted)"),
    ("blkio_leaf_weight", "cgroup v2 has no leaf weight (blkio.leaf_weight)"),
    ("net_cls_classid", "cgroup v2 has no net_cls controller"),
    ("net_prio_ifpriomap", "cgroup v2 has no net_prio controller"),
)


class Driver:
    name = NAME

    def check(self, cgroup):
        """Raise ConfigError when this host cannot give `cgroup` what it asks."""
        root = common.v2_mount()
        if root is None:
            raise ConfigError(f"cgroups.driver: cgroup v2 is not available on this host (it is "
                              f"{common.mode()}: {common.ROOT} is not the unified cgroup2 "
                              f"hierarchy)")
        # "cgroup.*" files (unified keys) are core files, there in every cgroup
        available = set((common.read(root, "cgroup.controllers") or "").split()) | {"cgroup"}
        for ctrl, field in common.controllers_needed(cgroup, v2=True).items():
            if ctrl not in available:
                raise ConfigError(f"{field}: the {ctrl} cgroup controller is not available "
                                  f"on this host")
        r = cgroup.resources
        for field, why in _REFUSED:
            if common.is_set(r, field) and not (field == "memory_use_hierarchy"
                                                and r.memory_use_hierarchy):
                raise ConfigError(f"{R}{field}: {why}")
        # only non-root cgroups have these files: the kernel version tells
        for field, name, since in (("cpu_burst", "cpu.max.burst", (5, 14)),
                                   ("cpu_idle", "cpu.idle", (5, 15))):
            if getattr(r, field) is not None and _kernel() < since:
                raise ConfigError(f"{R}{field}: this kernel has no {name} (Linux "
                                  f"{since[0]}.{since[1]}+)")
        if r.memory_swap > 0 and r.memory <= 0:
            raise ConfigError(f"{R}memory_swap: needs {R}memory on cgroup v2 "
                              f"(swap = memory_swap - memory)")

    def new(self, path):
        root = common.v2_mount() or common.ROOT
        return Manager(path, root, common.missing_dirs(root, path), owned=False)

    def load(self, stash):
        return Manager(stash["path"], stash["root"], stash.get("created", []),
                       stash.get("owned", True))


def _kernel():
    """(major, minor) of the running kernel."""
    release = os.uname().release.split("-")[0].split(".")
    return tuple(int(x) for x in release[:2] if x.isdigit())


def _frozen(d):
    return (common.read(d, "cgroup.freeze") or "0").strip() == "1"


class Manager:
    def __init__(self, path, root, created, owned=True):
        self.path = path
        self.root = root
        self.dir = os.path.join(root, path.lstrip("/"))
        self.created = created      # directories this container made, outermost first
        self.owned = owned          # claim() passed: the cgroup is the container's

    def stash(self):
        return {"driver": NAME, "path": self.path, "root": self.root, "created": self.created,
                "owned": self.owned}

    # -- creating -------------------------------------------------------------
    def apply(self, cgroup):
        if not self.owned:
            self.claim()
        self._enable_controllers()
        self._resources(cgroup.resources, update=False)
        rules = common.device_rules(cgroup)
        if rules is not None:
            from .devicefilter import load_and_attach
            try:
                load_and_attach(self.dir, rules)
            except OSError as e:
                raise CgroupError(f"cgroups.allowed_devices: cannot install the device filter: "
                                  f"{e.filename}: {e.strerror}") from None

    def claim(self):
        """Make the cgroup, or take over an existing one only if no process
        is in its subtree and it is not frozen (runc's rule); then it is the
        container's (``owned``) and remove() may kill what is in it. A driver
        that has the cgroup made by someone else (systemd) overrides this."""
        if os.path.isdir(self.dir):
            common.check_adoptable(self.dir, _frozen)
        self.created, self.owned = common.makedirs(self.root, self.path), True
        # cgroup.freeze reads 0 in a child of a frozen cgroup: cgroup.events tells
        if "frozen 1" in (common.read(self.dir, "cgroup.events") or ""):
            raise CgroupError(f"cgroups.path: container's cgroup {self.dir} is unexpectedly "
                              f"frozen")

    def _enable_controllers(self):
        """Enable every available controller from the root down to the
        parent of our cgroup (a process-holding ancestor refuses: then the
        controller stays off and writing its files fails with a clear error)."""
        d = self.root
        for part in self.path.strip("/").split("/"):
            available = (common.read(d, "cgroup.controllers") or "").split()
            enabled = (common.read(d, "cgroup.subtree_control") or "").split()
            for ctrl in available:
                if ctrl not in enabled:
                    try:
                        write(d, "cgroup.subtree_control", f"+{ctrl}", "cgroups")
                    except CgroupError:
                        pass
            d = os.path.join(d, part)

    def update(self, resources):
        self._resources(resources, update=True)

    def _resources(self, r, update):
        d = self.dir
        if r.memory_check_before_update and update and r.memory > 0:
            usage = common.read_int(d, "memory.current", 0)
            if r.memory < usage:
                raise CgroupError(f"{R}memory_check_before_update: the new memory limit "
                                  f"{r.memory} is below the current usage {usage}")
        if r.memory == -1 and not r.memory_swap and \
                os.path.exists(os.path.join(d, "memory.swap.max")):
            write(d, "memory.swap.max", "max", R + "memory")    # unlimited: swap too (runc)
        if r.memory:
            write(d, "memory.max", common.fmt_limit(r.memory, True), R + "memory")
        if r.memory_reservation:
            write(d, "memory.low", common.fmt_limit(r.memory_reservation, True),
                  R + "memory_reservation")
        if r.memory_swap:
            write(d, "memory.swap.max", common.swap_to_v2(r.memory_swap, r.memory),
                  R + "memory_swap")
        # oom_kill_disable: cgroup v2 has no such knob; it is ignored (as crun does)
        if r.cpu_weight:
            write(d, "cpu.weight", r.cpu_weight, R + "cpu_weight")
        elif r.cpu_shares:
            write(d, "cpu.weight", common.shares_to_weight(r.cpu_shares), R + "cpu_shares")
        if r.cpu_quota or r.cpu_period:
            quota, period = (common.read(d, "cpu.max") or "max 100000").split()
            if r.cpu_quota:
                quota = "max" if r.cpu_quota == -1 else r.cpu_quota
            period = r.cpu_period or period
            try:
                write(d, "cpu.max", f"{quota} {period}",
                      R + ("cpu_quota" if r.cpu_quota else "cpu_period"))
            except CgroupError:
                if r.cpu_burst is None:
                    raise
                # the burst may not exceed the quota: lower it first, then again
                write(d, "cpu.max.burst", r.cpu_burst, R + "cpu_burst")
                write(d, "cpu.max", f"{quota} {period}",
                      R + ("cpu_quota" if r.cpu_quota else "cpu_period"))
        if r.cpu_burst is not None:
            write(d, "cpu.max.burst", r.cpu_burst, R + "cpu_burst")
        if r.cpu_idle is not None:
            write(d, "cpu.idle", r.cpu_idle, R + "cpu_idle")
        if r.cpuset_cpus:
            write(d, "cpuset.cpus", r.cpuset_cpus, R + "cpuset_cpus")
        if r.cpuset_mems:
            write(d, "cpuset.mems", r.cpuset_mems, R + "cpuset_mems")
        if r.pids_limit:
            write(d, "pids.max", common.fmt_limit(r.pids_limit, True), R + "pids_limit")
        self._io(r)
        for h in r.hugetlb_limit:
            write(d, f"hugetlb.{h.page_size}.max", h.limit, R + "hugetlb_limit")
        for dev, line in common.rdma_lines(r.rdma):
            write(d, "rdma.max", line, f"{R}rdma.{dev}")
        for key, value in sorted(r.unified.items()):
            write(d, key, value, f"{R}unified.{key}")

    def _io(self, r):
        d = self.dir
        bfq = os.path.exists(os.path.join(d, "io.bfq.weight"))
        if r.blkio_weight:
            if bfq:
                write(d, "io.bfq.weight", r.blkio_weight, R + "blkio_weight")
            else:
                write(d, "io.weight", f"default {common.blkio_to_io_weight(r.blkio_weight)}",
                      R + "blkio_weight")
        for w in r.blkio_weight_device:
            if bfq:
                write(d, "io.bfq.weight", f"{w.major}:{w.minor} {w.weight}",
                      R + "blkio_weight_device")
            else:
                write(d, "io.weight",
                      f"{w.major}:{w.minor} {common.blkio_to_io_weight(w.weight)}",
                      R + "blkio_weight_device")
        for field, key in (("read_bps", "rbps"), ("write_bps", "wbps"),
                           ("read_iops", "riops"), ("write_iops", "wiops")):
            for t in getattr(r, f"blkio_throttle_{field}_device"):
                write(d, "io.max", f"{t.major}:{t.minor} {key}={t.rate or 'max'}",
                      f"{R}blkio_throttle_{field}_device")

    # -- running -----------------------------------------------------------------
    def add_task(self, pid):
        write(self.dir, "cgroup.procs", pid, f"cgroups: adding pid {pid} to {self.dir}")

    def join_sub(self, pid, sub, controllers=None):
        """Put `pid` into the existing sub-cgroup `sub` of the container's
        cgroup (``exec --cgroup``); v2 has one hierarchy, so a controller
        list is refused unless every controller is available there."""
        sub = common.sub_path(sub)
        available = set((common.read(self.dir, "cgroup.controllers") or "").split())
        unknown = sorted(set(controllers or ()) - available)
        if unknown:
            raise CgroupError(f"cgroup {','.join(controllers)}:{sub}: unknown controller "
                              f"{unknown[0]!r} (cgroup v2 has {', '.join(sorted(available))})")
        common.join_dir(os.path.join(self.dir, sub), pid, f"cgroup {sub}")

    def pids(self):
        pids = set()
        for top, _dirs, _files in os.walk(self.dir):
            pids.update(common.read_pids(top))
        return sorted(pids)

    def freeze(self, timeout=10.0):
        self._set_frozen(1, timeout)

    def thaw(self, timeout=10.0):
        self._set_frozen(0, timeout)

    def _set_frozen(self, value, timeout):
        what = "freezing" if value else "thawing"
        write(self.dir, "cgroup.freeze", value, f"cgroups: {what}")
        events = os.path.join(self.dir, "cgroup.events")
        if not common.wait_file(events, lambda text: f"frozen {value}" in text, timeout):
            if value:
                write(self.dir, "cgroup.freeze", 0, "cgroups: thawing")
            raise CgroupError(f"cgroups: {self.dir} did not finish {what} within {timeout:g} s")

    def stats(self):
        d = self.dir
        s = common.empty_stats()
        st = common.read_keyed(d, "cpu.stat")
        s["cpu"].update(usage_ns=st.get("usage_usec", 0) * 1000,
                        user_ns=st.get("user_usec", 0) * 1000,
                        system_ns=st.get("system_usec", 0) * 1000,
                        periods=st.get("nr_periods", 0),
                        throttled_periods=st.get("nr_throttled", 0),
                        throttled_ns=st.get("throttled_usec", 0) * 1000)
        raw = common.read_keyed(d, "memory.stat")
        events = common.read_keyed(d, "memory.events")
        swap_current = common.read_int(d, "memory.swap.current", 0)
        s["memory"].update(usage=common.read_int(d, "memory.current", 0),
                           max_usage=common.read_int(d, "memory.peak"),
                           limit=common.read_int(d, "memory.max"),
                           cache=raw.get("file", 0), rss=raw.get("anon", 0),
                           swap_usage=swap_current,
                           swap_limit=common.read_int(d, "memory.swap.max"),
                           failcnt=events.get("max", 0), oom_events=events.get("oom", 0),
                           oom_kills=events.get("oom_kill", 0))
        s["pids"].update(current=common.read_int(d, "pids.current", 0),
                         limit=common.read_int(d, "pids.max"))
        for line in (common.read(d, "io.stat") or "").splitlines():
            parts = line.split()
            if not parts or ":" not in parts[0]:
                continue
            major, minor = (int(x) for x in parts[0].split(":"))
            entry = common.blkio_device(s, major, minor)
            kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
            for key, name in (("rbytes", "read_bytes"), ("wbytes", "write_bytes"),
                              ("rios", "read_ops"), ("wios", "write_ops")):
                entry[name] += int(kv.get(key, 0))
        common.blkio_totals(s)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if name.startswith("hugetlb.") and name.endswith(".current") \
                    and name.count(".") == 2:
                size = name.split(".")[1]
                s["hugetlb"][size] = {
                    "usage": common.read_int(d, name, 0), "max_usage": None,
                    "failcnt": common.read_keyed(d, f"hugetlb.{size}.events").get("max", 0)}
        return s

    # -- the end ------------------------------------------------------------------
    def remove(self):
        """Kill what is in the cgroup; remove it if the container made it (an
        adopted one, empty then, stays; one never taken over is not touched)."""
        d = self.dir
        if not self.owned:      # the checks did not pass: only what we made, if empty
            common.rmdir_parents(self.created)
            return
        if os.path.isdir(d):
            self._kill()
            if "frozen 1" in (common.read(d, "cgroup.events") or ""):
                try:
                    write(d, "cgroup.freeze", 0, "cgroups: thawing")
                except CgroupError:
                    pass
            if d in self.created:
                common.rmdir_tree(d, before_retry=self._kill)
        common.rmdir_parents([c for c in self.created if c != d])

    def _kill(self):
        if os.path.exists(os.path.join(self.dir, "cgroup.kill")):
            try:
                write(self.dir, "cgroup.kill", 1, "cgroups: killing")
                return
            except CgroupError:
                pass
        common.kill_subtree(self.dir)


@hookimpl
def libcontainer_register(registry):
    registry.add("cgroup_driver", NAME, Driver())
