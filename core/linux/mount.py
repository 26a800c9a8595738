"""mount(2), umount2(2), pivot_root(2)."""
import ctypes
import enum

from .libc import b, check, fn


class MS(enum.IntFlag):
    RDONLY = 1
    NOSUID = 2
    NODEV = 4
    NOEXEC = 8
    SYNCHRONOUS = 16
    REMOUNT = 32
    MANDLOCK = 64
    DIRSYNC = 128
    NOSYMFOLLOW = 256
    NOATIME = 1024
    NODIRATIME = 2048
    BIND = 4096
    MOVE = 8192
    REC = 16384
    SILENT = 32768
    UNBINDABLE = 1 << 17
    PRIVATE = 1 << 18
    SLAVE = 1 << 19
    SHARED = 1 << 20
    RELATIME = 1 << 21
    STRICTATIME = 1 << 24
    LAZYTIME = 1 << 25


MNT_DETACH = 2

# int mount(const char *source, const char *target, const char *fstype,
#           unsigned long flags, const void *data);
_mount = fn("mount", ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
            ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
# int umount2(const char *target, int flags);
_umount2 = fn("umount2", ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
# int syscall(SYS_pivot_root, const char *new_root, const char *put_old);
_syscall = fn("syscall", ctypes.c_long, ctypes.c_long, ctypes.c_char_p, ctypes.c_char_p)
SYS_pivot_root = 155


def mount(source, target, fstype=None, flags=0, data=None):
    check(_mount(b(source), b(target), b(fstype), int(flags), b(data)),
          f"mount({source!r}, {target!r}, {fstype!r}, {MS(flags)!r}, {data!r})")


def umount2(target, flags=0):
    check(_umount2(b(target), flags), f"umount2({target!r}, {flags})")


def pivot_root(new_root, put_old):
    check(_syscall(SYS_pivot_root, b(new_root), b(put_old)),
          f"pivot_root({new_root!r}, {put_old!r})")
