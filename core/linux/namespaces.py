"""unshare(2), setns(2) and the namespace flag names."""
import ctypes
import enum

from .libc import check, fn


class CLONE(enum.IntFlag):
    NEWTIME = 0x00000080
    NEWNS = 0x00020000
    NEWCGROUP = 0x02000000
    NEWUTS = 0x04000000
    NEWIPC = 0x08000000
    NEWUSER = 0x10000000
    NEWPID = 0x20000000
    NEWNET = 0x40000000


# config name -> (flag, /proc/PID/ns/<file>)
NAMESPACES = {
    "NEWNS": (CLONE.NEWNS, "mnt"),
    "NEWUTS": (CLONE.NEWUTS, "uts"),
    "NEWIPC": (CLONE.NEWIPC, "ipc"),
    "NEWPID": (CLONE.NEWPID, "pid"),
    "NEWNET": (CLONE.NEWNET, "net"),
    "NEWCGROUP": (CLONE.NEWCGROUP, "cgroup"),
    "NEWUSER": (CLONE.NEWUSER, "user"),
    "NEWTIME": (CLONE.NEWTIME, "time"),
}

# int unshare(int flags);
_unshare = fn("unshare", ctypes.c_int, ctypes.c_int)
# int setns(int fd, int nstype);
_setns = fn("setns", ctypes.c_int, ctypes.c_int, ctypes.c_int)


def unshare(flags):
    check(_unshare(int(flags)), lambda: f"unshare({CLONE(flags)!r})")


def setns(fd, nstype=0, what=None):
    check(_setns(fd, int(nstype)), lambda: f"setns({what or fd!r}, {CLONE(nstype)!r})")
