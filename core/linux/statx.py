"""statx(2), for the mount id of a file (STATX_MNT_ID, Linux 5.8)."""
import ctypes

from .libc import b, check, fn

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
STATX_MNT_ID = 0x1000
_MNT_ID_OFFSET = 0x90      # struct statx: __u64 stx_mnt_id


# int statx(int dirfd, const char *pathname, int flags, unsigned int mask,
#           struct statx *statxbuf);
_statx = fn("statx", ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
            ctypes.c_uint, ctypes.c_void_p)


def mount_id(path, dirfd=AT_FDCWD, flags=0):
    """The id of the mount `path` is on (symlinks followed), as in the first
    field of /proc/self/mountinfo; None if the kernel does not report it."""
    buf = ctypes.create_string_buffer(256)
    check(_statx(dirfd, b(path), flags, STATX_MNT_ID, buf), f"statx({path!r}, STATX_MNT_ID)")
    mask = int.from_bytes(buf.raw[0:4], "little")
    if not mask & STATX_MNT_ID:
        return None
    return int.from_bytes(buf.raw[_MNT_ID_OFFSET:_MNT_ID_OFFSET + 8], "little")


def fd_mount_id(fd):
    return mount_id("", fd, AT_EMPTY_PATH)


