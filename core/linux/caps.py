"""capget(2), capset(2) and the prctl(2) capability calls: the five sets of
the calling thread.

A set is a Python ``set`` of capability numbers; :data:`NAMES` maps names
(without ``CAP_``) to numbers.
"""
import ctypes

from .libc import check, fn
from .misc import (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, PR_CAP_AMBIENT_RAISE,
                   PR_CAPBSET_DROP, PR_CAPBSET_READ, prctl)

NAMES = {name: i for i, name in enumerate([
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"])}
NUMBERS = {v: k for k, v in NAMES.items()}
PR_CAP_AMBIENT_IS_SET = 1
SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")

_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


# int capget(cap_user_header_t hdrp, cap_user_data_t datap);
_capget = fn("capget", ctypes.c_int, ctypes.POINTER(_Header), ctypes.POINTER(_Data * 2))
# int capset(cap_user_header_t hdrp, const cap_user_data_t datap);
_capset = fn("capset", ctypes.c_int, ctypes.POINTER(_Header), ctypes.POINTER(_Data * 2))


def number(name):
    """'CHOWN', 'CAP_CHOWN', 'cap_chown' -> 0; None if unknown."""
    key = str(name).upper()
    return NAMES.get(key[4:] if key.startswith("CAP_") else key)


def names(caps):
    return sorted((NUMBERS.get(c, str(c)) for c in caps), key=lambda n: NAMES.get(n, 99))


def _read_last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return max(NUMBERS)


# read once, at import, in the runtime: after pivot_root /proc may be the
# image's own directory, whose "-1" would skip every bounding-set drop
_LAST_CAP = _read_last_cap()


def last_cap():
    """The highest capability number the running kernel knows."""
    return _LAST_CAP


def _bits(mask):
    return {i for i in range(64) if mask >> i & 1}


def _mask(caps):
    m = 0
    for c in caps:
        m |= 1 << c
    return m


def capget():
    """(effective, permitted, inheritable) of the calling thread."""
    hdr, data = _Header(_VERSION_3, 0), (_Data * 2)()
    check(_capget(ctypes.byref(hdr), ctypes.byref(data)), "capget()")
    return tuple(_bits(getattr(data[0], f) | getattr(data[1], f) << 32)
                 for f in ("effective", "permitted", "inheritable"))


def capset(effective, permitted, inheritable):
    hdr, data = _Header(_VERSION_3, 0), (_Data * 2)()
    for field, caps in (("effective", effective), ("permitted", permitted),
                        ("inheritable", inheritable)):
        m = _mask(caps)
        setattr(data[0], field, m & 0xFFFFFFFF)
        setattr(data[1], field, m >> 32)
    check(_capset(ctypes.byref(hdr), ctypes.byref(data)),
          lambda: f"capset(effective={names(effective)}, permitted={names(permitted)}, "
                  f"inheritable={names(inheritable)})")


def bounding(among=None):
    """The bounding set; with `among`, only which of those capabilities are in it."""
    if among is None:
        among = range(last_cap() + 1)
    return {c for c in among if prctl(PR_CAPBSET_READ, c) == 1}


def drop_bounding(cap):
    prctl(PR_CAPBSET_DROP, cap)


def ambient():
    last = last_cap()
    return {c for c in range(last + 1) if prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c) == 1}


def set_ambient(caps):
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    for c in sorted(caps):
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c)

