"""clone(2) with CLONE_PARENT: fork a sibling instead of a child.

Used by the short-lived intermediate process of user-namespace containers:
the init it clones becomes a direct child of the runtime (waitable by it),
not an orphan. os.fork() cannot pass clone flags, so this calls the raw
syscall and runs CPython's own fork bookkeeping around it, exactly as
os.fork() does. Only for single-threaded callers.
"""
import ctypes

from .libc import check, fn

CLONE_PARENT = 0x00008000
SIGCHLD = 17
SYS_clone = 56

# long syscall(SYS_clone, unsigned long flags, void *stack, int *parent_tid,
#              int *child_tid, unsigned long tls);
_clone = fn("syscall", ctypes.c_long, ctypes.c_long, ctypes.c_ulong, ctypes.c_void_p,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong)
_before = ctypes.pythonapi.PyOS_BeforeFork
_after_parent = ctypes.pythonapi.PyOS_AfterFork_Parent
_after_child = ctypes.pythonapi.PyOS_AfterFork_Child


def fork_sibling():
    """Like os.fork(), but the new process's parent is our parent."""
    _before()
    pid = _clone(SYS_clone, CLONE_PARENT | SIGCHLD, None, None, None, 0)
    if pid == 0:
        _after_child()
        return 0
    _after_parent()
    return check(pid, "clone(CLONE_PARENT|SIGCHLD)")
