"""The root filesystem: mounts (resolved inside the rootfs), pivot_root and
the read-only root.

Mount flags are the names of mount(8): ro, nosuid, nodev, noexec, bind,
rbind, ...; propagation is private/rprivate/slave/rslave/shared/rshared.
"""
import contextlib
import errno
import os
import re
import stat

from libcontainer import hookimpl
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux import statx
from libcontainer.linux.mount import FLAGS, MNT_DETACH, MS, mount, pivot_root, umount2
from libcontainer.rootpath import (create_file_in_root, held, mkdirs_in_root, mounted_onto,
                                   open_in_root)

from . import mount_options

# plain ints, not MS: each IntFlag operation runs enum's Python code in the
# init, and every page that touches is charged to the container
_RDONLY, _BIND, _REC, _REMOUNT = int(MS.RDONLY), int(MS.BIND), int(MS.REC), int(MS.REMOUNT)
PROPAGATION = {name: int(flags) for name, flags in {
    "private": MS.PRIVATE, "rprivate": MS.PRIVATE | MS.REC,
    "slave": MS.SLAVE, "rslave": MS.SLAVE | MS.REC,
    "shared": MS.SHARED, "rshared": MS.SHARED | MS.REC,
    "unbindable": MS.UNBINDABLE, "runbindable": MS.UNBINDABLE | MS.REC,
}.items()}


def parse_flags(names, where):
    """mount(2) flags (an int) of option names; of two contrary ones the
    last wins, as in runc and mount(8)."""
    flags = 0
    for name in names:
        if name not in FLAGS:
            raise ConfigError(f"{where}: unknown mount flag {name!r}")
        bit, on = FLAGS[name]
        flags = flags | int(bit) if on else flags & ~int(bit)
    return flags


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


# an unbindable root would refuse the binds of the rootfs and the volumes:
# private until pivot_root, then applied to the new root
_UNTIL_PIVOT = {"unbindable": "private", "runbindable": "rprivate"}


@hookimpl
def libcontainer_setup_mounts(container, process):
    config = container.config
    rootfs = os.path.realpath(config.rootfs)
    propagation = config.rootfs_propagation
    mount(None, "/", None, PROPAGATION[_UNTIL_PIVOT.get(propagation, propagation)])
    _parent_private(rootfs)
    mount(rootfs, rootfs, None, _BIND | _REC)
    with held(rootfs):      # opened once, after the bind: its lookups see this mount
        for m in config.mounts:
            mount_into(rootfs, m)


def _parent_private(rootfs):
    """runc's rootfsParentMountPrivate: the mount holding the rootfs (the
    first mount point from it upwards) is made private, so that nothing
    mounted beneath it reaches a peer on the host through a shared parent
    (rshared roots, a shared /run), and pivot_root accepts it. The walk
    starts where the parent found that mount point (each EINVAL on the way
    is an exception's worth of pages charged to the container)."""
    path = _holders.get(rootfs, rootfs)
    while True:
        try:
            mount(None, path, None, MS.PRIVATE)
            return
        except OSError as e:
            if e.errno != errno.EINVAL or path == "/":
                raise
        path = os.path.dirname(path)


