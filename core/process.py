"""A process to run in a container: what to execute, and a handle to wait on."""
import os
import signal as _signal
from typing import Any, Optional

from .errors import LibcontainerError
from .record import dataclass, field


@dataclass(eq=False)
class Process:
    """``args`` is executed with ``env`` in ``cwd``. Each of stdin, stdout and
    stderr is a file object, a file descriptor, or None (inherit the
    caller's). ``user`` is a name or uid, optionally ``:group``, resolved in
    the container's /etc/passwd and /etc/group. Fields left None take the
    container's config (capabilities, rlimits, no_new_privileges, scheduler,
    io_priority, oom_score_adj, apparmor_profile, process_label)."""
    args: list
    env: list = field(default_factory=lambda: ["PATH=/usr/local/sbin:/usr/local/bin:"
                                               "/usr/sbin:/usr/bin:/sbin:/bin"])
    cwd: str = "/"
    user: str = ""
    additional_groups: list = field(default_factory=list)
    umask: Optional[int] = None
    stdin: Any = None
    stdout: Any = None
    stderr: Any = None
    tty: bool = False
    console_size: Optional[tuple] = None    # (rows, columns) of the pty, set before exec
    capabilities: Any = None
    rlimits: Optional[list] = None
    no_new_privileges: Optional[bool] = None
    extra_fds: list = field(default_factory=list)   # passed as fds 3, 4, ...
    # OCI process attributes (configs.Scheduler, IOPriority, CPUAffinity; labels)
    scheduler: Any = None
    io_priority: Any = None
    cpu_affinity: Any = None        # joined processes; None: config.exec_cpu_affinity
    oom_score_adj: Optional[int] = None
    apparmor_profile: Optional[str] = None
    process_label: Optional[str] = None
    # set by the container
    pid: int = 0
    init: bool = False
    returncode: Optional[int] = None
    console_fd: Optional[int] = None    # the pty master when tty=True
    pty: Optional[tuple] = None         # (master, slave) a plugin opened in the container

    def __post_init__(self):
        if not self.args or not all(isinstance(a, str) for a in self.args):
            raise LibcontainerError("process args must be a non-empty list of strings")

    def stdio_fds(self):
        """The three fds the child will dup onto 0, 1, 2 (None: inherit)."""
        out = []
        for i, s in enumerate((self.stdin, self.stdout, self.stderr)):
            if s is None:
                out.append(i)
            elif isinstance(s, int):
                out.append(s)
            else:
                out.append(s.fileno())
        return out

    def wait(self):
        """Wait for the process; return its exit status, 128+signal if it
        was killed by a signal."""
        if self.returncode is None:
            if not self.pid:
                raise LibcontainerError("process was not started")
            while True:
                try:
                    _, st = os.waitpid(self.pid, 0)
                    break
                except InterruptedError:
                    continue
                except ChildProcessError:
                    raise LibcontainerError(f"process {self.pid} is not a child of this "
                                            f"process and cannot be waited for") from None
            self.returncode = exit_status(st)
        return self.returncode

    def poll(self):
        if self.returncode is None and self.pid:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = exit_status(st)
        return self.returncode

    def signal(self, sig=_signal.SIGTERM):
        if self.returncode is None:
            os.kill(self.pid, sig)


def exit_status(wait_status):
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code
