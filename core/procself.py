"""A container process's own /proc/PID, held from before its root changes.

After pivot_root (or joining the container's mount namespace) /proc is the
container's: with no procfs mounted there, the image's own files, so a
regular file in place of /proc/self/fd/N or /proc/self/mountinfo answers
whatever the image wants. The runtime's child opens its /proc/PID while
/proc is still the host's and reaches its own procfs files through that fd.
"""
import os

_fd = None


def pin(fd=None):
    """Open (or, after the fd moved, record) the directory: in the forked
    child, before any namespace or root change. Returns the fd.

    A detached clone of /proc/PID where we may mount: ``..`` stops at its
    root, so a path the container names through the fd (/proc/self/fd/N/..)
    reaches no other process's files (/proc/1/root: the host's root)."""
    global _fd
    if fd is None:
        from .linux.mount import OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE, open_tree
        try:
            fd = open_tree("/proc/self", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
        except OSError:     # rootless (the host's mount namespace), or before Linux 5.2
            fd = os.open("/proc/self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    _fd = fd
    return fd


def open_self(name, flags=os.O_RDONLY):
    """/proc/self/`name` of the pinned procfs; the current /proc's when
    nothing is pinned (the runtime itself, on the host)."""
    if _fd is None:
        return os.open(f"/proc/self/{name}", flags | os.O_CLOEXEC)
    return os.open(name, flags | os.O_CLOEXEC, dir_fd=_fd)
