"""Namespaces: create the configured ones, join those given by path, and
join the init's when a further process enters the container."""
import os

from libcontainer import hookimpl
from libcontainer.errors import ConfigError
from libcontainer.linux.namespaces import CLONE, NAMESPACES, setns, unshare

# The core enters these around the fork (core/spawn.py): the init must be
# born in its PID namespace, and that must be owned by its user namespace.
_BEFORE_FORK = ("NEWPID", "NEWUSER")
# mnt last among joins: it changes the root and would hide the /proc/PID/ns
# paths of the others
_JOIN_ORDER = ["NEWIPC", "NEWUTS", "NEWNET", "NEWTIME", "NEWNS"]


@hookimpl
def libcontainer_validate_config(config):
    seen = set()
    for i, ns in enumerate(config.namespaces):
        where = f"namespaces[{i}]"
        if ns.type not in NAMESPACES:
            raise ConfigError(f"{where}.type: unknown namespace {ns.type!r} "
                              f"(known: {', '.join(NAMESPACES)})")
        if ns.type in seen:
            raise ConfigError(f"{where}.type: namespace {ns.type} is listed twice")
        seen.add(ns.type)
        if ns.path and not os.path.exists(ns.path):
            raise ConfigError(f"{where}.path: {ns.path} does not exist")
    if "NEWNS" not in seen:
        raise ConfigError("namespaces: NEWNS (a mount namespace) is required")
    _check_time(config)


def _check_time(config):
    ns = config.namespace("NEWTIME")
    if ns is not None and not os.path.exists("/proc/self/ns/time"):
        raise ConfigError("namespaces: NEWTIME: this kernel has no time namespaces")
    if not config.time_offsets:
        return
    if ns is None or ns.path:
        raise ConfigError("time_offsets: need a new time namespace (NEWTIME without a path)")
    for clock, o in config.time_offsets.items():
        if clock not in ("monotonic", "boottime"):
            raise ConfigError(f"time_offsets.{clock}: unknown clock (known: monotonic, "
                              f"boottime)")
        if not 0 <= o.nanosecs < 10**9:
            raise ConfigError(f"time_offsets.{clock}.nanosecs: {o.nanosecs} is not in "
                              f"0..999999999")


@hookimpl
def libcontainer_enter_namespaces(container, process):
    if process.init:
        paths = {ns.type: ns.path for ns in container.config.namespaces if ns.path}
        new = CLONE(0)
        for ns in container.config.namespaces:
            if not ns.path and ns.type not in _BEFORE_FORK + ("NEWCGROUP",):
                new |= NAMESPACES[ns.type][0]
    else:
        paths = {t: p for t, p in container.state["namespaces"].items()
                 if t not in _BEFORE_FORK + ("NEWCGROUP",)}
        new = CLONE(0)
    # the cgroup namespace waits for the cgroup join (finish_namespaces)
    global _cgroup_ns
    ns = container.config.namespace("NEWCGROUP")
    path = (ns.path if process.init else container.state["namespaces"].get("NEWCGROUP")) \
        if ns is not None else None
    # open every path first: joining the mount namespace hides the host's /proc
    _cgroup_ns = (os.open(path, os.O_RDONLY | os.O_CLOEXEC), path) if path else None
    fds = []
    try:
        for t in _JOIN_ORDER:
            if t in paths and t != "NEWPID":
                fds.append((os.open(paths[t], os.O_RDONLY | os.O_CLOEXEC), t, paths[t]))
        for fd, t, path in fds:
            setns(fd, NAMESPACES[t][0], path)
    finally:
        for fd, _, _ in fds:
            os.close(fd)
    if new:
        unshare(new)
    if new & CLONE.NEWTIME:
        _enter_new_timens(container.config.time_offsets)


def _enter_new_timens(offsets):
    """unshare(CLONE_NEWTIME) moves only our future children: set the
    clocks' offsets while no process is inside, then enter it ourselves."""
    if offsets:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write("".join(f"{clock} {o.secs} {o.nanosecs}\n"
                            for clock, o in offsets.items()))
    fd = os.open("/proc/self/ns/time_for_children", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, CLONE.NEWTIME, "/proc/self/ns/time_for_children")
    finally:
        os.close(fd)


_cgroup_ns = None    # (fd, path): child-only state between the two phases


@hookimpl
def libcontainer_finish_namespaces(container, process):
    # after the parent put us in our cgroup, so that it is the namespace's root
    if _cgroup_ns is not None:
        fd, path = _cgroup_ns
        setns(fd, CLONE.NEWCGROUP, path)
        os.close(fd)
    elif process.init and container.config.has_namespace("NEWCGROUP"):
        unshare(CLONE.NEWCGROUP)
