"""update: change a running container's resources."""
import os

from libcontainer.errors import LibcontainerError

from .commandline import PROG, Opt, UsageError, command, need_id
from .runtime import read_json

_UPDATE_FLAGS = (  # flag, Resources field, kind
    ("blkio-weight", "blkio_weight", int), ("cpu-period", "cpu_period", int),
    ("cpu-quota", "cpu_quota", int), ("cpu-share", "cpu_shares", int),
    ("cpuset-cpus", "cpuset_cpus", str), ("cpuset-mems", "cpuset_mems", str),
    ("kernel-memory", "kernel_memory", "bytes"), ("memory", "memory", "bytes"),
    ("memory-reservation", "memory_reservation", "bytes"),
    ("memory-swap", "memory_swap", "bytes"), ("pids-limit", "pids_limit", int),
    ("cpu-rt-period", "cpu_rt_period", int), ("cpu-rt-runtime", "cpu_rt_runtime", int),
    ("cpu-burst", "cpu_burst", int), ("cpu-idle", "cpu_idle", int),
)


@command("ID",
         Opt("resources r", "value", None, "an OCI LinuxResources JSON file (- for stdin)",
             "FILE"),
         *(Opt(flag, "value", None, f"set {field}", "VALUE") for flag, field, _ in _UPDATE_FLAGS),
         Opt("kernel-memory-tcp", "value", None, "not supported"),
         Opt("l3-cache-schema", "value", None, "not supported"),
         Opt("mem-bw-schema", "value", None, "not supported"))
def update(rt, o, args):
    """Change the resource limits of a running container."""
    from libcontainer import specconv
    cid = need_id(args, "update")
    for flag in ("kernel_memory_tcp", "l3_cache_schema", "mem_bw_schema"):
        if getattr(o, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')}: not supported by {PROG}")
    container = rt.load(cid)
    if container.config.cgroups is None:
        raise LibcontainerError(f"container {cid} has no cgroup to update")
    resources, res = container.config.cgroups.resources, {}
    if o.resources:
        source = "resources" if o.resources == "-" else os.path.basename(o.resources)
        res = read_json(o.resources, source)
        specconv.check_fields(res, source, "linux.resources")
        resources = specconv.to_resources(res, base=resources,
                                          source=source, path="resources")
    else:
        import copy
        resources = copy.deepcopy(resources)
    for flag, field, kind in _UPDATE_FLAGS:
        value = getattr(o, flag.replace("-", "_"))
        if value is not None:
            setattr(resources, field, _update_value(flag, value, kind))
    swap_given = o.memory_swap is not None or \
        (o.resources and "swap" in (res.get("memory") or {}))
    if resources.memory == -1 and not swap_given:
        resources.memory_swap = -1      # unlimited memory lifts the swap limit (runc)
    container.set(resources)


def _update_value(flag, value, kind):
    if kind is str:
        return value
    try:
        return parse_bytes(value) if kind == "bytes" else int(value)
    except ValueError:
        raise UsageError(f"--{flag}: invalid value {value!r}") from None


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text):
    """'50M', '1g', '512k', '1024', '-1' -> bytes (binary units, as runc)."""
    s = text.strip().lower()
    if s == "-1":
        return -1
    for suffix in ("ib", "b"):
        if s.endswith(suffix) and len(s) > len(suffix) and s[-len(suffix) - 1].isalpha():
            s = s[:-len(suffix)]
            break
    unit = s[-1] if s and s[-1].isalpha() else ""
    number = s[:-1] if unit else s
    if unit not in _UNITS or not number:
        raise ValueError(text)
    value = float(number) * _UNITS[unit]
    if value < 0:
        raise ValueError(text)
    return int(value)
