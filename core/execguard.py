"""The last check before execve (CVE-2019-5736): what a container process
executes must be one of the container's own files.

An image can make its entrypoint /proc/self/exe, a symlink to it, or a
script whose ``#!`` line names it: execve in the runtime's child would then
run the runtime's own binary -- the host's Python -- as a container process,
and the container could open that binary for writing through /proc/PID/exe
once the runtime exits. Magic links such as /proc/self/fd/N lead to other
host files the same way. So the program, and each ``#!`` interpreter on the
way, must not be the runtime's executable and must lie on a mount of the
container's mount namespace (one listed in its /proc/self/mountinfo).

The check runs twice: before the init reports it is ready (a refused or
missing program fails ``create``, as runc's does), and again just before
execve, after the OCI startContainer hooks, which run in the container and
could have swapped the file. It resolves paths as execve will; a process
already in the container could still swap a symlink in between. The second
line of defence is that the runtime's processes are not dumpable until they exec
(``core/spawn.py``): without CAP_SYS_PTRACE a container process cannot open
their /proc/PID/exe at all.
"""
import os
import stat

from . import procself
from .errors import SetupError
from .linux import statx

_MAX_INTERPRETERS = 4     # the kernel's own limit on nested #! is about as deep


def _runtime_exe():
    try:
        st = os.stat("/proc/self/exe")
    except OSError:
        return None
    return st.st_dev, st.st_ino


# taken in the parent, at import: the child may have no /proc of the host
RUNTIME_EXE = _runtime_exe()


def _container_mounts():
    # through the procfs pinned before pivot_root: the container's
    # /proc/self/mountinfo may be the image's file, naming every host mount
    try:
        with open(procself.open_self("mountinfo")) as f:
            return {int(line.split(None, 1)[0]) for line in f if line.strip()}
    except OSError:
        return None     # no /proc at all: the identity check remains


def check(program, env, must_exist=False):
    """Raise SetupError if executing `program` (searched in env's PATH like
    ``os.execvpe``) could run a file from outside the container; with
    `must_exist`, also if there is no such file (runc's create fails so)."""
    mounts = _container_mounts()
    candidates = [program] if "/" in program else \
        [os.path.join(d, program) for d in env.get("PATH", os.defpath).split(os.pathsep)]
    found = False
    for path in candidates:
        found = _check(program, path, mounts, 0) or found
    if must_exist and not found:
        raise SetupError(f"exec {program!r}: " + ("No such file or directory" if "/" in program
                                                 else "executable file not found in $PATH"))


def _check(program, path, mounts, depth):
    """Whether `path` exists; raise SetupError if it lies outside."""
    try:
        st = os.stat(path)
    except OSError:
        return False        # execve fails, or moves on to the next PATH entry
    if not stat.S_ISREG(st.st_mode):
        return True
    outside = (st.st_dev, st.st_ino) == RUNTIME_EXE
    if not outside and mounts is not None:
        try:
            mnt = statx.mount_id(path)
        except OSError:
            mnt = None
        outside = mnt is not None and mnt not in mounts
    if outside:
        what = f"{program!r}" if depth == 0 else f"{program!r} (through #!{path})"
        raise SetupError(f"exec {what}: refusing to execute a file from outside the "
                         f"container (the runtime's own binary or a host file)")
    if depth < _MAX_INTERPRETERS:
        interpreter = _interpreter(path)
        if interpreter:
            _check(program, interpreter, mounts, depth + 1)
    return True


def _interpreter(path):
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    return os.fsdecode(words[0]) if words else None
