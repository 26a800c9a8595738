"""The one place that loads libc and turns -1 returns into OSError."""
import ctypes
import os

# PyDLL keeps the GIL held across the call: the fork-related calls must not
# let another thread run in between, and every call here is short.
_libc = ctypes.PyDLL(None, use_errno=True)


def fn(name, restype, *argtypes):
    f = _libc[name]     # a fresh function object: argtypes are per object
    f.restype = restype
    f.argtypes = argtypes
    return f


def check(ret, call):
    """Raise OSError naming `call` when a libc call returned -1. `call` may
    be a function making the name, called only then: an enum's repr on every
    call costs a container's init pages of memory (charged to it)."""
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), call() if callable(call) else call)
    return ret


def b(s):
    return None if s is None else os.fsencode(s)
