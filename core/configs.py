"""The container configuration: plain record classes mirroring the seed's
``configs.Config``, loadable from and savable to ``container.json``.

Field names are the JSON keys (snake_case, as in the seed). Loading checks
every value's type and names the offending field in the error; semantic checks
(does the rootfs exist, is the capability known) belong to the plugins'
``libcontainer_validate_config`` hook.

The classes are declared like dataclasses (``name: type = default``,
``field(default_factory=...)``) but ``@dataclass`` is record.py's: the
stdlib's compiles methods for every class at import (~10 ms here).
"""
import json
import types
import typing
from typing import Optional

from .errors import ConfigError
from .record import MISSING, asdict, dataclass, field, fields, is_record  # noqa: F401


@dataclass
class Namespace:
    type: str
    path: str = ""


@dataclass
class IDMap:
    container_id: int
    host_id: int
    size: int


@dataclass
class Mount:
    source: str
    destination: str
    device: str = "bind"          # filesystem type, or "bind"
    flags: list[str] = field(default_factory=list)   # e.g. ["ro", "nosuid", "rbind"]
    data: str = ""                # fs-specific options, e.g. "size=65536k"
    propagation: list[str] = field(default_factory=list)  # e.g. ["rprivate"]
    # mount_setattr(AT_RECURSIVE) attributes, applied last: ["rro", "rnosuid"]
    recursive: list[str] = field(default_factory=list)
    tmpcopyup: bool = False       # a tmpfs starts with the content it covers
    idmap: str = ""               # "idmap" or "ridmap" (recursive): an id-mapped bind
    uid_mappings: list[IDMap] = field(default_factory=list)   # of an id-mapped bind;
    gid_mappings: list[IDMap] = field(default_factory=list)   # empty: the container's


@dataclass
class Device:
    type: str                     # "c", "b", "p" or "a" (all, for rules only)
    path: str = ""
    major: int = -1               # -1: any
    minor: int = -1
    permissions: str = "rwm"
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0
    allow: bool = True


@dataclass
class Rlimit:
    type: str                     # "RLIMIT_NOFILE" or "NOFILE"
    hard: int
    soft: int


@dataclass
class Network:
    type: str                     # a registered network type: loopback, veth, netns, ...
    name: str = ""                # interface name inside the container (eth0)
    bridge: str = ""
    host_interface_name: str = ""
    address: str = ""             # CIDR
    ipv6_address: str = ""
    gateway: str = ""
    ipv6_gateway: str = ""
    mac_address: str = ""
    mtu: int = 0
    path: str = ""                # for "netns": the namespace to join
    options: dict = field(default_factory=dict)   # type-specific extras


@dataclass
class Route:
    destination: str
    gateway: str = ""
    source: str = ""
    interface_name: str = ""


@dataclass
class WeightDevice:
    major: int
    minor: int
    weight: int


@dataclass
class ThrottleDevice:
    major: int
    minor: int
    rate: int


@dataclass
class HugepageLimit:
    page_size: str                # "2MB", "1GB"
    limit: int


@dataclass
class Resources:
    memory: int = 0               # bytes; 0: unlimited
    memory_reservation: int = 0
    memory_swap: int = 0          # memory+swap, as in v1; -1: unlimited swap
    kernel_memory: int = 0
    oom_kill_disable: bool = False
    cpu_shares: int = 0
    cpu_weight: int = 0           # v2 weight; derived from shares when 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int = 0           # 0: unlimited
    blkio_weight: int = 0
    blkio_weight_device: list[WeightDevice] = field(default_factory=list)
    blkio_throttle_read_bps_device: list[ThrottleDevice] = field(default_factory=list)
    blkio_throttle_write_bps_device: list[ThrottleDevice] = field(default_factory=list)
    blkio_throttle_read_iops_device: list[ThrottleDevice] = field(default_factory=list)
    blkio_throttle_write_iops_device: list[ThrottleDevice] = field(default_factory=list)
    hugetlb_limit: list[HugepageLimit] = field(default_factory=list)
    unified: dict[str, str] = field(default_factory=dict)   # raw v2 keys
    freezer: str = ""
    # issue 14 (docs/cgroups.md): None leaves the kernel's value alone
    cpu_burst: Optional[int] = None          # us; v1 cpu.cfs_burst_us, v2 cpu.max.burst
    cpu_idle: Optional[int] = None           # 0 or 1; cpu.idle
    cpu_rt_period: int = 0                   # us; v1 cpu.rt_period_us
    cpu_rt_runtime: int = 0                  # us; v1 cpu.rt_runtime_us (-1: no limit)
    memory_swappiness: Optional[int] = None  # 0-100; v1 memory.swappiness
    memory_check_before_update: bool = False  # refuse a limit below the current usage
    memory_use_hierarchy: Optional[bool] = None   # v1 memory.use_hierarchy
    blkio_leaf_weight: int = 0               # v1 blkio.leaf_weight (CFQ only)
    net_cls_classid: int = 0                 # v1 net_cls.classid
    net_prio_ifpriomap: dict[str, int] = field(default_factory=dict)  # interface -> priority
    rdma: dict[str, dict[str, int]] = field(default_factory=dict)  # device -> hcaHandles/Objects


