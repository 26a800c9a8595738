"""Resolving a container path inside its rootfs without escaping it.

A rootfs may hold symlinks like ``/etc -> /`` or ``x -> ../../..``; mounting
onto ``rootfs + "/etc/..."`` naively would follow them onto the host
(CVE-2021-30465). Each component is resolved here as the kernel would with
``/`` being the rootfs: absolute link targets restart at the rootfs, ``..``
stops at it.
"""
import contextlib
import ctypes
import errno
import os
import stat

from .linux.libc import fn


def resolve_in_root(root, path, max_links=40):
    """The host path of `path` seen from inside `root`. Components that do not
    exist yet are appended literally."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    parts.reverse()
    current = []
    links = 0
    while parts:
        part = parts.pop()
        if part == "..":
            if current:
                current.pop()
            continue
        full = os.path.join(root, *current, part)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            current.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > max_links:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), f"resolve {path!r}")
            target = os.readlink(full)
            if target.startswith("/"):
                current = []
            parts.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
            continue
        current.append(part)
    return os.path.join(root, *current)


# -- fd-based: no window between resolving a path and using it ---------------

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
_SYS_openat2 = 437


class _OpenHow(ctypes.Structure):
    # struct open_how { __u64 flags; __u64 mode; __u64 resolve; };
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


# long syscall(SYS_openat2, int dirfd, const char *path, struct open_how *how, size_t size);
_openat2 = fn("syscall", ctypes.c_long, ctypes.c_long, ctypes.c_int, ctypes.c_char_p,
              ctypes.POINTER(_OpenHow), ctypes.c_size_t)


# root path -> [fd, (st_dev, st_ino)] while held(): one open of the rootfs for
# the ~40 lookups of a container's mounts and device nodes
_held = {}


@contextlib.contextmanager
def held(root):
    """Open `root` once for every lookup in it within the block. The fd stays
    on the mount it was opened on: a mount onto the root itself is seen only
    after :func:`mounted_onto` drops it (a later lookup reopens)."""
    if root in _held:
        yield
        return
    _held[root] = None
    try:
        yield
    finally:
        entry = _held.pop(root)
        if entry is not None:
            os.close(entry[0])


def mounted_onto(root, fd):
    """Call after mounting onto `fd` (a path in `root`): if it is the root
    itself, the held fd no longer leads to the top mount and is dropped."""
    entry = _held.get(root)
    if entry is not None:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) == entry[1]:
            _held[root] = None
            os.close(entry[0])


def _root_fd(root):
    entry = _held.get(root)
    if entry is not None:
        return entry[0]
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if root in _held:
        st = os.fstat(fd)
        _held[root] = [fd, (st.st_dev, st.st_ino)]
    return fd


def open_in_root(root, path, flags=os.O_PATH):
    """An fd (close-on-exec) for `path` resolved with `root` as ``/``:
    openat2(RESOLVE_IN_ROOT), so that no symlink -- absolute, ``..`` or
    swapped in meanwhile -- leads outside (CVE-2021-30465). Kernels before
    5.6 get :func:`resolve_in_root` and a check of the opened file's path."""
    rootfd = _root_fd(root)
    try:
        how = _OpenHow(flags | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        rel = path.lstrip("/") or "."
        fd = _openat2(_SYS_openat2, rootfd, os.fsencode(rel), ctypes.byref(how),
                      ctypes.sizeof(how))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err != errno.ENOSYS:
            raise OSError(err, os.strerror(err), f"openat2({root!r}, {path!r}, RESOLVE_IN_ROOT)")
    finally:
        if root not in _held:
            os.close(rootfd)
    fd = os.open(resolve_in_root(root, path), flags | os.O_CLOEXEC)
    real = os.readlink(f"/proc/self/fd/{fd}")
    if real != root and not real.startswith(root.rstrip("/") + "/"):
        os.close(fd)
        raise OSError(errno.EXDEV, "path leads outside the root", f"open {path!r} in {root!r}")
    return fd


def mkdirs_in_root(root, path, mode=0o755):
    """``mkdir -p`` of `path` inside `root` (symlinks followed inside it, as
    :func:`resolve_in_root`), each directory made relative to an fd of its
    parent opened with :func:`open_in_root`."""
    try:
        os.close(open_in_root(root, path, os.O_PATH | os.O_DIRECTORY))
        return      # the usual case: it exists, one lookup
    except FileNotFoundError:
        pass
    parts = _inside(root, path)
    for i in range(len(parts)):
        sub = "/".join(parts[:i + 1])
        try:
            os.close(open_in_root(root, sub, os.O_PATH | os.O_DIRECTORY))
            continue
        except FileNotFoundError:
            pass
        parent = open_in_root(root, "/".join(parts[:i]), os.O_PATH | os.O_DIRECTORY)
        try:
            os.mkdir(parts[i], mode, dir_fd=parent)
        except FileExistsError:
            pass
        finally:
            os.close(parent)


def create_file_in_root(root, path, mode=0o644):
    """Make `path` inside `root` exist as a (regular, empty) file unless it
    exists already; its parent directories are made as needed."""
    try:
        os.close(open_in_root(root, path))
        return
    except FileNotFoundError:
        pass
    parts = _inside(root, path)
    if not parts:
        return
    mkdirs_in_root(root, "/".join(parts[:-1]))
    parent = open_in_root(root, "/".join(parts[:-1]), os.O_PATH | os.O_DIRECTORY)
    try:
        # O_NOFOLLOW|O_EXCL: never through a symlink planted meanwhile
        fd = os.open(parts[-1],
                     os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC,
                     mode, dir_fd=parent)
        os.close(fd)
    except FileExistsError:
        pass
    finally:
        os.close(parent)


def _inside(root, path):
    """The components of `path` resolved inside `root` (no symlinks left
    among those that exist)."""
    rel = os.path.relpath(resolve_in_root(root, path), root)
    return [p for p in rel.split("/") if p not in ("", ".")]
