"""The root filesystem: mounts (resolved inside the rootfs), pivot_root and
the read-only root.

Mount flags are the names of mount(8): ro, nosuid, nodev, noexec, bind,
rbind, ...; propagation is private/rprivate/slave/rslave/shared/rshared.
"""
import contextlib
import errno
import os
import stat

from libcontainer import hookimpl
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux.mount import FLAGS, MNT_DETACH, MS, mount, pivot_root, umount2
from libcontainer.rootpath import create_file_in_root, mkdirs_in_root, open_in_root

from . import mount_options

PROPAGATION = {
    "private": MS.PRIVATE, "rprivate": MS.PRIVATE | MS.REC,
    "slave": MS.SLAVE, "rslave": MS.SLAVE | MS.REC,
    "shared": MS.SHARED, "rshared": MS.SHARED | MS.REC,
    "unbindable": MS.UNBINDABLE, "runbindable": MS.UNBINDABLE | MS.REC,
}


def parse_flags(names, where):
    flags, clear = MS(0), MS(0)
    for name in names:
        if name not in FLAGS:
            raise ConfigError(f"{where}: unknown mount flag {name!r}")
        bit, on = FLAGS[name]
        if on:
            flags |= bit
        else:
            clear |= bit
    return flags & ~clear


@hookimpl
def libcontainer_validate_config(config):
    if not config.rootfs:
        raise ConfigError("rootfs: is empty")
    if not os.path.isabs(config.rootfs):
        raise ConfigError(f"rootfs: {config.rootfs!r} is not an absolute path")
    if not os.path.isdir(config.rootfs):
        raise ConfigError(f"rootfs: {config.rootfs} does not exist or is not a directory")
    if not os.access(config.rootfs, os.R_OK | os.X_OK):
        raise ConfigError(f"rootfs: {config.rootfs} is not readable by uid {os.geteuid()}")
    if config.rootfs_propagation not in PROPAGATION:
        raise ConfigError(f"rootfs_propagation: unknown propagation "
                          f"{config.rootfs_propagation!r}")
    mount_options.validate(config)
    for i, m in enumerate(config.mounts):
        where = f"mounts[{i}]"
        if not m.destination.startswith("/"):
            raise ConfigError(f"{where}.destination: {m.destination!r} is not absolute")
        parse_flags(m.flags, f"{where}.flags")
        for p in m.propagation:
            if p not in PROPAGATION:
                raise ConfigError(f"{where}.propagation: unknown propagation {p!r}")
        if m.device == "bind" or "bind" in m.flags or "rbind" in m.flags:
            if not os.path.exists(m.source):
                raise ConfigError(f"{where}.source: {m.source} does not exist")


@hookimpl
def libcontainer_setup_mounts(container, process):
    config = container.config
    rootfs = os.path.realpath(config.rootfs)
    # nothing we mount may propagate back to the host
    mount(None, "/", None, PROPAGATION[config.rootfs_propagation])
    mount(rootfs, rootfs, None, MS.BIND | MS.REC)
    for m in config.mounts:
        mount_into(rootfs, m)


