"""Per-process kernel attributes: sched_setattr(2), ioprio_set(2),
personality(2), set_mempolicy(2), keyctl(2) (the session keyring)."""
import ctypes
import os

from .libc import b, check, fn

# x86_64 and aarch64 numbers of the calls libc does not wrap
_NR = {"x86_64": {"sched_setattr": 314, "ioprio_set": 251, "set_mempolicy": 238,
                  "keyctl": 250},
       "aarch64": {"sched_setattr": 274, "ioprio_set": 30, "set_mempolicy": 237,
                   "keyctl": 219}}.get(os.uname().machine, {})

SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
                  "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
PERSONALITIES = {"LINUX": 0x0000, "LINUX32": 0x0008}
MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
              "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_STATIC_NODES": 1 << 15, "MPOL_F_RELATIVE_NODES": 1 << 14,
              "MPOL_F_NUMA_BALANCING": 1 << 13}


class _SchedAttr(ctypes.Structure):
    # struct sched_attr (SCHED_ATTR_SIZE_VER1, with the utilization clamps)
    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32),
                ("sched_flags", ctypes.c_uint64), ("sched_nice", ctypes.c_int32),
                ("sched_priority", ctypes.c_uint32), ("sched_runtime", ctypes.c_uint64),
                ("sched_deadline", ctypes.c_uint64), ("sched_period", ctypes.c_uint64),
                ("sched_util_min", ctypes.c_uint32), ("sched_util_max", ctypes.c_uint32)]


def _syscall(name, *argtypes):
    return fn("syscall", ctypes.c_long, ctypes.c_long, *argtypes), _NR.get(name)


# long syscall(SYS_sched_setattr, pid_t pid, struct sched_attr *attr, unsigned flags)
_sched_setattr = _syscall("sched_setattr", ctypes.c_int, ctypes.POINTER(_SchedAttr),
                          ctypes.c_uint)
# long syscall(SYS_ioprio_set, int which, int who, int ioprio)
_ioprio_set = _syscall("ioprio_set", ctypes.c_int, ctypes.c_int, ctypes.c_int)
# long syscall(SYS_set_mempolicy, int mode, const unsigned long *nodemask, unsigned long maxnode)
_set_mempolicy = _syscall("set_mempolicy", ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong)
# long syscall(SYS_keyctl, int op, const char *name, ...)  (JOIN_SESSION_KEYRING)
_keyctl_str = _syscall("keyctl", ctypes.c_int, ctypes.c_char_p)
# long syscall(SYS_keyctl, int op, key_serial_t key, unsigned long arg3)
_keyctl_int = _syscall("keyctl", ctypes.c_int, ctypes.c_int32, ctypes.c_ulong)
# int personality(unsigned long persona);
_personality = fn("personality", ctypes.c_int, ctypes.c_ulong)


def _call(pair, call, *args):
    f, nr = pair
    if nr is None:
        raise OSError(38, os.strerror(38), f"{call}: unknown syscall on {os.uname().machine}")
    return check(f(nr, *args), call)


def sched_setattr(policy, nice=0, priority=0, flags=(), runtime=0, deadline=0, period=0):
    attr = _SchedAttr(ctypes.sizeof(_SchedAttr), SCHED_POLICIES[policy],
                      sum(SCHED_FLAGS[f] for f in flags), nice, priority, runtime, deadline,
                      period, 0, 1024)
    _call(_sched_setattr, f"sched_setattr(0, {policy}, nice={nice}, priority={priority}, "
          f"flags={list(flags)})", 0, ctypes.byref(attr), 0)


def ioprio_set(klass, priority):
    # IOPRIO_WHO_PROCESS (1), the calling thread (0); class in the top 3 of 16 bits
    _call(_ioprio_set, f"ioprio_set({klass}, {priority})", 1, 0,
          (IOPRIO_CLASSES[klass] << 13) | priority)


def personality(domain):
    check(_personality(PERSONALITIES[domain]), f"personality({domain})")


def parse_list(text):
    """'0-3,7' -> {0, 1, 2, 3, 7}; ValueError on a malformed list."""
    out = set()
    for part in filter(None, text.replace(" ", "").split(",")):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if first < 0 or last < first:
            raise ValueError(part)
        out.update(range(first, last + 1))
    return out


def set_mempolicy(mode, nodes=(), flags=()):
    nodes = sorted(nodes)
    words = (nodes[-1] // 64 + 1) if nodes else 1
    mask = (ctypes.c_ulong * words)()
    for n in nodes:
        mask[n // 64] |= 1 << (n % 64)
    value = MPOL_MODES[mode] | sum(MPOL_FLAGS[f] for f in flags)
    _call(_set_mempolicy, f"set_mempolicy({mode}, nodes={nodes}, flags={list(flags)})",
          value, ctypes.addressof(mask) if nodes else None, words * 64 + 1 if nodes else 0)


KEYCTL_SETPERM = 5
KEYCTL_DESCRIBE = 6
KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name):
    """A new (or the existing, searchable) session keyring called `name`;
    its serial."""
    return _call(_keyctl_str, f"keyctl(JOIN_SESSION_KEYRING, {name!r})",
                 KEYCTL_JOIN_SESSION_KEYRING, b(name))


def keyring_setperm(serial, perm):
    _call(_keyctl_int, f"keyctl(SETPERM, {serial}, {perm:#x})", KEYCTL_SETPERM, serial, perm)


def keyring_perm(serial):
    """The permission mask of key `serial` (from KEYCTL_DESCRIBE's
    "type;uid;gid;perm;description")."""
    f, nr = _keyctl_describe
    buf = ctypes.create_string_buffer(512)
    check(f(nr, KEYCTL_DESCRIBE, serial, buf, len(buf)), f"keyctl(DESCRIBE, {serial})")
    return int(buf.value.split(b";")[3], 16)


# long syscall(SYS_keyctl, KEYCTL_DESCRIBE, key_serial_t key, char *buf, size_t len)
_keyctl_describe = _syscall("keyctl", ctypes.c_int, ctypes.c_int32, ctypes.c_char_p,
                            ctypes.c_size_t)
