"""Masked and read-only paths (``config.mask_paths``, ``config.readonly_paths``;
the usual lists are ``configs.DEFAULT_MASK_PATHS`` and
``DEFAULT_READONLY_PATHS``).

A masked file gets /dev/null bound over it, a masked directory an empty
read-only tmpfs; a read-only path is bound onto itself and remounted
read-only. Done after ``pivot_root``, so a path can only lead to the
container's own files; a path that does not exist is skipped.
"""
import errno
import os
import stat

from libcontainer import hookimpl
from libcontainer.errors import ConfigError
from libcontainer.linux.mount import MS, mount

# statvfs f_flag bits that a bind remount must keep (they may be locked)
_KEEP = {os.ST_NOSUID: MS.NOSUID, os.ST_NODEV: MS.NODEV, os.ST_NOEXEC: MS.NOEXEC}


@hookimpl
def libcontainer_validate_config(config):
    for field in ("mask_paths", "readonly_paths"):
        for i, path in enumerate(getattr(config, field)):
            if not path.startswith("/"):
                raise ConfigError(f"{field}[{i}]: {path!r} is not an absolute path")


@hookimpl
def libcontainer_setup_environment(container, process):
    for path in container.config.readonly_paths:
        readonly(path)
    for path in container.config.mask_paths:
        mask(path)


def _stat(path):
    try:
        return os.stat(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def mask(path):
    st = _stat(path)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        mount("tmpfs", path, "tmpfs", MS.RDONLY, "mode=0555")
    else:
        mount("/dev/null", path, None, MS.BIND)


def readonly(path):
    if _stat(path) is None:
        return
    mount(path, path, None, MS.BIND | MS.REC)
    flags = MS.BIND | MS.REMOUNT | MS.RDONLY
    f_flag = os.statvfs(path).f_flag
    for bit, ms in _KEEP.items():
        if f_flag & bit:
            flags |= ms
    mount(None, path, None, flags)
