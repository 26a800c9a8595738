"""Device nodes in the container's /dev (a tmpfs): the configured nodes,
created fresh with their modes and owners -- the host's nodes are never
touched -- plus the usual /dev symlinks."""
import os
import stat

from libcontainer import hookimpl
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux.mount import MS, mount
from libcontainer.rootpath import resolve_in_root

TYPES = {"c": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
LINKS = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
         ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
         ("pts/ptmx", "/dev/ptmx")]


@hookimpl
def libcontainer_validate_config(config):
    for i, d in enumerate(config.devices):
        where = f"devices[{i}]"
        if d.type not in TYPES:
            raise ConfigError(f"{where}.type: {d.type!r} is not one of c, b, p")
        if not d.path.startswith("/dev/") or ".." in d.path.split("/"):
            raise ConfigError(f"{where}.path: {d.path!r} is not under /dev/")
        if d.type != "p" and (d.major < 0 or d.minor < 0):
            raise ConfigError(f"{where}: a device node needs a major and minor number")
        if not 0 <= d.file_mode <= 0o7777:
            raise ConfigError(f"{where}.file_mode: {d.file_mode} is not a permission mode")


@hookimpl
def libcontainer_setup_devices(container, process):
    rootfs = os.path.realpath(container.config.rootfs)
    old = os.umask(0)
    try:
        for d in container.config.devices:
            path = resolve_in_root(rootfs, d.path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.lexists(path):
                os.unlink(path)
            try:
                os.mknod(path, TYPES[d.type] | d.file_mode,
                         os.makedev(d.major, d.minor) if d.type != "p" else 0)
            except PermissionError:
                # in a user namespace mknod is refused: bind the host's node
                # (a bind mount; the host's node itself is never changed)
                _bind_host_node(d, path)
                continue
            os.chown(path, d.uid, d.gid)
        for target, link in LINKS:
            path = resolve_in_root(rootfs, link)
            if not os.path.lexists(path):
                os.symlink(target, path)
    finally:
        os.umask(old)


def _bind_host_node(d, path):
    st = os.stat(d.path)
    if TYPES[d.type] != stat.S_IFMT(st.st_mode) or st.st_rdev != os.makedev(d.major, d.minor):
        raise SetupError(f"devices: cannot create {d.path} in a user namespace, and the "
                         f"host's {d.path} is not the same device")
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o000))
    mount(d.path, path, None, MS.BIND)
