"""mount(2), umount2(2), pivot_root(2); the new mount API: open_tree(2),
move_mount(2), mount_setattr(2)."""
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
    POSIXACL = 1 << 16
    UNBINDABLE = 1 << 17
    PRIVATE = 1 << 18
    SLAVE = 1 << 19
    SHARED = 1 << 20
    RELATIME = 1 << 21
    I_VERSION = 1 << 23
    STRICTATIME = 1 << 24
    LAZYTIME = 1 << 25


MNT_DETACH = 2

# mount(8) option -> (flag, True: set it / False: clear it); every name runc knows
FLAGS = {
    "ro": (MS.RDONLY, True), "rw": (MS.RDONLY, False),
    "nosuid": (MS.NOSUID, True), "suid": (MS.NOSUID, False),
    "nodev": (MS.NODEV, True), "dev": (MS.NODEV, False),
    "noexec": (MS.NOEXEC, True), "exec": (MS.NOEXEC, False),
    "sync": (MS.SYNCHRONOUS, True), "async": (MS.SYNCHRONOUS, False),
    "dirsync": (MS.DIRSYNC, True), "remount": (MS.REMOUNT, True),
    "mand": (MS.MANDLOCK, True), "nomand": (MS.MANDLOCK, False),
    "atime": (MS.NOATIME, False), "noatime": (MS.NOATIME, True),
    "diratime": (MS.NODIRATIME, False), "nodiratime": (MS.NODIRATIME, True),
    "relatime": (MS.RELATIME, True), "norelatime": (MS.RELATIME, False),
    "strictatime": (MS.STRICTATIME, True), "nostrictatime": (MS.STRICTATIME, False),
    "lazytime": (MS.LAZYTIME, True), "nolazytime": (MS.LAZYTIME, False),
    "iversion": (MS.I_VERSION, True), "noiversion": (MS.I_VERSION, False),
    "acl": (MS.POSIXACL, True), "noacl": (MS.POSIXACL, False),
    "silent": (MS.SILENT, True), "loud": (MS.SILENT, False),
    "nosymfollow": (MS.NOSYMFOLLOW, True), "symfollow": (MS.NOSYMFOLLOW, False),
    "bind": (MS.BIND, True), "rbind": (MS.BIND | MS.REC, True),
    "defaults": (MS(0), True),
}


class ATTR(enum.IntFlag):
    """MOUNT_ATTR_* of mount_setattr(2)."""
    RDONLY = 0x1
    NOSUID = 0x2
    NODEV = 0x4
    NOEXEC = 0x8
    NOATIME = 0x10          # the atime mode is a 3-bit field (_ATIME), not flags:
    STRICTATIME = 0x20      # changing it needs all of _ATIME cleared
    NODIRATIME = 0x80
    IDMAP = 0x100000
    NOSYMFOLLOW = 0x200000


ATIME_MASK = 0x70
# recursive option -> (attributes set, attributes cleared); "relatime" is
# the atime mode 0
RECURSIVE = {
    "rro": (ATTR.RDONLY, 0), "rrw": (0, ATTR.RDONLY),
    "rnosuid": (ATTR.NOSUID, 0), "rsuid": (0, ATTR.NOSUID),
    "rnodev": (ATTR.NODEV, 0), "rdev": (0, ATTR.NODEV),
    "rnoexec": (ATTR.NOEXEC, 0), "rexec": (0, ATTR.NOEXEC),
    "rnodiratime": (ATTR.NODIRATIME, 0), "rdiratime": (0, ATTR.NODIRATIME),
    "rnosymfollow": (ATTR.NOSYMFOLLOW, 0), "rsymfollow": (0, ATTR.NOSYMFOLLOW),
    "rrelatime": (0, ATIME_MASK), "rnorelatime": (ATTR.STRICTATIME, ATIME_MASK),
    "rnoatime": (ATTR.NOATIME, ATIME_MASK), "ratime": (0, ATIME_MASK),
    "rstrictatime": (ATTR.STRICTATIME, ATIME_MASK), "rnostrictatime": (0, ATIME_MASK),
}

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_SYMLINKS = 0x10
MOVE_MOUNT_T_EMPTY_PATH = 0x40
# the same numbers on every architecture (the syscall table was unified)
SYS_open_tree, SYS_move_mount, SYS_mount_setattr = 428, 429, 442


