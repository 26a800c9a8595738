"""The cgroup v1 driver: one directory per mounted controller
(/sys/fs/cgroup/<controller>/<path>), limits written to each controller's
files, device rules through the devices controller, pause through the
freezer controller."""
import os
import time

from libcontainer import hookimpl
from libcontainer.errors import ConfigError
from libcontainer.plugins.cgroups import common
from libcontainer.plugins.cgroups.common import CgroupError, write

NAME = "v1"
R = "cgroups.resources."


# fields that need a file not every kernel has: checked before anything is made
_FILES = (("cpu_burst", "cpu", "cpu.cfs_burst_us"), ("cpu_idle", "cpu", "cpu.idle"),
          ("cpu_rt_period", "cpu", "cpu.rt_period_us"),
          ("cpu_rt_runtime", "cpu", "cpu.rt_runtime_us"),
          ("memory_swappiness", "memory", "memory.swappiness"),
          ("memory_use_hierarchy", "memory", "memory.use_hierarchy"),
          ("blkio_leaf_weight", "blkio", "blkio.leaf_weight"))


class Driver:
    name = NAME

    def check(self, cgroup):
        """Raise ConfigError when this host cannot give `cgroup` what it asks."""
        if common.mode() == "unified":
            raise ConfigError("cgroups.driver: cgroup v1 is not available on this host "
                              "(it has the unified cgroup v2 hierarchy)")
        if cgroup.resources.unified:
            raise ConfigError("cgroups.resources.unified: invalid configuration: cannot use "
                              "unified on cgroup v1")
        mounted = common.v1_hierarchies()
        for ctrl, field in common.controllers_needed(cgroup).items():
            if ctrl not in mounted:
                raise ConfigError(f"{field}: the {ctrl} cgroup controller is not mounted "
                                  f"on this host")
        for field, ctrl, name in _FILES:
            if common.is_set(cgroup.resources, field) and \
                    not os.path.exists(os.path.join(mounted[ctrl][0], name)):
                why = " (no real-time group scheduling: CONFIG_RT_GROUP_SCHED)" \
                    if name.startswith("cpu.rt_") else ""
                raise ConfigError(f"{R}{field}: this kernel has no {name}{why}")

    def new(self, path):
        dirs = {}
        for key, point in common.v1_mounts().items():
            d = os.path.join(point, path.lstrip("/"))
            # rootless: the named and cgroup2 hierarchies only where delegated
            if key in common.V1_CONTROLLERS or os.geteuid() == 0 or _writable(d):
                dirs[key] = d
        planned = [m for d in sorted(set(dirs.values()))
                   for m in common.missing_dirs(d[:len(d) - len(path)], path)]
        return Manager(path, dirs, planned, owned=False)

    def load(self, stash):
        return Manager(stash["path"], stash["dirs"], stash.get("created", []),
                       stash.get("owned", True))


def _pair(d, first, second):
    """Write two dependent settings (period, then quota or runtime), 0
    meaning unset. The kernel checks each write against the other's current
    value, so when the first is refused (a shorter period under the old
    quota) the second goes first and the first is tried again, as runc."""
    if first[1]:
        try:
            write(d, *first)
            first = None
        except CgroupError:
            if not second[1]:
                raise
    if second[1]:
        write(d, *second)
    if first and first[1]:
        write(d, *first)


def _writable(d):
    while not os.path.exists(d):
        d = os.path.dirname(d)
    return os.access(d, os.W_OK)


def _frozen(d):
    return (common.read(d, "freezer.state") or "THAWED").strip() != "THAWED"


