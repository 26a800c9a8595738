"""The container's state on disk and its status derived from the system.

``<root>/<id>/state.json`` holds what cannot be asked of the kernel (config,
stash, creation time) and the init's pid *with its start time*, so that a
recycled pid is never mistaken for the container. The status is computed:

* ``creating`` -- a start is in progress: the creator process is alive;
* ``stopped``  -- no init, or the init's pid is gone, a zombie, or a
  different process (start time changed);
* ``paused``   -- the init's freezer cgroup is frozen;
* ``created``  -- the init waits on ``exec.fifo`` for ``start``;
* ``running``  -- otherwise.

Only this module writes state files: atomically (write, fsync, rename).
"""
import fcntl
import json
import os

STATE_FILE = "state.json"
FIFO = "exec.fifo"

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"


def proc_stat(pid):
    """(state letter, start time in clock ticks) of a pid, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def alive(pid, start_time):
    """True if `pid` is the same live (non-zombie) process that started at
    `start_time`."""
    if not pid:
        return False
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X") and st[1] == start_time


def frozen(pid):
    """Whether the cgroup holding `pid` is frozen (v1 freezer or v2)."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            target = f"/sys/fs/cgroup/freezer{path}/freezer.state"
            try:
                with open(target) as f:
                    if f.read().strip() != "THAWED":
                        return True
            except OSError:
                pass
        elif controllers == "" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            try:
                with open(f"/sys/fs/cgroup{path}/cgroup.events") as f:
                    if "frozen 1" in f.read():
                        return True
            except OSError:
                pass
    return False


def status(state, state_dir):
    pid = state.get("init_pid", 0)
    if not pid:
        creator = state.get("creator")
        if creator and alive(*creator):
            return CREATING
        return STOPPED
    if not alive(pid, state.get("init_start_time")):
        return STOPPED
    if frozen(pid):
        return PAUSED
    if os.path.exists(os.path.join(state_dir, FIFO)):
        return CREATED
    return RUNNING


def read(state_dir):
    with open(os.path.join(state_dir, STATE_FILE)) as f:
        return json.load(f)


def write(state_dir, state):
    path = os.path.join(state_dir, STATE_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(state, separators=(",", ":")).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class Lock:
    """An exclusive flock on the state directory: serialises create, destroy
    and exec of one container across processes."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        _held.add(self.fd)
        return self

    def __exit__(self, *exc):
        _held.discard(self.fd)
        os.close(self.fd)
        self.fd = None


# fds of the locks this process holds. A forked child (an init held for
# `start`, which outlives its creator) closes its copies: a flock belongs to
# the open file, so the child's copy would keep the lock after the parent's
# __exit__ and every later operation on the container would wait forever.
_held = set()


def _close_held_locks():
    for fd in _held:
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


os.register_at_fork(after_in_child=_close_held_locks)