class _MountAttr(ctypes.Structure):
    # struct mount_attr { __u64 attr_set, attr_clr, propagation, userns_fd; };
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


# int mount(const char *source, const char *target, const char *fstype,
#           unsigned long flags, const void *data);
_mount = fn("mount", ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
            ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
# int umount2(const char *target, int flags);
_umount2 = fn("umount2", ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
# int syscall(SYS_pivot_root, const char *new_root, const char *put_old);
_syscall = fn("syscall", ctypes.c_long, ctypes.c_long, ctypes.c_char_p, ctypes.c_char_p)
SYS_pivot_root = 155
# the new mount API through syscall(2): glibc 2.36 has no wrappers for all
_sys = fn("syscall", ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_char_p,
          ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong)
_sys_move = fn("syscall", ctypes.c_long, ctypes.c_long, ctypes.c_int, ctypes.c_char_p,
               ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)


def mount(source, target, fstype=None, flags=0, data=None):
    check(_mount(b(source), b(target), b(fstype), int(flags), b(data)),
          lambda: f"mount({source!r}, {target!r}, {fstype!r}, {MS(flags)!r}, {data!r})")


def umount2(target, flags=0):
    check(_umount2(b(target), flags), f"umount2({target!r}, {flags})")


def pivot_root(new_root, put_old):
    check(_syscall(SYS_pivot_root, b(new_root), b(put_old)),
          f"pivot_root({new_root!r}, {put_old!r})")


def open_tree(path, flags, dfd=AT_FDCWD):
    """int open_tree(int dfd, const char *path, unsigned int flags)"""
    return check(_sys(SYS_open_tree, dfd, b(path), flags, None, 0),
                 f"open_tree({path!r}, {flags:#x})")


def _target(target):
    """(dfd, path, extra flags) of an fd or a path (followed: /proc/self/fd/N)."""
    if isinstance(target, int):
        return target, b"", AT_EMPTY_PATH
    return AT_FDCWD, b(target), 0


def move_mount(from_fd, target):
    """Attach the detached tree `from_fd` onto `target` (an fd or a path).
    int move_mount(int from_dfd, const char *from_path, int to_dfd,
                   const char *to_path, unsigned int flags)"""
    dfd, path, empty = _target(target)
    flags = MOVE_MOUNT_F_EMPTY_PATH | (MOVE_MOUNT_T_EMPTY_PATH if empty else MOVE_MOUNT_T_SYMLINKS)
    check(_sys_move(SYS_move_mount, from_fd, b"", dfd, path, flags),
          f"move_mount({from_fd}, {target!r})")


def mount_setattr(target, attr_set=0, attr_clr=0, userns_fd=0, recursive=False, what=None):
    """Change the attributes of the mount at `target` (an fd or a path), and
    of every mount beneath it if `recursive`.
    int mount_setattr(int dfd, const char *path, unsigned int flags,
                      struct mount_attr *attr, size_t size)"""
    dfd, path, flags = _target(target)
    attr = _MountAttr(int(attr_set), int(attr_clr), 0, userns_fd)
    flags |= AT_RECURSIVE if recursive else 0
    check(_sys(SYS_mount_setattr, dfd, path, flags, ctypes.addressof(attr), ctypes.sizeof(attr)),
          lambda: f"mount_setattr({what or target!r}, set={ATTR(attr_set)!r}, "
                  f"clear={attr_clr:#x}{', recursive' if recursive else ''})")


# int fstatfs(int fd, struct statfs *buf); f_type is the first field (a long)
_fstatfs = fn("fstatfs", ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def fstatfs_type(fd):
    """The filesystem's magic number (PROC_SUPER_MAGIC, ...) of what `fd` is on."""
    buf = ctypes.create_string_buffer(256)      # > sizeof(struct statfs)
    check(_fstatfs(fd, buf), f"fstatfs({fd})")
    return ctypes.c_long.from_buffer(buf).value