def mount_into(rootfs, m):
    """Mount `m` inside `rootfs`: the destination is made and opened with the
    rootfs as ``/`` (core/rootpath.py), and the mount goes onto that fd, so
    that no symlink -- there or swapped in meanwhile -- leads it outside
    (CVE-2021-30465)."""
    flags = parse_flags(m.flags, m.destination)
    is_bind = m.device == "bind" or flags & MS.BIND
    if m.device == "proc" or m.device == "sysfs":
        # CVE-2019-19921: never mount procfs/sysfs over a symlink or a file
        try:
            fd = open_in_root(rootfs, m.destination, os.O_PATH | os.O_NOFOLLOW)
        except FileNotFoundError:
            fd = None
        if fd is not None:
            mode = os.fstat(fd).st_mode
            os.close(fd)
            if not stat.S_ISDIR(mode):
                raise SetupError(f"mount {m.destination}: refusing to mount {m.device} "
                                 f"over a symlink or non-directory")
    if is_bind and not stat.S_ISDIR(mount_options.stat_source(m).st_mode):
        create_file_in_root(rootfs, m.destination)
    else:
        mkdirs_in_root(rootfs, m.destination)
    lower = None
    try:
        with _opened(rootfs, m.destination) as dest:
            if is_bind:
                if not mount_options.attach(m, dest):
                    mount(m.source, dest, None, MS.BIND | (flags & MS.REC))
            else:
                if m.tmpcopyup:
                    # what the tmpfs will cover stays reachable through this fd;
                    # the tmpfs is writable until filled
                    lower = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    mount(m.source or m.device, dest, m.device,
                          flags & ~MS.RDONLY if lower is not None else flags, m.data or None)
                except OSError as e:
                    _mount_fallback(m, dest, flags, e)
        extra = flags & ~(MS.BIND | MS.REC) if is_bind else 0
        if lower is not None and flags & MS.RDONLY:
            extra = flags       # read-only once filled
        if extra or m.propagation or m.recursive or lower is not None:
            # opened again: the fd now leads to the new mount, not beneath it
            with _opened(rootfs, m.destination) as dest:
                if lower is not None:
                    mount_options.copy_up(lower, dest)
                if extra:
                    mount(None, dest, None, MS.BIND | MS.REMOUNT | extra)
                for p in m.propagation:
                    mount(None, dest, None, PROPAGATION[p])
                if m.recursive:
                    mount_options.set_recursive(dest, m.recursive, m.destination)
    finally:
        if lower is not None:
            os.close(lower)


@contextlib.contextmanager
def _opened(rootfs, destination):
    """/proc/self/fd/N of the destination opened inside the rootfs; errors
    name the destination."""
    fd = open_in_root(rootfs, destination)
    try:
        yield f"/proc/self/fd/{fd}"
    except OSError as e:
        raise OSError(e.errno, e.strerror, f"{e.filename} onto {destination}") from None
    finally:
        os.close(fd)


def _mount_fallback(m, dest, flags, error):
    """What a user namespace refuses, done the way rootless runtimes do."""
    if m.device == "sysfs" and error.errno == errno.EPERM:
        # sysfs needs a network namespace owned by our user namespace
        mount("/sys", dest, None, MS.BIND | MS.REC)
        mount(None, dest, None, MS.BIND | MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV
              | MS.NOEXEC)
        return
    if m.device == "devpts" and error.errno == errno.EINVAL and "gid=" in m.data:
        # the tty group is not mapped in this user namespace
        data = ",".join(o for o in m.data.split(",") if not o.startswith("gid="))
        mount(m.source or m.device, dest, m.device, flags, data)
        return
    raise error


@hookimpl
def libcontainer_pre_clone(container, process):
    mount_options.prepare(container.config)


@hookimpl
def libcontainer_post_clone(container, process, pid):
    mount_options.close()       # the init has its copies of the id-mapped trees


@hookimpl
def libcontainer_enter_rootfs(container, process):
    rootfs = os.path.realpath(container.config.rootfs)
    os.chdir(rootfs)
    if container.config.no_pivot_root:
        mount(rootfs, "/", None, MS.MOVE)
        os.chroot(".")
    else:
        # pivot onto itself, then detach the old root stacked beneath
        pivot_root(".", ".")
        mount(None, ".", None, MS.SLAVE | MS.REC)
        umount2(".", MNT_DETACH)
    os.chdir("/")
    # runc creates a missing cwd (as root, inside the new root); whatever
    # fails here is reported by the chdir of plugins/user.py
    with contextlib.suppress(OSError):
        os.makedirs(process.cwd, 0o755, exist_ok=True)


@hookimpl
def libcontainer_setup_environment(container, process):
    if container.config.readonlyfs:
        mount(None, "/", None, MS.BIND | MS.REMOUNT | MS.RDONLY)
