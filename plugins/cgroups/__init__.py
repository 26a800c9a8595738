"""Cgroups: put the container in its cgroup and operate on it through a
driver chosen per container.

The driver is ``config.cgroups.driver`` if set, else the environment
variable ``LIBCONTAINER_CGROUP_DRIVER``, else what the host has: v2 on a
unified host, v1 on a legacy or hybrid one (detected by filesystem type in
/proc/self/mountinfo). Drivers are backends in the registry
(``cgroup_driver``), offered by the ``cgroups_v1`` and ``cgroups_v2``
plugins. The chosen driver and the cgroup's paths are kept in
``container.stash["cgroups"]``, so later operations from any process use
the same ones. A config without ``cgroups`` gets no cgroup.
"""
import os
import re

from libcontainer import hookimpl, log
from libcontainer.errors import ConfigError, LibcontainerError, PluginError

from . import common

STASH = "cgroups"

_CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_PAGE_SIZE = re.compile(r"^\d+[KMG]B$")
_UNIFIED_KEY = re.compile(r"^[a-z_]+\.[a-z0-9_.]+$")


def driver_name(cgroup):
    """(name, where it came from) of the driver for `cgroup`."""
    if cgroup.driver:
        return cgroup.driver, "cgroups.driver"
    env = os.environ.get(common.DRIVER_ENV, "").strip()
    if env:
        return env, common.DRIVER_ENV
    return common.detect(), "cgroups.driver"


def _driver(registry, cgroup):
    name, where = driver_name(cgroup)
    if registry is None:
        raise ConfigError(f"{where}: no cgroup driver is registered")
    try:
        return registry.get("cgroup_driver", name)
    except PluginError as e:
        hint = f" (is the cgroups_{name} plugin disabled?)" if name in ("v1", "v2") else ""
        raise ConfigError(f"{where}: {e}{hint}") from None


def _manager(container):
    stash = container.stash.get(STASH)
    if not stash:
        return None
    try:
        driver = container.pm.registry.get("cgroup_driver", stash["driver"])
    except PluginError as e:
        raise LibcontainerError(f"container {container.id}: cgroups: {e}") from None
    return driver.load(stash)


def _need_manager(container, op):
    m = _manager(container)
    if m is None:
        raise LibcontainerError(f"cannot {op} container {container.id}: it has no cgroup "
                                f"(config.cgroups is not set)")
    return m


# -- configuration ---------------------------------------------------------

@hookimpl
def libcontainer_validate_config(config, registry):
    cg = config.cgroups
    if cg is None:
        return
    _check_values(cg)
    driver = _driver(registry, cg)
    try:
        driver.check(cg)
    except ConfigError as e:
        name, where = driver_name(cg)
        if where == common.DRIVER_ENV and str(e).startswith("cgroups.driver: "):
            raise ConfigError(f"{where}={name}: {str(e)[len('cgroups.driver: '):]}") from None
        raise