@dataclass
class Cgroup:
    name: str = ""
    parent: str = ""
    path: str = ""                # absolute cgroup path; wins over parent/name
    driver: str = ""              # a registered cgroup driver ("v1", "v2"); "" detects
    allow_all_devices: bool = False
    allowed_devices: Optional[list[Device]] = None   # None: DEFAULT_ALLOWED_DEVICES
    resources: Resources = field(default_factory=Resources)


@dataclass
class Capabilities:
    bounding: list[str] = field(default_factory=list)
    effective: list[str] = field(default_factory=list)
    permitted: list[str] = field(default_factory=list)
    inheritable: list[str] = field(default_factory=list)
    ambient: list[str] = field(default_factory=list)


@dataclass
class Hook:
    path: str
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    timeout: int = 0


@dataclass
class Scheduler:                  # sched_setattr(2); names as in the OCI spec
    policy: str                   # "SCHED_OTHER", "SCHED_FIFO", "SCHED_BATCH", ...
    nice: int = 0
    priority: int = 0
    flags: list[str] = field(default_factory=list)   # "SCHED_FLAG_RESET_ON_FORK", ...
    runtime: int = 0              # SCHED_DEADLINE only, nanoseconds
    deadline: int = 0
    period: int = 0


@dataclass
class IOPriority:                 # ioprio_set(2)
    class_: str                   # "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"
    priority: int = 0             # 0 (highest) .. 7


@dataclass
class CPUAffinity:                # of joined processes: CPU lists ("0-3,7")
    initial: str = ""             # before joining the cgroup
    final: str = ""               # after it, before exec


@dataclass
class Personality:                # personality(2)
    domain: str                   # "LINUX" or "LINUX32"
    flags: list[str] = field(default_factory=list)


@dataclass
class MemoryPolicy:               # set_mempolicy(2)
    mode: str                     # "MPOL_BIND", "MPOL_INTERLEAVE", ...
    nodes: str = ""               # "0-3,7"
    flags: list[str] = field(default_factory=list)   # "MPOL_F_STATIC_NODES", ...


@dataclass
class TimeOffset:                 # of a clock in a new time namespace
    secs: int = 0
    nanosecs: int = 0