def mount_into(rootfs, m):
    """Mount `m` inside `rootfs`: the destination is made and opened with the
    rootfs as ``/`` (core/rootpath.py), and the mount goes onto that fd, so
    that no symlink -- there or swapped in meanwhile -- leads it outside
    (CVE-2021-30465)."""
    flags = parse_flags(m.flags, m.destination)
    if m.device == "tmpfs":
        # a read-only tmpfs (/dev) is filled first (nodes, /dev/pts):
        # made read-only by libcontainer_setup_environment
        flags &= ~_RDONLY
    is_bind = m.device == "bind" or flags & _BIND
    # CVE-2019-19921: procfs/sysfs never over a symlink or a file, checked
    # on the very fd mounted onto
    pseudo = m.device in ("proc", "sysfs")
    source = mount_options.stat_source(m) if is_bind else None
    if is_bind and not stat.S_ISDIR(source.st_mode):
        create_file_in_root(rootfs, m.destination)
    else:
        try:
            mkdirs_in_root(rootfs, m.destination)
        except NotADirectoryError:
            if not pseudo:
                raise
    lower = None
    try:
        with _opened(rootfs, m.destination, m.device if pseudo else None) as dest:
            if is_bind:
                if not mount_options.attach(m, dest):
                    mount(m.source, dest, None, _BIND | (flags & _REC))
            else:
                if m.tmpcopyup:
                    # what the tmpfs will cover stays reachable through this fd;
                    # the tmpfs is writable until filled
                    lower = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    mount(m.source or m.device, dest, m.device,
                          flags & ~_RDONLY if lower is not None else flags, m.data or None)
                except OSError as e:
                    _mount_fallback(m, dest, flags, e)
        extra = flags & ~(_BIND | _REC) if is_bind else 0
        if lower is not None and flags & _RDONLY:
            extra = flags       # read-only once filled
        if extra or m.propagation or m.recursive or lower is not None:
            # opened again: the fd now leads to the new mount, not beneath it
            # (a bind's: the source itself, or the path was swapped meanwhile)
            with _opened(rootfs, m.destination, expect=source) as dest:
                if lower is not None:
                    mount_options.copy_up(lower, dest)
                if extra:
                    mount(None, dest, None, _BIND | _REMOUNT | extra)
                for p in m.propagation:
                    mount(None, dest, None, PROPAGATION[p])
                if m.recursive:
                    mount_options.set_recursive(dest, m.recursive, m.destination)
    finally:
        if lower is not None:
            os.close(lower)


@contextlib.contextmanager
def _opened(rootfs, destination, pseudo=None, expect=None):
    """/proc/self/fd/N of the destination opened inside the rootfs (the
    host's /proc: before pivot_root); errors name the destination. For a
    `pseudo` filesystem the destination must be a directory, not a symlink;
    with `expect` (a stat result) it must be that very file."""
    try:
        fd = open_in_root(rootfs, destination, os.O_PATH | (os.O_NOFOLLOW if pseudo else 0))
    except (FileNotFoundError, NotADirectoryError):
        if not pseudo:
            raise
        fd = None
    if pseudo and (fd is None or not stat.S_ISDIR(os.fstat(fd).st_mode)):
        if fd is not None:
            os.close(fd)
        raise SetupError(f"mount {destination}: refusing to mount {pseudo} "
                         f"over a symlink or non-directory")
    if expect is not None:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (expect.st_dev, expect.st_ino):
            os.close(fd)
            raise SetupError(f"mount {destination}: the destination was replaced while "
                             f"being mounted")
    try:
        yield f"/proc/self/fd/{fd}"
    except OSError as e:
        raise OSError(e.errno, e.strerror, f"{e.filename} onto {destination}") from None
    finally:
        mounted_onto(rootfs, fd)
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


# rootfs -> the mount point holding it, found by the parent before the fork
_holders = {}


def _holding_mount(path):
    """The mount point of the mount `path` is on, by mount ids; `path`
    itself if the kernel does not tell (the child's walk goes on from it)."""
    try:
        mnt = statx.mount_id(path)
        while path != "/" and mnt is not None and \
                statx.mount_id(os.path.dirname(path)) == mnt:
            path = os.path.dirname(path)
    except OSError:
        pass
    return path


@hookimpl
def libcontainer_pre_clone(container, process):
    mount_options.prepare(container.config)
    rootfs = os.path.realpath(container.config.rootfs)
    _holders.clear()
    _holders[rootfs] = _holding_mount(rootfs)


@hookimpl
def libcontainer_post_clone(container, process, pid):
    mount_options.close()       # the init has its copies of the prepared trees


