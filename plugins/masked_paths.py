"""Masked and read-only paths (``config.mask_paths``, ``config.readonly_paths``;
the usual lists are ``configs.DEFAULT_MASK_PATHS`` and
``DEFAULT_READONLY_PATHS``).

A masked file gets /dev/null bound over it, a masked directory an empty
read-only tmpfs; a read-only path is bound onto itself read-only. Done after
``pivot_root``; a path that does not exist is skipped.

Each path is opened once (not following a last symlink) and everything is
done through that fd (runc's CVE-2025-31133 class): /dev/null must be the
character device 1:3, not a symlink to a procfs file that the mask would
bind writable; a path under /proc or /sys must be on procfs or sysfs; the
mounts go onto the fd (open_tree, move_mount, fchdir), never through
/proc/self/fd, which may be the image's own files.
"""
import errno
import os
import stat

from libcontainer import hookimpl
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux.mount import (AT_EMPTY_PATH, AT_RECURSIVE, ATTR, MS, OPEN_TREE_CLOEXEC,
                                      OPEN_TREE_CLONE, fstatfs_type, mount, mount_setattr,
                                      move_mount, open_tree)

PROC_SUPER_MAGIC = 0x9FA0
SYSFS_MAGIC = 0x62656572
_EXPECTED = (("/proc/", PROC_SUPER_MAGIC, "procfs"), ("/sys/", SYSFS_MAGIC, "sysfs"))


@hookimpl
def libcontainer_validate_config(config):
    for field in ("mask_paths", "readonly_paths"):
        for i, path in enumerate(getattr(config, field)):
            if not path.startswith("/"):
                raise ConfigError(f"{field}[{i}]: {path!r} is not an absolute path")


@hookimpl
def libcontainer_setup_environment(container, process):
    for path in dict.fromkeys(container.config.readonly_paths):
        readonly(path)
    if not container.config.mask_paths:
        return
    null = _dev_null()
    try:
        for path in dict.fromkeys(container.config.mask_paths):     # once each
            mask(path, null)
    finally:
        os.close(null)


def _dev_null():
    try:
        fd = os.open("/dev/null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise SetupError(f"masked paths: /dev/null: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise SetupError("masked paths: the container's /dev/null is not the character "
                         "device 1:3")
    return fd


def _open(path, what):
    """An O_PATH fd of `path` (its last component not followed), checked;
    None if it does not exist."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            raise SetupError(f"refusing to {what} {path}: it is a symlink")
        for prefix, magic, name in _EXPECTED:
            if path.startswith(prefix) and fstatfs_type(fd) != magic:
                raise SetupError(f"refusing to {what} {path}: it is not on {name}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def mask(path, null):
    fd = _open(path, "mask")
    if fd is None:
        return
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.fchdir(fd)
            try:
                mount("tmpfs", ".", "tmpfs", MS.RDONLY, "mode=0555")
            finally:
                os.chdir("/")
        else:
            _bind_onto(null, fd)
    except OSError as e:
        raise OSError(e.errno, e.strerror, f"{e.filename} (masking {path})") from None
    finally:
        os.close(fd)


def readonly(path):
    fd = _open(path, "make read-only")
    if fd is None:
        return
    try:
        _bind_onto(fd, fd, readonly=True)
    except OSError as e:
        raise OSError(e.errno, e.strerror, f"{e.filename} (read-only {path})") from None
    finally:
        os.close(fd)


def _bind_onto(source_fd, target_fd, readonly=False):
    tree = open_tree("", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH
                     | (AT_RECURSIVE if readonly else 0), dfd=source_fd)
    try:
        if readonly:
            mount_setattr(tree, ATTR.RDONLY)
        move_mount(tree, target_fd)
    finally:
        os.close(tree)