@dataclass
class Config:
    rootfs: str
    readonlyfs: bool = False
    rootfs_propagation: str = "rslave"         # as runc: the host's unmounts reach it
    no_pivot_root: bool = False
    hostname: str = ""
    domainname: str = ""
    env: list[str] = field(default_factory=lambda: [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"])
    namespaces: list[Namespace] = field(default_factory=list)
    # the capabilities to keep: none by default (as runc, and as the seed's
    # list); None leaves the sets as they are (root keeps all)
    capabilities: Optional[list[str] | Capabilities] = field(default_factory=list)
    networks: list[Network] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    cgroups: Optional[Cgroup] = None
    mounts: list[Mount] = field(default_factory=lambda: default_mounts())
    devices: list[Device] = field(default_factory=lambda: list(DEFAULT_AUTO_CREATED_DEVICES))
    rlimits: list[Rlimit] = field(default_factory=list)
    uid_mappings: list[IDMap] = field(default_factory=list)
    gid_mappings: list[IDMap] = field(default_factory=list)
    mask_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    sysctl: dict[str, str] = field(default_factory=dict)
    seccomp: Optional[dict] = None          # OCI linux.seccomp shape
    no_new_privileges: bool = False
    oom_score_adj: Optional[int] = None
    apparmor_profile: str = ""
    process_label: str = ""
    mount_label: str = ""
    hooks: dict[str, list[Hook]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)   # annotations
    # process attributes of the init and of joined processes (a Process's own win)
    scheduler: Optional[Scheduler] = None
    io_priority: Optional[IOPriority] = None
    exec_cpu_affinity: Optional[CPUAffinity] = None     # joined processes only
    personality: Optional[Personality] = None
    memory_policy: Optional[MemoryPolicy] = None
    time_offsets: dict[str, TimeOffset] = field(default_factory=dict)  # "monotonic", "boottime"
    no_new_keyring: bool = False      # else a session keyring "_ses.<id>" per container

    # -- (de)serialisation ---------------------------------------------------
    @classmethod
    def from_dict(cls, data, where="config"):
        return _load(cls, data, where)

    @classmethod
    def load(cls, path):
        try:
            with open(path) as f:
                data = json.load(f)
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror}") from None
        except ValueError as e:
            raise ConfigError(f"{path} is not valid JSON: {e}") from None
        return cls.from_dict(data, where=str(path))

    def to_dict(self):
        return asdict(self)

    def save(self, path):
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")

    def has_namespace(self, ns_type):
        return any(ns.type == ns_type for ns in self.namespaces)

    def namespace(self, ns_type):
        return next((ns for ns in self.namespaces if ns.type == ns_type), None)


def _c(path, major, minor, mode=0o666):
    return Device(type="c", path=path, major=major, minor=minor, file_mode=mode)


# The seed's default auto-created devices.
DEFAULT_AUTO_CREATED_DEVICES = [
    _c("/dev/null", 1, 3), _c("/dev/zero", 1, 5), _c("/dev/full", 1, 7),
    _c("/dev/tty", 5, 0), _c("/dev/random", 1, 8), _c("/dev/urandom", 1, 9),
]

# Device rules a cgroup allows by default: the auto-created nodes, plus the
# pty multiplexer and the ptys (as runc).
DEFAULT_ALLOWED_DEVICES = [
    *DEFAULT_AUTO_CREATED_DEVICES,
    _c("/dev/console", 5, 1), _c("/dev/pts/ptmx", 5, 2), _c("", 136, -1),
    Device(type="c", major=-1, minor=-1, permissions="m"),
    Device(type="b", major=-1, minor=-1, permissions="m"),
]


def default_mounts():
    """/proc, a read-only /sys, /dev as tmpfs, devpts, /dev/shm, /dev/mqueue."""
    ns = ["nosuid", "noexec", "nodev"]
    return [
        Mount("proc", "/proc", "proc", list(ns)),
        Mount("sysfs", "/sys", "sysfs", [*ns, "ro"]),
        Mount("tmpfs", "/dev", "tmpfs", ["nosuid", "strictatime"], "mode=755,size=65536k"),
        Mount("devpts", "/dev/pts", "devpts", ["nosuid", "noexec"],
              "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        Mount("shm", "/dev/shm", "tmpfs", list(ns), "mode=1777,size=65536k"),
        Mount("mqueue", "/dev/mqueue", "mqueue", list(ns)),
    ]


DEFAULT_MASK_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
DEFAULT_READONLY_PATHS = [
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
]


# -- typed loader ------------------------------------------------------------

def _load(tp, value, where):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _load(arg, value, where)
            except ConfigError as e:
                errors.append(e)
        raise errors[-1]
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {_show(value)}")
        (item,) = typing.get_args(tp)
        return [_load(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {_show(value)}")
        _, vt = typing.get_args(tp)
        return {str(k): _load(vt, v, f"{where}.{k}") for k, v in value.items()}
    if hasattr(tp, "__record_fields__"):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {_show(value)}")
        kwargs = {}
        for f in tp.__record_fields__:
            if f.name in value:
                kwargs[f.name] = _load(f.type, value[f.name], f"{where}.{f.name}")
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"{where}.{f.name}: required field is missing")
        return tp(**kwargs)      # unknown keys are ignored, as the OCI spec asks
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_show(value)}")
        if not -(1 << 63) <= value < (1 << 64):
            raise ConfigError(f"{where}: {value} is out of range")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_show(value)}")
        if "\0" in value:
            raise ConfigError(f"{where}: contains a NUL byte")
        return value
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {_show(value)}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {where}")


def _show(value):
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
