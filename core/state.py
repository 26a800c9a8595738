"""The container's state on disk and its status derived from the system.

``<root>/<id>/state.json`` holds what cannot be asked of the kernel (config,
stash, creation time) and the init's pid *with its start time*, so that a
recycled pid is never mistaken for the container. The status is computed:

* ``creating`` -- a start is in progress: state.json names its creator (the
  process running ``Container.start``, cleared once the init is set up) and
  the creator is alive;
* ``stopped``  -- no init, the creator died before the init was set up (the
  half-made init dies with it), or the init's pid is gone, a zombie, or a
  different process (start time changed);
* ``paused``   -- the init's freezer cgroup is frozen;
* ``created``  -- ``exec.fifo`` exists: the init waits on it for ``start``;
* ``running``  -- otherwise.

Nothing of it can be written from inside the container (the state dir, the
init's start time, the freezer), unlike the init's name (comm), which any
process can change through /proc/self/comm.

Only this module writes state files: atomically (write a temporary file, rename).
"""
import fcntl
import os

from . import jsonio as json     # not the json package: ~8 ms of imports
from .errors import ContainerNotExists

STATE_FILE = "state.json"
FIFO = "exec.fifo"

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"
# An init's name (comm) until it execs the user's program, for ps(1) only:
# still being set up, or set up and held for start (core/spawn.py).
SETUP_NAME, HELD_NAME = "lc:init-setup", "lc:init-held"


PF_EXITING = 0x4


def proc_stat(pid):
    """(state letter, start time in clock ticks, kernel flags) of a pid, or
    None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19]), int(fields[6])


def alive(pid, start_time):
    """True if `pid` is the same live process that started at `start_time`:
    not a zombie, and not exiting (a killed PID-namespace init lingers until
    every process of its namespace is reaped, its resources already gone)."""
    if not pid:
        return False
    st = proc_stat(pid)
    return (st is not None and st[0] not in ("Z", "X") and st[1] == start_time
            and not st[2] & PF_EXITING)


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
    creator = state.get("creator")
    if not pid or creator:
        return CREATING if creator and alive(*creator) else STOPPED
    if not alive(pid, state.get("init_start_time")):
        return STOPPED
    if frozen(pid):
        return PAUSED
    if os.path.exists(os.path.join(state_dir, FIFO)):
        return CREATED
    return RUNNING


# the fields whose type every reader relies on
_TYPES = {"init_pid": int, "init_start_time": (int, type(None)), "stash": dict,
          "creator": (list, type(None)), "namespaces": dict, "config": dict}


def read(state_dir):
    """state.json as a dict; ValueError if it is not JSON or a field every
    reader relies on has the wrong type."""
    with open(os.path.join(state_dir, STATE_FILE), "rb") as f:
        data = json.loads(f.read())
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    for key, tp in _TYPES.items():
        if key in data and not isinstance(data[key], tp):
            raise ValueError(f"{key}: {type(data[key]).__name__} is not the expected type")
    return data


def salvage(state_dir):
    """What a damaged state.json still tells, for destroy --force: the fields
    of the right type -- of the whole file if it parses, else of what comes
    before "config" (written last, so that a truncated file keeps the pid,
    its start time and the stash). Without a verifiable pid, init_pid is 0."""
    try:
        with open(os.path.join(state_dir, STATE_FILE), "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        text = ""
    data = {}
    for candidate in (text, text.split(',"config":', 1)[0] + "}"):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            break
    data = {k: v for k, v in (data if isinstance(data, dict) else {}).items()
            if k not in _TYPES or isinstance(v, _TYPES[k])}
    if not isinstance(data.get("init_pid"), int) or not isinstance(data.get("init_start_time"),
                                                                   int):
        data.update(init_pid=0, init_start_time=None)
    data["creator"] = None
    return data


def write(state_dir, state):
    path = os.path.join(state_dir, STATE_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    # config last: a truncated file still tells what salvage() needs
    ordered = {k: v for k, v in state.items() if k != "config"}
    if "config" in state:
        ordered["config"] = state["config"]
    try:
        # no fsync (as runc): the state root is a tmpfs on most hosts, and
        # rename alone is atomic; ~0.5-10 ms a write on a disk, 7 writes a run
        os.write(fd, json.dumps(ordered, separators=(",", ":")).encode())
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
        if self.fd is not None:
            return self         # taken by acquire()
        return self.acquire()

    def acquire(self):
        """Take the lock; ContainerNotExists if the state dir is gone, or was
        removed (by a destroy) while we waited."""
        try:
            fd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotExists(os.path.basename(self.state_dir)) from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink == 0:
            os.close(fd)
            raise ContainerNotExists(os.path.basename(self.state_dir))
        self.fd = fd
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
