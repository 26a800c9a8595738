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
         Opt("apparmor", "value", None, "the AppArmor profile of the process", "PROFILE"),
         Opt("process-label", "value", None, "the SELinux label of the process", "LABEL"),
         Opt("preserve-fds", "value", "0", "pass N more fds (3, 4, ...)", "N"),
         Opt("ignore-paused", help="exec even if the container is paused (the process "
             "waits, frozen, until it is resumed)"),
         Opt("cgroup", "multi", None, "run the process in this existing sub-cgroup of the "
             "container's: [CONTROLLER[,CONTROLLER]:]PATH", "SPEC"),
         stop_after=1, fail_code=255)
def exec_(rt, o, args):
    """Run a further process in a running container."""
    from libcontainer import specconv
    if not args:
        raise UsageError('"exec" requires a minimum of 1 argument(s)')
    cid, cmd = args[0], args[1:]
    sub_cgroup = _sub_cgroup(o.cgroup)
    container = rt.load(cid)
    status = container.status()
    if status == STOPPED:
        raise LibcontainerError("cannot exec in a stopped container")
    if status == PAUSED and not o.ignore_paused:
        raise LibcontainerError("cannot exec in a paused container (use --ignore-paused "
                                "to override)")
    if o.process:
        source = "process.json" if o.process == "-" else os.path.basename(o.process)
        spec = read_json(o.process, source)
        specconv.check_fields({"process": spec}, source)
        process = specconv.to_process(spec, source=source, path="process")
    else:
        if not cmd:
            raise UsageError("exec: missing the command (or --process FILE)")
        process = specconv.to_process(_exec_spec(container, cmd, o), source="exec")
    # never dropped, --process or not: the lsm plugin applies or refuses them
    if o.apparmor is not None:
        process.apparmor_profile = o.apparmor
    if o.process_label is not None:
        process.process_label = o.process_label
    # joined by the cgroups plugin instead of the container's own cgroup
    process.sub_cgroup = sub_cgroup
    check_console(process.tty, o.console_socket, o.detach)
    terminal_size_for(process, o.console_socket)
    process.extra_fds, process.env = passed_fds(o.preserve_fds, process.env)
    if not o.detach:
        forward_to(process)
    container.run(process, paused_ok=o.ignore_paused)
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


def _sub_cgroup(values):
    """--cgroup [CONTROLLER[,CONTROLLER]:]PATH (repeatable, as runc) -> the
    one value the cgroups plugin takes (Process.sub_cgroup), or None."""
    paths, controllers = set(), []
    for value in values:
        parts = value.split(":")
        if len(parts) > 2 or not parts[-1]:
            raise UsageError(f"invalid --cgroup argument: {value}")
        if len(parts) == 1 and len(values) > 1:
            raise UsageError(f"invalid --cgroup argument: {value} (missing CONTROLLER: prefix)")
        paths.add(parts[-1])
        controllers += parts[0].split(",") if len(parts) == 2 else []
    if len(paths) > 1:
        raise UsageError(f"--cgroup: one sub-cgroup path only (got {', '.join(sorted(paths))})")
    if not paths:
        return None
    return f"{','.join(controllers)}:{paths.pop()}" if controllers else paths.pop()
