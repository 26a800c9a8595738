"""Mount options beyond mount(2), for plugins/rootfs.py: recursive mount
attributes (mount_setattr with AT_RECURSIVE), tmpfs copy-up and id-mapped
bind mounts.

Id-mapping a mount needs privilege over the source's filesystem, i.e. in the
host's user namespace, which an init in a user namespace lacks; such an init
(root's, not rootless) may not even reach a bind's source. So, as runc 1.2
does, the parent clones each such source tree (open_tree), id-mapped if
asked, before the fork (``prepare``); the init inherits the fd and attaches
the tree at its destination (``attach``).
"""
import errno
import os
import stat

from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux import mount as ms
from libcontainer.linux.namespaces import CLONE, unshare

# id(Mount) -> fd of its detached tree (id-mapped, or a plain clone of a bind's
# source for a user namespace): made by the parent before the fork, inherited
# by the init
_trees = {}


def _is_bind(m):
    return m.device == "bind" or "bind" in m.flags or "rbind" in m.flags


def validate(config):
    for i, m in enumerate(config.mounts):
        where = f"mounts[{i}]"
        for name in m.recursive:
            if name not in ms.RECURSIVE:
                raise ConfigError(f"{where}.recursive: unknown recursive mount attribute "
                                  f"{name!r} (known: {', '.join(ms.RECURSIVE)})")
        if not m.idmap:
            continue
        if m.idmap not in ("idmap", "ridmap"):
            raise ConfigError(f"{where}.idmap: {m.idmap!r} is not idmap or ridmap")
        if not _is_bind(m):
            raise ConfigError(f"{where}.idmap: id-mapped mounts must be bind mounts, "
                              f"not {m.device!r}")
        if bool(m.uid_mappings) != bool(m.gid_mappings):
            raise ConfigError(f"{where}.uid_mappings: an id-mapped mount needs both uid and "
                              f"gid mappings")
        for key in ("uid_mappings", "gid_mappings"):
            for j, idmap in enumerate(getattr(m, key)):
                if idmap.size <= 0:
                    raise ConfigError(f"{where}.{key}[{j}].size: must be positive")
        if not m.uid_mappings and not (config.has_namespace("NEWUSER") and config.uid_mappings
                                       and config.gid_mappings):
            raise ConfigError(f"{where}.idmap: no uid/gid mappings of its own, and no user "
                              f"namespace whose mappings it could use")
        if os.geteuid() != 0:
            raise ConfigError(f"{where}.idmap: id-mapped mounts need root in the host's user "
                              f"namespace")


# -- id-mapped binds ------------------------------------------------------------

def prepare(config):
    """Parent, before the fork: a detached clone of every id-mapped bind's
    source, id-mapped, and with a user namespace (root's: a rootless mapped
    root reaches what the runtime does) of every other bind's, in ``_trees``."""
    close()         # what a failed start in this process may have left
    namespaces = {}
    clone_binds = config.has_namespace("NEWUSER") and os.geteuid() == 0
    try:
        for i, m in enumerate(config.mounts):
            if not m.idmap:
                if clone_binds and _is_bind(m):
                    _trees[id(m)] = _clone(m)
                continue
            uids = m.uid_mappings or config.uid_mappings
            gids = m.gid_mappings or config.gid_mappings
            key = (_map_text(uids), _map_text(gids))
            if key not in namespaces:
                try:
                    namespaces[key] = _userns(*key)
                except OSError as e:
                    raise SetupError(f"mounts[{i}].uid_mappings: a user namespace with these "
                                     f"mappings: {e.strerror}") from None
            _trees[id(m)] = _idmapped_tree(m, namespaces[key], f"mounts[{i}]")
    except BaseException:
        close()
        raise
    finally:
        for fd in namespaces.values():
            os.close(fd)


def _clone(m):
    try:
        return ms.open_tree(m.source, ms.OPEN_TREE_CLONE | ms.OPEN_TREE_CLOEXEC |
                            (ms.AT_RECURSIVE if "rbind" in m.flags else 0))
    except OSError as e:
        raise SetupError(f"mount source {m.source}: {e.strerror}") from None


def close():
    """Parent: the init has its copies (or failed); the init: what it did
    not attach."""
    while _trees:
        os.close(_trees.popitem()[1])


def attach(m, dest_fd):
    """Child: attach the prepared tree of `m` onto `dest_fd`; False if there
    is none (mount the source by path)."""
    fd = _trees.pop(id(m), None)
    if fd is None:
        if m.idmap:
            raise SetupError(f"mount {m.destination}: its id-mapped tree was not prepared")
        return False
    try:
        ms.move_mount(fd, dest_fd)
    finally:
        os.close(fd)
    return True


