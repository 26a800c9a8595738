"""A container process's own /proc/PID, held from before its root changes.

After pivot_root (or joining the container's mount namespace) /proc is the
container's: with no procfs mounted there, the image's own files, so a
regular file in place of /proc/self/fd/N or /proc/self/mountinfo answers
whatever the image wants. The runtime's child opens its /proc/PID while
/proc is still the host's and reaches its own procfs files through that fd.

The fd is a detached clone of /proc/PID where we may mount: ``..`` stops at
its root, so a path the container names through it (an image symlink to
/proc/self/fd/N/../1/root) reaches no other process's files -- the host's
root. Where we may not (a user namespace in the host's mount namespace) it
is a plain fd until the init has a mount namespace of its own; a joined
process keeps the plain one. It is closed before execve, whose path
resolution a container process could race.
"""
import os

_fd = None
_cloned = False


def pin(fd=None):
    """Open the directory, in the forked child before any namespace or root
    change (or record where the fd moved). Returns the fd."""
    global _fd, _cloned
    if fd is None:
        fd, _cloned = _open(), True
        if fd is None:
            fd, _cloned = os.open("/proc/self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), False
        unpin()
    _fd = fd
    return fd


def repin():
    """A clone instead of a plain fd, once in a new mount namespace whose
    /proc is still the host's."""
    global _cloned
    if not _cloned and _fd is not None:
        fd = _open()
        if fd is not None:
            unpin()
            pin(fd)
            _cloned = True
    return _fd


def unpin():
    global _fd
    if _fd is not None:
        os.close(_fd)
        _fd = None


def _open():
    from .linux.mount import OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE, open_tree
    try:
        return open_tree("/proc/self", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
    except OSError:     # EPERM: not our mount namespace's owner; before Linux 5.2
        return None


def open_self(name, flags=os.O_RDONLY):
    """/proc/self/`name` of the pinned procfs; the current /proc's when
    nothing is pinned (the runtime itself, on the host)."""
    if _fd is None:
        return os.open(f"/proc/self/{name}", flags | os.O_CLOEXEC)
    return os.open(name, flags | os.O_CLOEXEC, dir_fd=_fd)