def _check_values(cg):
    for field in ("path", "parent"):
        value = getattr(cg, field)
        if ".." in value.split("/"):
            raise ConfigError(f"cgroups.{field}: {value!r} may not contain '..'")
    if cg.path and (not cg.path.startswith("/") or os.path.normpath(cg.path) == "/"):
        raise ConfigError(f"cgroups.path: {cg.path!r} is not an absolute cgroup path "
                          f"below the root (like /mygroup/c1)")
    if "/" in cg.name or cg.name in (".", ".."):
        # "." would make the shared parent the container's cgroup
        raise ConfigError(f"cgroups.name: {cg.name!r} is not a cgroup name (no '/', "
                          f"'.' or '..')")
    r, R = cg.resources, "cgroups.resources."
    for field in ("memory", "memory_reservation", "pids_limit"):
        if getattr(r, field) < -1:
            raise ConfigError(f"{R}{field}: {getattr(r, field)} is not a limit (-1: unlimited)")
    if r.memory_swap < -1:
        raise ConfigError(f"{R}memory_swap: {r.memory_swap} is not a limit (-1: unlimited)")
    if r.memory_swap > 0 and r.memory > 0 and r.memory_swap < r.memory:
        raise ConfigError(f"{R}memory_swap: {r.memory_swap} is below memory ({r.memory}); "
                          f"it limits memory+swap, as in cgroup v1")
    if r.cpu_shares and not 2 <= r.cpu_shares <= 262144:
        raise ConfigError(f"{R}cpu_shares: {r.cpu_shares} is outside 2-262144")
    if r.cpu_weight and not 1 <= r.cpu_weight <= 10000:
        raise ConfigError(f"{R}cpu_weight: {r.cpu_weight} is outside 1-10000")
    if r.cpu_quota and r.cpu_quota != -1 and r.cpu_quota < 1000:
        raise ConfigError(f"{R}cpu_quota: {r.cpu_quota} is below 1000 us (-1: unlimited)")
    if r.cpu_period and not 1000 <= r.cpu_period <= 1000000:
        raise ConfigError(f"{R}cpu_period: {r.cpu_period} is outside 1000-1000000 us")
    for field in ("cpuset_cpus", "cpuset_mems"):
        value = getattr(r, field)
        if value and not _CPUSET.match(value.replace(" ", "")):
            raise ConfigError(f"{R}{field}: {value!r} is not a list like 0-3,6")
    if r.blkio_weight and not 10 <= r.blkio_weight <= 1000:
        raise ConfigError(f"{R}blkio_weight: {r.blkio_weight} is outside 10-1000")
    for i, w in enumerate(r.blkio_weight_device):
        if not 10 <= w.weight <= 1000:
            raise ConfigError(f"{R}blkio_weight_device[{i}].weight: {w.weight} is outside 10-1000")
        _check_dev(w, f"{R}blkio_weight_device[{i}]")
    for field in ("read_bps", "write_bps", "read_iops", "write_iops"):
        name = f"blkio_throttle_{field}_device"
        for i, t in enumerate(getattr(r, name)):
            _check_dev(t, f"{R}{name}[{i}]")
            if t.rate < 0:
                raise ConfigError(f"{R}{name}[{i}].rate: {t.rate} is negative")
    for i, h in enumerate(r.hugetlb_limit):
        if not _PAGE_SIZE.match(h.page_size):
            raise ConfigError(f"{R}hugetlb_limit[{i}].page_size: {h.page_size!r} is not a "
                              f"size like 2MB or 1GB")
        if h.limit < 0:
            raise ConfigError(f"{R}hugetlb_limit[{i}].limit: {h.limit} is negative")
    for field, low, high in (("cpu_burst", 0, 1 << 63), ("cpu_idle", 0, 1),
                             ("cpu_rt_period", 0, 1 << 63), ("cpu_rt_runtime", -1, 1 << 63),
                             ("memory_swappiness", 0, 100), ("net_cls_classid", 0, 1 << 32)):
        value = getattr(r, field)
        if value is not None and not low <= value <= high:
            raise ConfigError(f"{R}{field}: {value} is outside {low}-{high}")
    if r.blkio_leaf_weight and not 10 <= r.blkio_leaf_weight <= 1000:
        raise ConfigError(f"{R}blkio_leaf_weight: {r.blkio_leaf_weight} is outside 10-1000")
    for name, prio in r.net_prio_ifpriomap.items():
        if not name or "/" in name or " " in name or prio < 0:
            raise ConfigError(f"{R}net_prio_ifpriomap.{name}: not an interface and a priority")
    for dev, limits in r.rdma.items():
        if not dev or " " in dev or not limits or set(limits) - {"hcaHandles", "hcaObjects"}:
            raise ConfigError(f"{R}rdma.{dev}: expected a device with hcaHandles and/or "
                              f"hcaObjects")
    for key in r.unified:
        if not _UNIFIED_KEY.match(key) or key in ("cgroup.procs", "cgroup.threads",
                                                  "cgroup.subtree_control", "cgroup.kill"):
            raise ConfigError(f"{R}unified.{key}: not a cgroup v2 setting we may write")
    if r.freezer not in ("", "FROZEN", "THAWED"):
        raise ConfigError(f"{R}freezer: {r.freezer!r} is not FROZEN or THAWED")
    for i, d in enumerate(cg.allowed_devices or []):
        where = f"cgroups.allowed_devices[{i}]"
        if d.type not in ("a", "b", "c"):
            raise ConfigError(f"{where}.type: {d.type!r} is not one of a, b, c")
        if not d.permissions or set(d.permissions) - set("rwm"):
            raise ConfigError(f"{where}.permissions: {d.permissions!r} is not a combination "
                              f"of r, w, m")
        _check_dev(d, where, wildcard=True)


def _check_dev(d, where, wildcard=False):
    for field in ("major", "minor"):
        value = getattr(d, field)
        if value < (-1 if wildcard else 0) or value >= 1 << 32:
            raise ConfigError(f"{where}.{field}: {value} is not a device number")


# -- creating ----------------------------------------------------------------

@hookimpl
def libcontainer_pre_clone(container, process):
    cg = container.config.cgroups
    if cg is None:
        return
    manager = _driver(container.pm.registry, cg).new(common.cgroup_path(cg, container.id))
    if os.geteuid() != 0 and not _delegated(manager):
        # rootless: a cgroup only inside a subtree delegated to this user
        log.warning("cgroups: the cgroup is not delegated to this user; the container "
                    "runs without one", uid=os.geteuid(), path=manager.path)
        return
    # recorded (and saved) before anything is made, with the directories it
    # is about to make: a failure half-way, even a killed runtime, is torn
    # down from it (and kills nothing until the cgroup is the container's)
    container.stash[STASH] = manager.stash()
    container.save()
    try:
        manager.apply(cg)
    finally:
        container.stash[STASH] = manager.stash()


