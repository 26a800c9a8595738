"""OCI hooks (runtime-spec config.md, "POSIX-platform Hooks"): programs run
at fixed moments of a container's life, each given the container's state
JSON on stdin.

    hook             where                          when (our phase)
    prestart         parent, host namespaces        runtime_ready: the init is in
                                                    its cgroup, its network is up,
                                                    its mounts are made
    createRuntime    parent, host namespaces        runtime_ready, after prestart
    createContainer  the init, container namespaces rootfs_ready: mounts made,
                                                    before pivot_root; cwd: the rootfs
    startContainer   the init, inside the rootfs    pre_exec: after `start` and the
                                                    seccomp filter, before exec
    poststart        the process that starts it     post_start
    poststop         any                            teardown

A failing hook (non-zero exit, a signal, or its timeout) fails the
operation; poststop failures are only logged. A hook gets exactly its
``env`` (none when empty: neither the runtime's environment nor, for the
hooks run by the init, the host's). A startContainer hook is a file of the
container: it passes the same exec check as the process (core/execguard.py).
"""
import importlib
import json
import os
import sys

from libcontainer import execguard, hookimpl, log
from libcontainer.errors import ConfigError, SetupError

NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")
OCI_VERSION = "1.2.1"
_host_pid = 0      # the init's host pid, learnt before pivot_root (child only)


def state_json(container, status, pid):
    oci = container.state.get("oci") or {}
    state = {"ociVersion": OCI_VERSION, "id": container.id, "status": status, "pid": pid,
             "bundle": oci.get("bundle", "")}
    if container.config.labels:
        state["annotations"] = container.config.labels
    return json.dumps(state)


def run_hooks(container, name, status, pid, cwd=None, check=False):
    """Run every hook of kind `name`; raise SetupError on the first failure.
    `check`: each must pass the exec check of the container's programs."""
    hooks = container.config.hooks.get(name) or []
    if not hooks:
        return
    state = state_json(container, status, pid).encode()
    for i, hook in enumerate(hooks):
        where = f"hooks.{name}[{i}]"
        if check:
            try:
                execguard.check(hook.path, {})
            except SetupError as e:
                raise SetupError(f"{where}: {e}") from None
        run_hook(hook, state, where, cwd)


def run_hook(hook, state, where, cwd=None):
    import subprocess
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in hook.env or ())
    try:
        proc = subprocess.Popen(hook.args or [hook.path], executable=hook.path, env=env,
                                cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, close_fds=True)
    except OSError as e:
        raise SetupError(f"{where}: {hook.path}: {e.strerror}") from None
    try:
        out, err = proc.communicate(state, timeout=hook.timeout or None)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise SetupError(f"{where}: {hook.path} timed out after {hook.timeout}s") from None
    if proc.returncode != 0:
        how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        detail = (err or out).decode(errors="replace").strip().splitlines()
        raise SetupError(f"{where}: {hook.path} failed ({how})"
                         + (f": {detail[-1]}" if detail else ""))


@hookimpl
def libcontainer_validate_config(config):
    for name, hooks in config.hooks.items():
        if name not in NAMES:
            raise ConfigError(f"hooks.{name}: unknown hook (known: {', '.join(NAMES)})")
        for i, hook in enumerate(hooks):
            where = f"hooks.{name}[{i}]"
            if not os.path.isabs(hook.path):
                raise ConfigError(f"{where}.path: {hook.path!r} is not an absolute path")
            if hook.timeout < 0:
                raise ConfigError(f"{where}.timeout: {hook.timeout} is negative")


@hookimpl
def libcontainer_pre_clone(container, process):
    if container.config.hooks.get("createContainer") or \
            container.config.hooks.get("startContainer"):
        # the init runs these after pivot_root, where the host's stdlib is gone
        importlib.import_module("subprocess")


@hookimpl
def libcontainer_runtime_ready(container, process, pid):
    if process.init:
        run_hooks(container, "prestart", "creating", pid)
        run_hooks(container, "createRuntime", "creating", pid)


@hookimpl
def libcontainer_rootfs_ready(container, process):
    global _host_pid
    hooks = container.config.hooks
    if hooks.get("createContainer") or hooks.get("startContainer"):
        # /proc is still the host's here: /proc/self is the host pid
        _host_pid = int(os.readlink("/proc/self"))
        run_hooks(container, "createContainer", "creating", _host_pid,
                  cwd=container.config.rootfs)


@hookimpl
def libcontainer_pre_exec(container, process):
    if process.init:
        run_hooks(container, "startContainer", "created", _host_pid, check=True)


@hookimpl
def libcontainer_post_start(container, process, pid):
    if process is None or process.init:
        run_hooks(container, "poststart", "running", pid)


@hookimpl
def libcontainer_teardown(container):
    if not container.config.hooks.get("poststop"):
        return
    stash = container.stash.setdefault("oci_hooks", {})
    if stash.get("poststop_done"):
        return
    stash["poststop_done"] = True
    try:
        run_hooks(container, "poststop", "stopped", 0)
    except SetupError as e:
        if log.to_file():
            log.warning(str(e))
        sys.stderr.write(f"warning: {e}\n")
