"""Kernel attributes of the container's processes: scheduler, I/O priority,
personality, NUMA memory policy (init and joined processes), and the CPU
affinity of joined processes (``exec_cpu_affinity``: ``initial`` from the
fork until the cgroup join, which resets it to the cgroup's cpuset, then
``final`` until exec).

A Process's own ``scheduler``/``io_priority``/``cpu_affinity`` win over the
config's. Applied in ``setup_limits``: after the cgroup join (a real-time
policy needs the cgroup's runtime), before the identity switch drops the
privileges raising them needs.
"""
import os

from libcontainer import hookimpl, log
from libcontainer.errors import ConfigError
from libcontainer.linux import procattr as pa


def _known(value, table, where):
    if value not in table:
        raise ConfigError(f"{where}: unknown value {value!r} (known: {', '.join(table)})")


def check_scheduler(s, where):
    if s.policy == "SCHED_ISO":
        raise ConfigError(f"{where}.policy: SCHED_ISO is not implemented by Linux")
    _known(s.policy, pa.SCHED_POLICIES, f"{where}.policy")
    for f in s.flags:
        _known(f, pa.SCHED_FLAGS, f"{where}.flags")
    if not -20 <= s.nice <= 19:
        raise ConfigError(f"{where}.nice: {s.nice} is not in -20..19")
    realtime = s.policy in ("SCHED_FIFO", "SCHED_RR")
    if realtime and not 1 <= s.priority <= 99:
        raise ConfigError(f"{where}.priority: {s.priority} is not in 1..99 for {s.policy}")
    if not realtime and s.priority:
        raise ConfigError(f"{where}.priority: only SCHED_FIFO and SCHED_RR take a priority")
    if s.policy != "SCHED_DEADLINE" and (s.runtime or s.deadline or s.period):
        raise ConfigError(f"{where}: runtime, deadline and period are for SCHED_DEADLINE only")


def check_io_priority(io, where):
    _known(io.class_, pa.IOPRIO_CLASSES, f"{where}.class")
    if not 0 <= io.priority <= 7:
        raise ConfigError(f"{where}.priority: {io.priority} is not in 0..7")


def cpus(text, where):
    """The CPU list `text` as a set; every CPU must be online."""
    try:
        wanted = pa.parse_list(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a CPU list like 0-3,7") from None
    online = _online("/sys/devices/system/cpu/online")
    if not wanted or wanted - online:
        raise ConfigError(f"{where}: CPUs {text!r} are not online (online: "
                          f"{_show(online)})")
    return wanted


def check_affinity(a, where):
    for name in ("initial", "final"):
        if getattr(a, name):
            cpus(getattr(a, name), f"{where}.{name}")


def _online(path):
    with open(path) as f:
        return pa.parse_list(f.read().strip())


def _show(ids):
    return ",".join(map(str, sorted(ids)))


def _check_config(config):
    if config.scheduler is not None:
        check_scheduler(config.scheduler, "scheduler")
    if config.io_priority is not None:
        check_io_priority(config.io_priority, "io_priority")
    if config.exec_cpu_affinity is not None:
        check_affinity(config.exec_cpu_affinity, "exec_cpu_affinity")
    if config.personality is not None:
        _known(config.personality.domain, pa.PERSONALITIES, "personality.domain")
        if config.personality.flags:     # as runc: warned, not refused
            log.warning("personality.flags are not supported: ignored",
                        flags=config.personality.flags)
    mp = config.memory_policy
    if mp is not None:
        _known(mp.mode, pa.MPOL_MODES, "memory_policy.mode")
        for f in mp.flags:
            _known(f, pa.MPOL_FLAGS, "memory_policy.flags")
        if {"MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"} <= set(mp.flags):
            raise ConfigError("memory_policy.flags: MPOL_F_STATIC_NODES and "
                              "MPOL_F_RELATIVE_NODES exclude each other")
        if mp.mode in ("MPOL_DEFAULT", "MPOL_LOCAL"):
            if mp.nodes:
                raise ConfigError(f"memory_policy.nodes: {mp.mode} takes no nodes")
        elif not mp.nodes and mp.mode != "MPOL_PREFERRED":
            raise ConfigError(f"memory_policy.nodes: {mp.mode} needs nodes")
        elif mp.nodes:
            try:
                nodes = pa.parse_list(mp.nodes)
            except ValueError:
                raise ConfigError(f"memory_policy.nodes: {mp.nodes!r} is not a node list "
                                  f"like 0-1,3") from None
            try:
                online = _online("/sys/devices/system/node/online")
            except FileNotFoundError:
                raise ConfigError("memory_policy: this kernel has no NUMA support") from None
            if nodes - online and "MPOL_F_RELATIVE_NODES" not in mp.flags:
                raise ConfigError(f"memory_policy.nodes: NUMA nodes {_show(nodes - online)} "
                                  f"are not online (online: {_show(online)})")


@hookimpl
def libcontainer_validate_config(config):
    _check_config(config)


@hookimpl
def libcontainer_validate_process(process):
    if process.scheduler is not None:
        check_scheduler(process.scheduler, "process.scheduler")
    if process.io_priority is not None:
        check_io_priority(process.io_priority, "process.io_priority")
    if process.cpu_affinity is not None:
        check_affinity(process.cpu_affinity, "process.cpu_affinity")


@hookimpl
def libcontainer_enter_namespaces(container, process):
    # first thing in a joined process: the CPUs it runs on until the cgroup join
    if not process.init:
        a = _affinity(container, process)
        if a is not None and a.initial:
            os.sched_setaffinity(0, pa.parse_list(a.initial))


def _affinity(container, process):
    return process.cpu_affinity if process.cpu_affinity is not None else \
        container.config.exec_cpu_affinity


@hookimpl
def libcontainer_setup_limits(container, process):
    config = container.config
    sched = process.scheduler if process.scheduler is not None else config.scheduler
    io = process.io_priority if process.io_priority is not None else config.io_priority
    if config.personality is not None:
        pa.personality(config.personality.domain)
    mp = config.memory_policy
    if mp is not None:
        pa.set_mempolicy(mp.mode, pa.parse_list(mp.nodes), mp.flags)
    if io is not None:
        pa.ioprio_set(io.class_, io.priority)
    if sched is not None:
        pa.sched_setattr(sched.policy, sched.nice, sched.priority, sched.flags, sched.runtime,
                         sched.deadline, sched.period)
    a = _affinity(container, process) if not process.init else None
    if a is not None and a.final:
        os.sched_setaffinity(0, pa.parse_list(a.final))