@hookimpl
def libcontainer_enter_rootfs(container, process):
    rootfs = os.path.realpath(container.config.rootfs)
    mount_options.close()       # trees not attached (a failed start's)
    os.chdir(rootfs)
    # the old root is left through this mount: nothing may propagate from
    # it to the host's peers (pivot_root also refuses a shared one)
    mount(None, "/", None, MS.PRIVATE)
    if container.config.no_pivot_root:
        _hide_host_pseudo_filesystems(rootfs)
        mount(rootfs, "/", None, MS.MOVE)
        os.chroot(".")
    else:
        # pivot onto itself, then detach the old root stacked on top. Through
        # an fd of the old root: the cwd is the new root, whose mounts must
        # not be made slaves (that broke Bidirectional volumes)
        oldroot = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            pivot_root(".", ".")
            os.fchdir(oldroot)
        finally:
            os.close(oldroot)
        mount(None, ".", None, MS.SLAVE | MS.REC)   # the unmounts stay here
        umount2(".", MNT_DETACH)
    os.chdir("/")
    propagation = container.config.rootfs_propagation
    if propagation not in ("private", "rprivate"):     # those are done
        mount(None, "/", None, PROPAGATION[propagation])
    # runc creates a missing cwd (as root, inside the new root); whatever
    # fails here is reported by the chdir of plugins/user.py
    with contextlib.suppress(OSError):
        os.makedirs(process.cwd, 0o755, exist_ok=True)


def _hide_host_pseudo_filesystems(rootfs):
    """runc's msMoveRoot: with chroot instead of pivot_root the host's
    mounts stay in the container's mount namespace, outside its root. The
    kernel lets a user namespace mount a new procfs or sysfs only if a
    whole, uncovered one is mounted in the namespace already: the host's
    /proc would be, so every such mount outside the rootfs is detached (or
    covered where it cannot be)."""
    points = []
    with open("/proc/self/mountinfo") as f:         # still the host's /proc
        for line in f:
            fields, _, rest = line.partition(" - ")
            fields = fields.split()
            root, point = _unescape(fields[3]), _unescape(fields[4])
            if root != "/" or rest.split()[0] not in ("proc", "sysfs") \
                    or point == rootfs or point.startswith(rootfs.rstrip("/") + "/"):
                continue
            points.append(point)
    for point in points:
        try:
            mount(None, point, None, MS.SLAVE | MS.REC)    # the unmount stays here
            umount2(point, MNT_DETACH)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                continue            # beneath one already detached
            if e.errno not in (errno.EINVAL, errno.EPERM):
                raise
            mount("tmpfs", point, "tmpfs", MS.RDONLY, "size=4k")


def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


@hookimpl
def libcontainer_setup_environment(container, process):
    for m in container.config.mounts:
        if m.device == "tmpfs" and parse_flags(m.flags, m.destination) & _RDONLY:
            _remount_readonly(m.destination)
    if container.config.readonlyfs:
        mount(None, "/", None, MS.BIND | MS.REMOUNT | MS.RDONLY)


def _remount_readonly(destination):
    """The read-only remount of a tmpfs filled read-write. Through fchdir,
    not /proc/self/fd: /proc is the container's now, if a procfs at all."""
    fd = open_in_root("/", destination, os.O_PATH | os.O_DIRECTORY)
    try:
        os.fchdir(fd)
        flags = MS.BIND | MS.REMOUNT | MS.RDONLY
        f_flag = os.statvfs(".").f_flag
        for bit, ms in ((os.ST_NOSUID, MS.NOSUID), (os.ST_NODEV, MS.NODEV),
                        (os.ST_NOEXEC, MS.NOEXEC)):
            if f_flag & bit:
                flags |= ms         # kept: they may be locked
        mount(None, ".", None, flags)
    except OSError as e:
        raise OSError(e.errno, e.strerror, f"{e.filename} ({destination} read-only)") from None
    finally:
        os.close(fd)
        os.chdir("/")
