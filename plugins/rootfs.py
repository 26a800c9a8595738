"""The root filesystem: mounts (resolved inside the rootfs), pivot_root and
the read-only root.

Mount flags are the names of mount(8): ro, nosuid, nodev, noexec, bind,
rbind, ...; propagation is private/rprivate/slave/rslave/shared/rshared.
"""
import os
import stat

from libcontainer import hookimpl
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux.mount import MNT_DETACH, MS, mount, pivot_root, umount2
from libcontainer.rootpath import resolve_in_root

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
    "bind": (MS.BIND, True), "rbind": (MS.BIND | MS.REC, True),
    "nosymfollow": (MS.NOSYMFOLLOW, True),
}
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
    if config.rootfs_propagation not in PROPAGATION:
        raise ConfigError(f"rootfs_propagation: unknown propagation "
                          f"{config.rootfs_propagation!r}")
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
    dest = resolve_in_root(rootfs, m.destination)
    flags = parse_flags(m.flags, m.destination)
    is_bind = m.device == "bind" or flags & MS.BIND
    if m.device == "proc" or m.device == "sysfs":
        # CVE-2019-19921: never mount procfs/sysfs over a symlink or a file
        target = os.path.join(rootfs, m.destination.lstrip("/"))
        if os.path.lexists(target) and (os.path.islink(target) or not os.path.isdir(target)):
            raise SetupError(f"mount {m.destination}: refusing to mount {m.device} "
                             f"over a symlink or non-directory")
    if is_bind and not stat.S_ISDIR(os.stat(m.source).st_mode):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if not os.path.exists(dest):
            os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    else:
        os.makedirs(dest, exist_ok=True)
    if is_bind:
        mount(m.source, dest, None, MS.BIND | (flags & MS.REC))
        extra = flags & ~(MS.BIND | MS.REC)
        if extra:
            mount(None, dest, None, MS.BIND | MS.REMOUNT | extra)
    else:
        mount(m.source or m.device, dest, m.device, flags, m.data or None)
    for p in m.propagation:
        mount(None, dest, None, PROPAGATION[p])


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


@hookimpl
def libcontainer_setup_environment(container, process):
    if container.config.readonlyfs:
        mount(None, "/", None, MS.BIND | MS.REMOUNT | MS.RDONLY)
