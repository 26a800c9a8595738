"""A container: its state, its init, and the operations allowed on it.

Every operation has the same shape: lock the state dir, derive the status
from the system, check the operation is allowed in it, do it, save.
"""
import errno
import os
import select
import _signal     # not signal: its enums cost a CLI call ~4 ms
import time

from . import log, state as st
from .errors import ContainerNotExists, InvalidState, LibcontainerError, SetupError
from .faults import crash_point

# the hooks destroy() (and signal(all=True)) call: a factory built with
# hooks=DESTROY_HOOKS imports no other plugin
DESTROY_HOOKS = ["libcontainer_processes", "libcontainer_thaw", "libcontainer_teardown"]

# status -> operations allowed in it
ALLOWED = {
    st.CREATING: set(),
    st.CREATED: {"exec", "run", "signal", "destroy", "pause"},
    st.RUNNING: {"run", "signal", "destroy", "pause", "update"},
    st.PAUSED: {"resume", "destroy", "signal", "update"},
    st.STOPPED: {"start", "destroy"},
}


class Container:
    def __init__(self, factory, id, config, state):
        self.factory = factory
        self.id = id
        self._config = config       # None: parsed from state["config"] when needed
        self.state = state
        self.state_dir = os.path.join(factory.root, id)
        self.init_process = None
        self._joined = []       # processes this object forked with run()

    # -- state ------------------------------------------------------------
    @property
    def config(self):
        # parsed lazily: kill and state need none of it, and building ~20
        # dataclasses costs milliseconds on every CLI call
        if self._config is None:
            from .configs import Config
            self._config = Config.from_dict(self.state.get("config"),
                                            where=f"{self.id}/state.json config")
        return self._config

    @config.setter
    def config(self, value):
        self._config = value

    @property
    def pm(self):
        return self.factory.plugin_manager

    @property
    def stash(self):
        """Per-plugin state: ``container.stash.setdefault(name, {})``."""
        return self.state.setdefault("stash", {})

    @property
    def init_pid(self):
        return self.state.get("init_pid", 0)

    def status(self):
        return st.status(self.state, self.state_dir)

    def save(self):
        st.write(self.state_dir, self.state)

    def _reload(self):
        """What another process saved meanwhile (the init it started, what
        its plugins made) wins over our copy: called under the lock."""
        try:
            self.state.update(st.read(self.state_dir))
        except (OSError, TypeError, ValueError):
            pass        # gone or unreadable: act on what we have

    def _check(self, op):
        self._reload()
        status = self.status()
        if op not in ALLOWED[status]:
            if status == st.STOPPED:
                raise InvalidState(f"container {self.id} is not running")
            raise InvalidState(f"cannot {op} container {self.id}: it is {status}")
        return status

    # -- starting -----------------------------------------------------------
    def start(self, process, hold=False):
        """Start `process` as the container's init. With ``hold=True`` the
        init stops just before exec and waits for :meth:`exec` (the two-phase
        create/start of OCI runtimes)."""
        from .spawn import spawn

        with st.Lock(self.state_dir):
            self._check("start")
            if self.init_pid:
                raise InvalidState(f"container {self.id} has already run")
            process.init = True
            self.pm.hook.libcontainer_validate_process(container=self, process=process)
            self.state["creator"] = [os.getpid(), st.proc_stat(os.getpid())[1]]
            self.save()
            hold_fd = None
            try:
                before = repr(self.stash)
                log.debug("pre_clone: cgroups, networks", id=self.id)
                self.pm.hook.libcontainer_pre_clone(container=self, process=process)
                if repr(self.stash) != before:      # save what plugins made, if any
                    self.save()
                log.debug("spawning the init", id=self.id, hold=hold)
                crash_point("pre_clone:parent")
                if hold:
                    hold_fd = self._make_fifo()
                pid = spawn(self, process, self.pm, hold_fd=hold_fd,
                            on_fork=self._record_init)
            except BaseException:
                errors = self._teardown()
                self.state.update(init_pid=0, creator=None)
                self._remove_fifo()
                self.save()
                if errors:
                    raise SetupError(f"{errors[0][0]}: {errors[0][1]}")
                raise
            finally:
                if hold_fd is not None:
                    os.close(hold_fd)
            self.state["creator"] = None    # set up: created (held) or running
            self.save()
        log.debug("init set up", id=self.id, pid=pid)
        crash_point("post_start:parent")
        self.init_process = process
        if not hold:
            self.pm.hook.libcontainer_post_start(container=self, process=process, pid=pid)
        return pid

    def _record_init(self, pid):
        from .linux.namespaces import NAMESPACES
        self.state.update(init_pid=pid, init_start_time=st.proc_stat(pid)[1],
                          created=self.state.get("created") or _now())
        self.state["namespaces"] = {
            ns.type: ns.path or f"/proc/{pid}/ns/{NAMESPACES[ns.type][1]}"
            for ns in self.config.namespaces}
        self.save()

    def _make_fifo(self):
        """exec.fifo, which the held init opens for writing as the process's
        user: writable by all whatever the umask (as runc), owned by the
        container's root. Returns an O_PATH fd for the init."""
        fifo = os.path.join(self.state_dir, st.FIFO)
        os.mkfifo(fifo)
        os.chmod(fifo, 0o622)
        try:
            os.chown(fifo, self._root_id("uid"), self._root_id("gid"))
        except PermissionError:
            pass    # an unprivileged runtime: the mode alone lets the init in
        return os.open(fifo, os.O_PATH | os.O_CLOEXEC)

    def _root_id(self, kind):
        """The host id of the container's root (0 without a user namespace)."""
        for m in getattr(self.config, f"{kind}_mappings") or ():
            if m.container_id <= 0 < m.container_id + m.size:
                return m.host_id - m.container_id
        return 0

    def exec(self):
        """Let a held init (``start(process, hold=True)``) exec its program.
        Raises with the init's message if it fails before its exec."""
        with st.Lock(self.state_dir):
            self._check("exec")
            fifo = os.path.join(self.state_dir, st.FIFO)
            if not os.path.exists(fifo):
                raise InvalidState(f"container {self.id} has already been started")
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            # opening released the init: a runtime killed from here on must
            # not leave a fifo that says "created"
            self._remove_fifo()
            crash_point("exec:parent")
            try:
                data = self._read_fifo(fd)
            finally:
                os.close(fd)
        if not data:
            raise LibcontainerError(f"container {self.id} init exited before start")
        if len(data) > 1:
            raise SetupError(data[1:].decode(errors="replace"))
        log.debug("init released", id=self.id, pid=self.init_pid)
        self.pm.hook.libcontainer_post_start(container=self, process=self.init_process,
                                             pid=self.init_pid)

    def _read_fifo(self, fd):
        """What the init writes: "0" once released, then nothing (it exec'd:
        the fifo is close-on-exec) or its error message, until EOF."""
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        data = b""
        while True:
            if not poller.poll(100):
                if not data and not st.alive(self.init_pid, self.state.get("init_start_time")):
                    return data     # it never opened the fifo
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                return data
            data += chunk

    def run(self, process, paused_ok=False):
        """Start a further process in the running container: it joins the
        init's namespaces and cgroup. Returns its pid; ``process.wait()``.
        With ``paused_ok`` a paused container is joined too: the process
        freezes as it enters the cgroup, so this returns once resumed."""
        from .spawn import spawn

        with st.Lock(self.state_dir):
            self._reload()
            paused = paused_ok and self.status() == st.PAUSED
            if not paused:
                self._check("run")
            process.init = False
            self.factory.check_plugins(self.config, process)
            self.pm.hook.libcontainer_validate_process(container=self, process=process)
            if not paused:
                pid = spawn(self, process, self.pm)
        if paused:
            # outside the lock: resume needs it to thaw the process
            log.debug("joining a paused container: waits for resume", id=self.id)
            pid = spawn(self, process, self.pm)
        log.debug("process joined", id=self.id, pid=pid)
        self._joined = [p for p in self._joined if p.returncode is None] + [process]
        self.pm.hook.libcontainer_post_start(container=self, process=process, pid=pid)
        return pid

    # -- operating -------------------------------------------------------
    def signal(self, sig=_signal.SIGTERM, all=False):
        """Signal the init; with ``all`` every process of the container,
        also those left in its cgroup once the init is gone (a shared PID
        namespace), as runc."""
        if all and self.status() == st.STOPPED:
            pids = self._tracked() or []
        else:
            self._check("signal")
            pids = self.processes() if all else [self.init_pid]
        for pid in (p for p in pids if p > 0):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def processes(self):
        """Host pids of every process in the container."""
        if self.status() == st.STOPPED:
            return []
        tracked = self._tracked()
        if tracked is not None:
            return tracked
        # untracked: a PID namespace of its own holds only the container's
        # processes; a joined one (by path: another container's, the host's)
        # does not, so then only the init and its descendants are ours
        ns = self.config.namespace("NEWPID")
        if ns is not None and not ns.path:
            return sorted(_pids_in_pidns(self.init_pid))
        return sorted(_descendants(self.init_pid))

    def _tracked(self):
        """The pids the plugins track (the cgroup's), or None if none does."""
        results = self.pm.hook.libcontainer_processes(container=self)   # Nones dropped
        return sorted({p for result in results for p in result}) if results else None

    def stats(self):
        stats = {}
        self.pm.hook.libcontainer_stats(container=self, stats=stats)
        return stats

    def pause(self):
        with st.Lock(self.state_dir):
            self._check("pause")
            self._need_impl("libcontainer_freeze", "pause")
            self.pm.hook.libcontainer_freeze(container=self)

    def resume(self):
        with st.Lock(self.state_dir):
            self._check("resume")
            self._need_impl("libcontainer_thaw", "resume")
            self.pm.hook.libcontainer_thaw(container=self)

    def set(self, resources):
        """Update the resource limits of the running container."""
        with st.Lock(self.state_dir):
            self._check("update")
            self._need_impl("libcontainer_update", "update")
            self.pm.hook.libcontainer_update(container=self, resources=resources)
            if self.config.cgroups is not None:
                self.config.cgroups.resources = resources
                self.state["config"] = self.config.to_dict()
                self.save()

    def _need_impl(self, hookname, op):
        if not getattr(self.pm.hook, hookname).get_hookimpls():
            raise LibcontainerError(f"cannot {op} container {self.id}: "
                                    f"no enabled plugin provides a freezer")

    # -- the end ------------------------------------------------------------
    def destroy(self):
        """Kill every process, remove what the plugins made and the state
        dir. Idempotent; works whatever state the container is in."""
        if not os.path.isdir(self.state_dir):
            return
        try:
            lock = st.Lock(self.state_dir).acquire()
        except ContainerNotExists:
            return      # another destroy removed it meanwhile
        with lock:
            self._reload()
            status = self.status()
            if status == st.PAUSED:
                self.pm.call_each("libcontainer_thaw", container=self)
            # "stopped" may be a half-made init whose creator died: it dies too
            if status != st.STOPPED or st.alive(self.init_pid, self.state.get("init_start_time")):
                # never 0 or negative: os.kill would signal a process group
                for pid in {p for p in (*self.processes(), self.init_pid) if p > 0}:
                    try:
                        os.kill(pid, _signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self._reap_joined()
                self._wait_init_gone()
            elif self.init_pid:
                self._reap_init()
            crash_point("destroy:teardown")
            log.debug("processes gone, tearing down", id=self.id)
            errors = self._teardown()
            self._remove_fifo()
            crash_point("destroy:rmtree")
            _remove_tree(self.state_dir)
        if errors:
            raise LibcontainerError("destroy: " + "; ".join(f"{n}: {e}" for n, e in errors))

    def _teardown(self):
        return self.pm.call_each("libcontainer_teardown", container=self)

    def _reap_joined(self):
        """Kill and reap the processes we joined into the container: a dying
        init waits for every process of its PID namespace to be reaped, and
        ours can only be reaped by us."""
        for p in self._joined:
            try:
                if p.poll() is None:
                    os.kill(p.pid, _signal.SIGKILL)
                    p.wait()
            except (ProcessLookupError, ChildProcessError, LibcontainerError):
                pass    # reaped elsewhere already
        self._joined = []

    def _reap_init(self):
        if self.init_pid <= 0:
            return
        try:
            os.waitpid(self.init_pid, os.WNOHANG)
        except ChildProcessError:
            pass

    def _wait_init_gone(self, timeout=10.0):
        pid, start = self.init_pid, self.state.get("init_start_time")
        if pid <= 0:
            return      # waitpid(0) would wait for any child of our group
        try:
            pidns = os.readlink(f"/proc/{pid}/ns/pid")
        except OSError:
            pidns = None
        try:
            # a dying init waits until every process of its PID namespace is
            # reaped: meanwhile reap those that are our children (joined
            # through another Container object, or adopted as a subreaper)
            while True:
                reaped, status = os.waitpid(pid, os.WNOHANG)
                if reaped:
                    break
                _reap_children_in(pidns, keep=pid)
                time.sleep(0.002)
            if self.init_process is not None and self.init_process.returncode is None:
                code = os.waitstatus_to_exitcode(status)
                self.init_process.returncode = 128 - code if code < 0 else code
            return
        except ChildProcessError:
            pass      # not our child: whoever adopted it reaps it
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return
        try:
            deadline = time.monotonic() + timeout
            while st.alive(pid, start) and time.monotonic() < deadline:
                _reap_children_in(pidns, keep=pid)
                select.select([pidfd], [], [], 0.1)
        finally:
            os.close(pidfd)

    def _remove_fifo(self):
        try:
            os.unlink(os.path.join(self.state_dir, st.FIFO))
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise


def _reap_children_in(pidns, keep):
    """Reap the children of this process that are in PID namespace `pidns`,
    but not `keep` (the init: its status belongs to its Process object)."""
    if pidns is None:
        return
    try:
        with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
            children = f.read().split()
    except OSError:
        return
    for child in children:
        if int(child) == keep:
            continue
        try:
            if os.readlink(f"/proc/{child}/ns/pid") == pidns:
                os.waitpid(int(child), os.WNOHANG)
        except (OSError, ChildProcessError):
            pass


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + \
        f".{time.time_ns() % 1_000_000_000:09d}Z"


def _descendants(pid):
    """`pid` and every process below it (from /proc/PID/task/TID/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split() if int(c) not in found)
            except OSError:
                pass
    return found


def _pids_in_pidns(init_pid):
    """Pids sharing the init's PID namespace (when no plugin tracks them)."""
    try:
        target = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == target:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def _remove_tree(path):
    """rm -rf of a state dir, which holds files only: shutil's import (bz2,
    lzma, fnmatch) costs ~3 ms of a `pyrunc run`."""
    try:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:     # a directory in it, or a file going away meanwhile
        import shutil
        shutil.rmtree(path, ignore_errors=True)
