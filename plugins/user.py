"""The process's identity: user and groups resolved in the *container's*
/etc/passwd and /etc/group, additional groups, umask and working directory
(the init's cwd is created by the rootfs plugin, as runc does)."""
import errno
import os
import stat

from libcontainer import hookimpl
from libcontainer.errors import SetupError
from libcontainer.linux import misc


# what the init reads of the image's user database: a sparse file of
# gigabytes would take that much memory (the host's, without a limit)
_MAX_DATABASE = 16 << 20


def _entries(path):
    """The lines of the image's `path` split on ":"; [] unless it is a
    regular file (a FIFO or /dev/zero planted there would hang the init).
    Only its first _MAX_DATABASE bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    with open(fd, errors="replace") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        text = f.read(_MAX_DATABASE)
    return [line.split(":") for line in text.split("\n") if line.strip()
            and not line.startswith("#")]


def resolve_user(spec, passwd="/etc/passwd", group="/etc/group"):
    """'name', 'uid', 'uid:gid', 'name:group' -> (uid, gid, home, [extra gids])."""
    user, _, grp = spec.partition(":")
    users = _entries(passwd)
    entry = None
    if user.isdigit():
        uid = int(user)
        entry = next((e for e in users if len(e) > 3 and e[2] == user), None)
    else:
        entry = next((e for e in users if e[0] == user and len(e) > 3), None)
        if entry is None:
            raise SetupError(f"user {user!r}: no such user in the container's {passwd}")
        uid = int(entry[2])
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry and len(entry) > 5 else "/"
    groups = _entries(group)
    if grp:
        if grp.isdigit():
            gid = int(grp)
        else:
            g = next((g for g in groups if g[0] == grp and len(g) > 2), None)
            if g is None:
                raise SetupError(f"group {grp!r}: no such group in the container's {group}")
            gid = int(g[2])
    name = entry[0] if entry else None
    # an explicit group wins: no supplementary groups from /etc/group (as
    # runc, whose OCI user is always "uid:gid": additionalGids are all)
    extra = [] if grp else [int(g[2]) for g in groups
                            if len(g) > 3 and name and name in g[3].split(",") and g[2].isdigit()]
    return uid, gid, home, extra


def _group_id(spec, groups):
    if isinstance(spec, int) or str(spec).isdigit():
        return int(spec)
    g = next((g for g in groups if g[0] == spec and len(g) > 2), None)
    if g is None:
        raise SetupError(f"group {spec!r}: no such group in the container's /etc/group")
    return int(g[2])


@hookimpl
def libcontainer_setup_identity(container, process):
    uid, gid, home = 0, 0, "/root"
    extra = []
    if process.user:
        uid, gid, home, extra = resolve_user(process.user)
    if process.additional_groups:
        groups = _entries("/etc/group")
        extra += [_group_id(g, groups) for g in process.additional_groups]
    if not any(e.startswith("HOME=") for e in process.env):
        process.env = [*process.env, f"HOME={home}"]
    # always: the caller's supplementary groups must not leak in. Tried,
    # not decided from /proc/self/setgroups: after pivot_root that may be
    # the image's own file. EPERM: a user namespace denies it (rootless),
    # and then its processes have no groups to drop.
    try:
        os.setgroups(sorted(set(extra)))
    except PermissionError:
        if process.additional_groups:
            raise SetupError("additional groups need setgroups, which this user namespace "
                             "denies") from None
    # as runc: the cwd is entered with the runtime's rights, and again as
    # the user if those were not enough (a volume only the user may enter)
    try:
        os.chdir(process.cwd)
        retry = None
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM):
            raise SetupError(f"cwd {process.cwd!r}: {e.strerror}") from None
        retry = e
    os.setresgid(gid, gid, gid)
    if uid != 0:
        # keep the permitted set so the capabilities plugin can set it
        misc.prctl(misc.PR_SET_KEEPCAPS, 1)
    os.setresuid(uid, uid, uid)
    if process.umask is not None:
        os.umask(process.umask)
    if retry is not None:
        try:
            os.chdir(process.cwd)
        except OSError as e:
            raise SetupError(f"cwd {process.cwd!r}: {e.strerror}") from None
    # CVE-2024-21626: a cwd like /proc/self/fd/N reaches a host directory
    # through an fd the runtime holds; the kernel has no path under / for it
    try:
        inside = os.getcwd().startswith("/")
    except OSError:
        inside = False
    if not inside:
        raise SetupError(f"cwd {process.cwd!r}: is outside the container")
