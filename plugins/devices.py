"""Device nodes in the container's /dev (a tmpfs): the configured nodes,
created with their modes and owners, plus the usual /dev symlinks.

As runc: what exists already is left as it is (never unlinked), and a /dev
bind-mounted from the host (CSI and device-plugin pods do that) gets no
setup at all -- its nodes are the host's. Every node is made relative to an
fd of its directory opened inside the rootfs, so no symlink leads out."""
import os
import stat

from libcontainer import hookimpl
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux.mount import MS, mount
from libcontainer.rootpath import held, mkdirs_in_root, open_in_root

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


def dev_is_bound(config):
    return any(os.path.normpath(m.destination) == "/dev" and
               (m.device == "bind" or "bind" in m.flags or "rbind" in m.flags)
               for m in config.mounts)


@hookimpl
def libcontainer_setup_devices(container, process):
    if dev_is_bound(container.config):
        return
    rootfs = os.path.realpath(container.config.rootfs)
    old = os.umask(0)
    try:
        with held(rootfs):      # the rootfs opened once for every node
            for d in container.config.devices:
                with _directory(rootfs, d.path) as (parent, name):
                    _make_node(d, parent, name)
            for target, link in LINKS:
                with _directory(rootfs, link) as (parent, name):
                    try:
                        os.symlink(target, name, dir_fd=parent)
                    except FileExistsError:
                        pass
    finally:
        os.umask(old)


class _directory:
    """(fd of the directory of `path` inside the rootfs, made if missing;
    the last component)."""

    def __init__(self, rootfs, path):
        self.rootfs, (self.dir, self.name) = rootfs, os.path.split(path)

    def __enter__(self):
        try:
            self.fd = open_in_root(self.rootfs, self.dir, os.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            mkdirs_in_root(self.rootfs, self.dir)
            self.fd = open_in_root(self.rootfs, self.dir, os.O_PATH | os.O_DIRECTORY)
        return self.fd, self.name

    def __exit__(self, *exc):
        os.close(self.fd)


def _make_node(d, parent, name):
    try:
        os.mknod(name, TYPES[d.type] | d.file_mode,
                 os.makedev(d.major, d.minor) if d.type != "p" else 0, dir_fd=parent)
    except FileExistsError:
        return          # as runc: whatever is there is not ours to replace
    except PermissionError:
        # in a user namespace mknod is refused: bind the host's node (a
        # bind mount; the host's node itself is never changed)
        _bind_host_node(d, parent, name)
        return
    os.chown(name, d.uid, d.gid, dir_fd=parent, follow_symlinks=False)


def _bind_host_node(d, parent, name):
    st = os.stat(d.path)
    if TYPES[d.type] != stat.S_IFMT(st.st_mode) or st.st_rdev != os.makedev(d.major, d.minor):
        raise SetupError(f"devices: cannot create {d.path} in a user namespace, and the "
                         f"host's {d.path} is not the same device")
    try:
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY
                         | os.O_CLOEXEC, 0o000, dir_fd=parent))
    except FileExistsError:
        return
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        mount(d.path, f"/proc/self/fd/{fd}", None, MS.BIND)     # the host's /proc still
    finally:
        os.close(fd)