def _delegated(manager):
    """Whether this user may make the manager's directories: the nearest
    existing ancestor of each is writable by it."""
    dirs = manager.dirs.values() if hasattr(manager, "dirs") else [manager.dir]
    for d in dirs:
        while not os.path.exists(d):
            d = os.path.dirname(d)
        if not os.access(d, os.W_OK):
            return False
    return True


@hookimpl
def libcontainer_post_clone(container, process, pid):
    manager = _manager(container)
    if manager is None:
        return
    sub = getattr(process, "sub_cgroup", None)
    if sub:
        join_sub(container, pid, *parse_sub(sub))
    else:
        manager.add_task(pid)


def parse_sub(text):
    """runc's ``exec --cgroup`` value "[controller[,controller]:]path" ->
    (path, [controllers] or None)."""
    controllers, sep, path = text.rpartition(":")
    return path, (controllers.split(",") if sep else None)


def join_sub(container, pid, sub, controllers=None):
    """Put `pid` into the existing sub-cgroup `sub` (relative, no '..') of
    the container's cgroup: in the hierarchies of `controllers` (v1; all
    when None), the container's own cgroup in the others. Errors are one
    line (CgroupError)."""
    _need_manager(container, "join a sub-cgroup of").join_sub(pid, sub, controllers)


# -- the v1 cgroup mount ---------------------------------------------------------

@hookimpl
def libcontainer_rootfs_ready(container, process):
    """Fill each v1 "cgroup" mount (a tmpfs whose source is "cgroup", see
    specconv): a tmpfs over it holding, per hierarchy, the container's own
    cgroup bound read-only (/sys/fs/cgroup/memory/memory.limit_in_bytes is
    the container's limit), a symlink per comounted controller (cpu ->
    cpu,cpuacct), then made read-only if the mount was. Runs in the init,
    before pivot_root."""
    stash = container.stash.get(STASH) or {}
    dirs = stash.get("dirs")
    wanted = [m for m in container.config.mounts if m.device == "tmpfs" and m.source == "cgroup"]
    if not dirs or not wanted:
        return
    from libcontainer import configs
    from libcontainer.linux.mount import MS, mount
    from libcontainer.plugins.rootfs import mount_into
    from libcontainer.rootpath import held, open_in_root
    rootfs = os.path.realpath(container.config.rootfs)
    by_name = {}        # name under the mount -> (host directory, keys)
    for key, d in sorted(dirs.items()):
        name = os.path.basename(d[:len(d) - len(stash["path"])].rstrip("/"))
        by_name.setdefault(name, (d, []))[1].append(key)
    safe = ["nosuid", "nodev", "noexec"]
    with held(rootfs):      # one open of the rootfs for its ~90 lookups
        for m in wanted:
            mount_into(rootfs, configs.Mount("tmpfs", m.destination, "tmpfs", safe, "mode=755"))
            for name, (d, keys) in sorted(by_name.items()):
                if os.path.isdir(d):
                    mount_into(rootfs, configs.Mount(d, f"{m.destination}/{name}", "bind",
                                                     ["bind", "ro", *safe]))
                fd = open_in_root(rootfs, m.destination)
                try:
                    for key in keys:
                        if key != name and not key.startswith("name="):
                            os.symlink(name, key, dir_fd=fd)
                finally:
                    os.close(fd)
            if "ro" in m.flags:
                fd = open_in_root(rootfs, m.destination)
                try:
                    mount(None, f"/proc/self/fd/{fd}", None,
                          MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC)
                finally:
                    os.close(fd)


# -- operating -----------------------------------------------------------------

@hookimpl
def libcontainer_processes(container):
    manager = _manager(container)
    return None if manager is None else manager.pids()


@hookimpl
def libcontainer_stats(container, stats):
    manager = _manager(container)
    if manager is not None:
        stats.update(manager.stats())


@hookimpl
def libcontainer_freeze(container):
    _need_manager(container, "pause").freeze()


@hookimpl
def libcontainer_thaw(container):
    _need_manager(container, "resume").thaw()


@hookimpl
def libcontainer_update(container, resources):
    cg = container.config.cgroups
    if cg is None:
        _need_manager(container, "update")
    new = type(cg)(**{**vars(cg), "resources": resources})
    _check_values(new)
    manager = _need_manager(container, "update")
    # what the host cannot serve is refused by name before anything is written
    container.pm.registry.get("cgroup_driver", container.stash[STASH]["driver"]).check(new)
    manager.update(resources)
    if resources.freezer == "FROZEN":
        manager.freeze()
    elif resources.freezer == "THAWED":
        manager.thaw()


# -- the end ---------------------------------------------------------------------

@hookimpl
def libcontainer_teardown(container):
    manager = _manager(container)
    if manager is not None:
        manager.remove()
        container.stash.pop(STASH, None)