def stat_source(m):
    """os.stat of a bind's source; of its prepared tree if any (an init in a
    user namespace may not reach the source)."""
    fd = _trees.get(id(m))
    return os.stat(m.source) if fd is None else os.fstat(fd)


def _map_text(maps):
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)


def _userns(uid_map, gid_map):
    """An fd of a new user namespace with these maps, made by a short-lived
    child (a user namespace lives on as long as an fd refers to it)."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            unshare(CLONE.NEWUSER)
            os.write(ready_w, b"1")
            os.read(done_r, 1)          # EOF: the parent has what it needs
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise SetupError("id-mapped mounts: cannot create a user namespace for the mapping")
        for name, text in (("uid_map", uid_map), ("gid_map", gid_map)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)


def _idmapped_tree(m, userns_fd, where):
    recursive = "rbind" in m.flags
    fd = ms.open_tree(m.source, ms.OPEN_TREE_CLONE | ms.OPEN_TREE_CLOEXEC
                      | (ms.AT_RECURSIVE if recursive else 0))
    try:
        ms.mount_setattr(fd, ms.ATTR.IDMAP, userns_fd=userns_fd,
                         recursive=m.idmap == "ridmap", what=m.source)
    except OSError as e:
        os.close(fd)
        if e.errno == errno.EINVAL:
            raise SetupError(f"{where}.idmap: {m.source} is on a {_fstype(m.source)} filesystem, "
                             f"which does not support id-mapped mounts") from None
        raise SetupError(f"{where}.idmap: {e.filename}: {e.strerror}") from None
    return fd


def _fstype(path):
    """The filesystem type of the mount `path` is on (by device number)."""
    dev = os.stat(path).st_dev
    wanted = f"{os.major(dev)}:{os.minor(dev)}"
    found = "unknown"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields, _, rest = line.partition(" - ")
            if fields.split()[2] == wanted:
                found = rest.split()[0]
    return found


# -- recursive attributes and copy-up --------------------------------------

def set_recursive(fd, names, what):
    """mount_setattr(AT_RECURSIVE) of the options `names` (rro, rnosuid, ...)
    on the mount at `fd` and every mount beneath it; the last of two
    contrary options wins."""
    on = off = 0
    for name in names:
        s, c = ms.RECURSIVE[name]
        on = (on & ~(s | c)) | s
        off = (off & ~(s | c)) | c
    ms.mount_setattr(fd, on, off, recursive=True, what=what)


def copy_up(lower_fd, upper):
    """Copy the directory `lower_fd` (what a new tmpfs now covers) into
    `upper`, with owners, modes, times and symlinks, as runc's tmpcopyup.
    Walked through directory fds, never following a symlink: what it covers
    may be a volume another container changes meanwhile."""
    dst = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _copy_dir(lower_fd, dst)
    finally:
        os.close(dst)


_NOFOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _copy_dir(src, dst):
    for name in os.listdir(src):
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
            try:    # the very file stat'ed: a swapped-in symlink fails here
                fd = os.open(name, _NOFOLLOW | (os.O_DIRECTORY if stat.S_ISDIR(mode) else 0),
                             dir_fd=src)
            except OSError as e:
                raise OSError(e.errno, f"tmpcopyup: {name}: {e.strerror}") from None
            try:
                st = os.fstat(fd)
                if stat.S_ISDIR(mode):
                    os.mkdir(name, 0o700, dir_fd=dst)
                    sub = os.open(name, _NOFOLLOW | os.O_DIRECTORY, dir_fd=dst)
                    try:
                        _copy_dir(fd, sub)
                    finally:
                        os.close(sub)
                else:
                    _copy_file(fd, name, dst, st.st_size)
            finally:
                os.close(fd)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        elif stat.S_ISSOCK(mode):
            continue        # a socket is nothing without its listener
        else:
            os.mknod(name, mode, st.st_rdev, dir_fd=dst)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        if not stat.S_ISLNK(mode):
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst)     # after chown (drops setuid)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def _copy_file(src_fd, name, dst, size):
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                  0o600, dir_fd=dst)
    try:
        while size > 0:     # the file may shrink meanwhile: stop at its end
            n = os.sendfile(out, src_fd, None, size)
            if n == 0:
                break
            size -= n
    finally:
        os.close(out)
