"""exec: a further process in a running container."""
import os
import signal

from libcontainer.errors import LibcontainerError

from .commandline import PAUSED, STOPPED, Opt, UsageError, command
from .runtime import read_json
from .stdio import (attend, check_console, forward_to, hand_over_console, passed_fds,
                    send_pidfd, terminal_size_for, write_pid_file)


@command("ID [COMMAND [ARG...]]",
         Opt("process p", "value", None, "an OCI process JSON file (- for stdin)", "FILE"),
         Opt("console-socket", "value", None, "send the pty master to this socket", "PATH"),
         Opt("tty t", help="allocate a pseudo-terminal"),
         Opt("detach d", help="do not wait for the process"),
         Opt("pid-file", "value", None, "write the process's pid to FILE", "FILE"),
         Opt("pidfd-socket", "value", None, "send a pidfd of the process to this socket",
             "PATH"),
         Opt("cwd", "value", None, "working directory in the container", "DIR"),
         Opt("env e", "multi", None, "KEY=VALUE to add to the environment (repeatable)"),
         Opt("user u", "value", None, "UID[:GID] to run as", "UID[:GID]"),
         Opt("additional-gids g", "multi", None, "another group id (repeatable)", "GID"),
         Opt("cap c", "multi", None, "add a capability (repeatable)", "CAP"),
         Opt("no-new-privs", help="set no_new_privs for the process"),
         Opt("apparmor", "value", None, "accepted: the container's profile applies"),
         Opt("process-label", "value", None, "accepted: the container's label applies"),
         Opt("preserve-fds", "value", "0", "pass N more fds (3, 4, ...)", "N"),
         Opt("ignore-paused", help="exec even if the container is paused"),
         Opt("cgroup", "multi", None, "accepted and ignored: the container's cgroup is used"),
         stop_after=1)
def exec_(rt, o, args):
    """Run a further process in a running container."""
    from libcontainer import specconv
    if not args:
        raise UsageError("exec: missing the container id")
    cid, cmd = args[0], args[1:]
    container = rt.load(cid)
    status = container.status()
    if status == STOPPED:
        raise LibcontainerError("cannot exec in a stopped container")
    if status == PAUSED and not o.ignore_paused:
        raise LibcontainerError("cannot exec in a paused container")
    if o.process:
        source = "process.json" if o.process == "-" else os.path.basename(o.process)
        spec = read_json(o.process, source)
        specconv.check_fields({"process": spec}, source)
        process = specconv.to_process(spec, source=source, path="process")
    else:
        if not cmd:
            raise UsageError("exec: missing the command (or --process FILE)")
        process = specconv.to_process(_exec_spec(container, cmd, o), source="exec")
    check_console(process.tty, o.console_socket, o.detach)
    terminal_size_for(process, o.console_socket)
    process.extra_fds, process.env = passed_fds(o.preserve_fds, process.env)
    if not o.detach:
        forward_to(process)
    container.run(process)
    try:
        if process.tty:
            hand_over_console(process, o.console_socket)
        send_pidfd(process.pid, o.pidfd_socket)
        write_pid_file(o.pid_file, process.pid)
    except BaseException:
        process.signal(signal.SIGKILL)
        raise
    if o.detach:
        return 0
    return attend(process)


def _exec_spec(container, cmd, o):
    """The init's OCI process with the command line's changes (as runc)."""
    import copy
    p = copy.deepcopy((container.state.get("oci") or {}).get("process") or {})
    p["args"] = list(cmd)
    p["terminal"] = o.tty
    if o.cwd:
        p["cwd"] = o.cwd
    for e in o.env:
        if "=" not in e:
            raise UsageError(f"--env: {e!r} is not KEY=VALUE")
    p["env"] = list(p.get("env") or []) + list(o.env)
    user = dict(p.get("user") or {})
    if o.user:
        uid, _, gid = o.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise UsageError(f"--user: {o.user!r} is not UID[:GID]")
        user = {"uid": int(uid), "gid": int(gid or 0)}
    if o.additional_gids:
        if not all(g.isdigit() for g in o.additional_gids):
            raise UsageError("--additional-gids: expected numbers")
        user["additionalGids"] = [int(g) for g in o.additional_gids]
    p["user"] = user
    if o.cap:
        caps = p.setdefault("capabilities", {})
        for name in ("bounding", "effective", "permitted", "ambient", "inheritable"):
            caps[name] = list(caps.get(name) or []) + list(o.cap)
    if o.no_new_privs:
        p["noNewPrivileges"] = True
    return p