class Manager:
    def __init__(self, path, dirs, created, owned=True):
        self.path = path
        self.dirs = dirs            # controller (or "name=systemd", "unified") -> directory
        self.created = created      # directories this container made, outermost first
        self.owned = owned          # the checks passed: the leaves are the container's

    def stash(self):
        return {"driver": NAME, "path": self.path, "dirs": self.dirs, "created": self.created,
                "owned": self.owned}

    def _unique_dirs(self):
        return sorted(set(self.dirs.values()))

    # -- creating -------------------------------------------------------------
    def apply(self, cgroup):
        """Create the directories, then write resources and device rules."""
        if not self.owned:
            self.claim()
        if "cpuset" in self.dirs:
            self._init_cpuset()
        self._resources(cgroup.resources, update=False)
        self._devices(cgroup)

    def claim(self):
        """Make the directories, or take over existing ones only if no
        process is in their subtree and they are not frozen (runc's rule);
        then they are the container's (``owned``) and remove() may kill what
        is in them."""
        freezer = self.dirs.get("freezer")
        for d in self._unique_dirs():
            if os.path.isdir(d):
                common.check_adoptable(d, lambda d: d == freezer and _frozen(d))
        made = []
        for d in self._unique_dirs():
            made.extend(common.makedirs(d[:len(d) - len(self.path)], self.path))
        self.created, self.owned = made, True
        if freezer and _frozen(freezer):       # a frozen parent freezes its new child
            raise CgroupError(f"cgroups.path: container's cgroup {freezer} is unexpectedly "
                              f"frozen")

    def _init_cpuset(self):
        # a new v1 cpuset starts empty: copy cpus and mems down from the parent
        d = self.dirs["cpuset"]
        chain = []
        while (common.read(d, "cpuset.cpus") or "").strip() == "" and d not in chain:
            chain.append(d)
            d = os.path.dirname(d)
        for d in reversed(chain):
            parent = os.path.dirname(d)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if (common.read(d, name) or "").strip() == "":
                    write(d, name, common.read(parent, name).strip(), "cgroups.resources." +
                          name.replace(".", "_"))

    def update(self, resources):
        self._resources(resources, update=True)

    def _resources(self, r, update):
        if r.unified:
            raise CgroupError(R + "unified: invalid configuration: cannot use unified on "
                              "cgroup v1")
        mem = self.dirs.get("memory")
        if r.memory_check_before_update and update and r.memory > 0:
            usage = common.read_int(mem, "memory.usage_in_bytes", 0)
            if r.memory < usage:
                raise CgroupError(f"{R}memory_check_before_update: the new memory limit "
                                  f"{r.memory} is below the current usage {usage}")
        if r.memory or r.memory_swap:
            # unlimited memory lifts the swap limit too, unless it is given (runc)
            swap = -1 if r.memory == -1 and not r.memory_swap else r.memory_swap
            self._memory(r.memory, swap)
        if r.memory_swappiness is not None:
            write(mem, "memory.swappiness", r.memory_swappiness, R + "memory_swappiness")
        if r.memory_use_hierarchy is not None:
            write(mem, "memory.use_hierarchy", int(r.memory_use_hierarchy),
                  R + "memory_use_hierarchy")
        if r.memory_reservation:
            write(mem, "memory.soft_limit_in_bytes", r.memory_reservation,
                  R + "memory_reservation")
        if r.oom_kill_disable or (update and mem and "oom_kill_disable 1" in
                                  (common.read(mem, "memory.oom_control") or "")):
            write(mem, "memory.oom_control", int(r.oom_kill_disable), R + "oom_kill_disable")
        cpu = self.dirs.get("cpu")
        if r.cpu_shares:
            write(cpu, "cpu.shares", r.cpu_shares, R + "cpu_shares")
        elif r.cpu_weight:
            write(cpu, "cpu.shares", common.weight_to_shares(r.cpu_weight), R + "cpu_weight")
        cfs = (("cpu.cfs_period_us", r.cpu_period, R + "cpu_period"),
               ("cpu.cfs_quota_us", r.cpu_quota, R + "cpu_quota"))
        try:
            _pair(cpu, *cfs)
        except CgroupError:
            if r.cpu_burst is None:
                raise
            # the burst may not exceed the quota: lower it first, then again
            write(cpu, "cpu.cfs_burst_us", r.cpu_burst, R + "cpu_burst")
            _pair(cpu, *cfs)
        if r.cpu_burst is not None:
            write(cpu, "cpu.cfs_burst_us", r.cpu_burst, R + "cpu_burst")
        _pair(cpu, ("cpu.rt_period_us", r.cpu_rt_period, R + "cpu_rt_period"),
              ("cpu.rt_runtime_us", r.cpu_rt_runtime, R + "cpu_rt_runtime"))
        if r.cpu_idle is not None:
            write(cpu, "cpu.idle", r.cpu_idle, R + "cpu_idle")
        cpuset = self.dirs.get("cpuset")
        if r.cpuset_cpus:
            write(cpuset, "cpuset.cpus", r.cpuset_cpus, R + "cpuset_cpus")
        if r.cpuset_mems:
            write(cpuset, "cpuset.mems", r.cpuset_mems, R + "cpuset_mems")
        if r.pids_limit:
            write(self.dirs.get("pids"), "pids.max",
                  "max" if r.pids_limit == -1 else r.pids_limit, R + "pids_limit")
        self._blkio(r)
        for h in r.hugetlb_limit:
            write(self.dirs.get("hugetlb"), f"hugetlb.{h.page_size}.limit_in_bytes", h.limit,
                  R + "hugetlb_limit")
        if r.net_cls_classid:
            write(self.dirs.get("net_cls"), "net_cls.classid", r.net_cls_classid,
                  R + "net_cls_classid")
        for name, prio in r.net_prio_ifpriomap.items():
            write(self.dirs.get("net_prio"), "net_prio.ifpriomap", f"{name} {prio}",
                  R + "net_prio_ifpriomap")
        for dev, line in common.rdma_lines(r.rdma):
            write(self.dirs.get("rdma"), "rdma.max", line, f"{R}rdma.{dev}")

    def _memory(self, limit, swap):
        d = self.dirs.get("memory")
        if d is None:
            raise CgroupError(R + "memory: the memory cgroup controller is not mounted "
                              "on this host")
        steps = []
        if limit:
            steps.append(("memory.limit_in_bytes", limit, R + "memory"))
        if swap:
            if common.read(d, "memory.memsw.limit_in_bytes") is None:
                raise CgroupError(R + "memory_swap: swap accounting is not enabled on this "
                                  "host (no memory.memsw.limit_in_bytes)")
            # memory+swap must never be below memory: raise it first, lower it last
            current = common.read_int(d, "memory.memsw.limit_in_bytes")
            step = ("memory.memsw.limit_in_bytes", swap, R + "memory_swap")
            if swap == -1 or current is None or swap >= current:
                steps.insert(0, step)
            else:
                steps.append(step)
        for name, value, setting in steps:
            write(d, name, value, setting)

    def _blkio(self, r):
        d = self.dirs.get("blkio")
        if r.blkio_leaf_weight:
            write(d, "blkio.leaf_weight", r.blkio_leaf_weight, R + "blkio_leaf_weight")
        if r.blkio_weight or r.blkio_weight_device:
            prefix = "blkio." if os.path.exists(os.path.join(d or "", "blkio.weight")) \
                else "blkio.bfq."
            if r.blkio_weight:
                write(d, prefix + "weight", r.blkio_weight, R + "blkio_weight")
            for w in r.blkio_weight_device:
                write(d, prefix + "weight_device", f"{w.major}:{w.minor} {w.weight}",
                      R + "blkio_weight_device")
        for field, name in (("read_bps", "read_bps_device"), ("write_bps", "write_bps_device"),
                            ("read_iops", "read_iops_device"),
                            ("write_iops", "write_iops_device")):
            for t in getattr(r, f"blkio_throttle_{field}_device"):
                write(d, f"blkio.throttle.{name}", f"{t.major}:{t.minor} {t.rate}",
                      f"{R}blkio_throttle_{field}_device")

    def _devices(self, cgroup):
        d = self.dirs.get("devices")
        rules = common.device_rules(cgroup)
        if d is None:
            return      # check() refused configs that need it
        if os.geteuid() != 0:
            # rootless, in a delegated subtree: the devices controller needs
            # CAP_SYS_ADMIN, and a user namespace cannot mknod anyway
            return
        if rules is None:
            write(d, "devices.allow", "a", "cgroups.allow_all_devices")
            return
        write(d, "devices.deny", "a", "cgroups.allowed_devices")
        for i, rule in enumerate(rules):
            write(d, "devices.allow" if rule.allow else "devices.deny", common.v1_rule(rule),
                  f"cgroups.allowed_devices[{i}]")

    # -- running -----------------------------------------------------------------
    def add_task(self, pid):
        for d in self._unique_dirs():
            write(d, "cgroup.procs", pid, f"cgroups: adding pid {pid} to {d}")

    def join_sub(self, pid, sub, controllers=None):
        """Put `pid` into the existing sub-cgroup `sub` of the container's
        cgroup, in the hierarchies of `controllers` (all when None) and in
        the container's own cgroup in the others (``exec --cgroup``)."""
        sub = common.sub_path(sub)
        unknown = sorted(set(controllers or ()) - set(self.dirs))
        if unknown:
            raise CgroupError(f"cgroup {','.join(controllers)}:{sub}: unknown controller "
                              f"{unknown[0]!r} (this container has {', '.join(sorted(self.dirs))})")
        # a comounted hierarchy (cpu,cpuacct) goes to the sub-cgroup if one is named
        chosen = {d for key, d in self.dirs.items() if controllers is None or key in controllers}
        targets = [os.path.join(d, sub) if d in chosen else d for d in self._unique_dirs()]
        for d in targets:
            if not os.path.isdir(d):
                raise CgroupError(f"cgroup {sub}: cgroup {d} does not exist")
        for d in targets:
            common.join_dir(d, pid, f"cgroup {sub}")

    def pids(self):
        pids = set()
        for d in self._unique_dirs():
            for top, _dirs, _files in os.walk(d):
                pids.update(common.read_pids(top))
        return sorted(pids)

    def freeze(self, timeout=10.0):
        d = self._freezer()
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            # writing FROZEN again nudges a freeze that stalls in FREEZING
            write(d, "freezer.state", "FROZEN", "cgroups: freezing")
            time.sleep(delay)
            if (common.read(d, "freezer.state") or "").strip() == "FROZEN":
                return
            if time.monotonic() > deadline:
                write(d, "freezer.state", "THAWED", "cgroups: thawing")
                raise CgroupError(f"cgroups: {d} did not freeze within {timeout:g} s")
            delay = min(delay * 2, 0.05)

    def thaw(self):
        write(self._freezer(), "freezer.state", "THAWED", "cgroups: thawing")

    def _freezer(self):
        d = self.dirs.get("freezer")
        if d is None:
            raise CgroupError("cgroups: the freezer controller is not mounted on this host")
        return d

    def stats(self):
        s = common.empty_stats()
        self._cpu_stats(s)
        self._memory_stats(s)
        pids = self.dirs.get("pids")
        if pids:
            s["pids"]["current"] = common.read_int(pids, "pids.current", 0)
            s["pids"]["limit"] = common.read_int(pids, "pids.max")
        self._blkio_stats(s)
        hugetlb = self.dirs.get("hugetlb")
        if hugetlb:
            for name in sorted(os.listdir(hugetlb)):
                if name.startswith("hugetlb.") and name.endswith(".usage_in_bytes"):
                    size = name.split(".")[1]
                    s["hugetlb"][size] = {
                        "usage": common.read_int(hugetlb, name, 0),
                        "max_usage": common.read_int(hugetlb,
                                                     f"hugetlb.{size}.max_usage_in_bytes"),
                        "failcnt": common.read_int(hugetlb, f"hugetlb.{size}.failcnt", 0)}
        return s

    def _cpu_stats(self, s):
        cpu = s["cpu"]
        acct = self.dirs.get("cpuacct")
        if acct:
            cpu["usage_ns"] = common.read_int(acct, "cpuacct.usage", 0)
            cpu["per_cpu_ns"] = [int(x) for x in
                                 (common.read(acct, "cpuacct.usage_percpu") or "").split()]
            user = common.read_int(acct, "cpuacct.usage_user")
            if user is not None:
                cpu["user_ns"] = user
                cpu["system_ns"] = common.read_int(acct, "cpuacct.usage_sys", 0)
            else:   # older kernels: clock ticks in cpuacct.stat
                ticks = common.read_keyed(acct, "cpuacct.stat")
                ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
                cpu["user_ns"] = ticks.get("user", 0) * ns
                cpu["system_ns"] = ticks.get("system", 0) * ns
        if self.dirs.get("cpu"):
            st = common.read_keyed(self.dirs["cpu"], "cpu.stat")
            cpu["periods"] = st.get("nr_periods", 0)
            cpu["throttled_periods"] = st.get("nr_throttled", 0)
            cpu["throttled_ns"] = st.get("throttled_time", 0)

    def _memory_stats(self, s):
        d = self.dirs.get("memory")
        if not d:
            return
        m = s["memory"]
        raw = common.read_keyed(d, "memory.stat")
        usage = common.read_int(d, "memory.usage_in_bytes", 0)
        limit = common.v1_limit(common.read_int(d, "memory.limit_in_bytes"))
        m.update(usage=usage, max_usage=common.read_int(d, "memory.max_usage_in_bytes"),
                 limit=limit, failcnt=common.read_int(d, "memory.failcnt", 0),
                 cache=raw.get("total_cache", raw.get("cache", 0)),
                 rss=raw.get("total_rss", raw.get("rss", 0)))
        memsw = common.read_int(d, "memory.memsw.usage_in_bytes")
        if memsw is not None:
            m["swap_usage"] = max(memsw - usage, 0)
            swap_limit = common.v1_limit(common.read_int(d, "memory.memsw.limit_in_bytes"))
            m["swap_limit"] = None if swap_limit is None or limit is None \
                else max(swap_limit - limit, 0)
        oom = common.read_keyed(d, "memory.oom_control")
        # v1 counts kills only; an OOM event without a kill is not recorded
        m["oom_kills"] = m["oom_events"] = oom.get("oom_kill", 0)

    def _blkio_stats(self, s):
        d = self.dirs.get("blkio")
        if not d:
            return
        for name, kind in (("io_service_bytes", "bytes"), ("io_serviced", "ops")):
            text = common.read(d, f"blkio.throttle.{name}_recursive")
            if text is None:
                text = common.read(d, f"blkio.throttle.{name}") or ""
            for line in text.splitlines():
                parts = line.split()
                if len(parts) != 3 or parts[1] not in ("Read", "Write") or ":" not in parts[0]:
                    continue
                major, minor = (int(x) for x in parts[0].split(":"))
                entry = common.blkio_device(s, major, minor)
                entry[f"{parts[1].lower()}_{kind}"] += int(parts[2])
        common.blkio_totals(s)

    # -- the end ------------------------------------------------------------------
    def remove(self):
        """Kill what is in the container's cgroups and remove the directories
        it made; a cgroup it adopted (empty then) stays, one it never took
        over is not touched."""
        if not self.owned:      # the checks did not pass: only what we made, if empty
            common.rmdir_parents(self.created)
            return
        mine = [d for d in self._unique_dirs() if os.path.isdir(d)]
        for d in mine:
            common.kill_subtree(d)
        freezer = self.dirs.get("freezer")
        if freezer in mine and _frozen(freezer):
            write(freezer, "freezer.state", "THAWED", "cgroups: thawing")
        errors = []
        for d in mine:
            try:
                if d in self.created:
                    common.rmdir_tree(d, before_retry=lambda d=d: common.kill_subtree(d))
            except CgroupError as e:
                errors.append(str(e))
        leaves = set(self._unique_dirs())
        common.rmdir_parents([c for c in self.created if c not in leaves])
        if errors:
            raise CgroupError("; ".join(errors))


@hookimpl
def libcontainer_register(registry):
    registry.add("cgroup_driver", NAME, Driver())
