"""pyrunc create/start as runc does them: a held init owns only its stdio
(the pty slave with a terminal), the exec fifo works for any process user and
in a user namespace, the init's death reason reaches create or start, the
OCI hooks' phases, environment and exec check, and a status the container
cannot spoof. Compared with runc where both can run."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import read_pty, unique
from test_pyrunc import PYRUNC, Result, Runtime, containerd, rt  # noqa: F401 (fixtures)

RUNC = shutil.which("runc")
MKDIR_DENIED = {"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                              "errnoRet": 95}]}


def need_runc():
    if RUNC is None:
        pytest.skip("runc is not installed (make apt installs it)")


class Runc:
    """runc with its own --root, on a copy of a pyrunc bundle's config.json
    (runc wants an absolute, non-symlink root.path)."""

    def __init__(self, tmp_path, rootfs):
        self.root = str(tmp_path / "runc-state")
        self.tmp, self.rootfs = tmp_path, rootfs
        self.ids = []

    def bundle(self, bundle):
        cid = unique("runc")
        path = self.tmp / cid
        path.mkdir()
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        spec["root"]["path"] = self.rootfs
        spec["linux"]["cgroupsPath"] = f"/{cid}"
        (path / "config.json").write_text(json.dumps(spec))
        self.ids.append(cid)
        return cid, str(path)

    def __call__(self, *args):
        # files, not pipes: runc's held init keeps its caller's stdio
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([RUNC, "--root", self.root, *args], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=err, timeout=60)
            out.seek(0)
            err.seek(0)
            return Result(p.returncode, out.read(), err.read())

    def cleanup(self):
        for cid in self.ids:
            self("delete", "--force", cid)


@pytest.fixture
def runc(tmp_path, rootfs):
    need_runc()
    r = Runc(tmp_path, rootfs)
    yield r
    r.cleanup()


def user(uid, gid):
    return lambda spec: spec["process"].update(user={"uid": uid, "gid": gid})


def init_pid(state_json):
    return json.loads(state_json)["pid"]


def fds_of(pid):
    """{fd: link target} of a process."""
    d = f"/proc/{pid}/fd"
    return {int(n): os.readlink(os.path.join(d, n)) for n in os.listdir(d)}


def console_socket(tmp_path, name="console.sock"):
    path = str(tmp_path / name)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(30)
    return srv, path


def receive_master(srv):
    conn, _ = srv.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    assert len(fds) == 1
    return fds[0]


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


# --------------------------------------------------------------------------
# a held init owns only its stdio
# --------------------------------------------------------------------------

def _create_in_command_substitution(runtime, root, bundle, cid, sock, command=("create",)):
    """`out=$(RUNTIME create --console-socket ...)` as scripts write it; the
    timeout turns a regression (the held init keeping the pipe) into a
    failure instead of a hang."""
    srv, path = sock
    with srv:
        p = subprocess.Popen(["bash", "-c", f'out=$("$@" 2>&1); echo "rc=$? out=$out"', "sh",
                              runtime, "--root", root, *command, "--bundle", bundle,
                              "--console-socket", path, cid],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        master = receive_master(srv)
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            os.close(master)
            pytest.fail(f"{runtime} create with a terminal did not return: the held init "
                        f"keeps the caller's stdout")
    return out, master


def test_create_with_a_terminal_returns_in_command_substitution(rt, runc, tmp_path):
    args = ("sh", "-c", "tty; id -u; ls /proc/self/fd")
    edit = lambda s: (s["process"].update(terminal=True), user(1000, 1000)(s))  # noqa: E731
    cid, bundle = rt.bundle(args, edit=edit)
    out, master = _create_in_command_substitution(PYRUNC, rt.root, bundle, cid,
                                                  console_socket(tmp_path))
    try:
        assert out == "rc=0 out=\n"
        pid = init_pid(rt.ok("state", cid).stdout)
        assert rt.state(cid)["status"] == "created"
        fds = fds_of(pid)
        # the pty slave as stdio, and of the runtime's only the exec fifo
        # (and the init's own /proc/PID: a detached clone, "/")
        assert [fds[i] for i in (0, 1, 2)] == ["/dev/pts/0"] * 3
        assert sorted(v for k, v in fds.items() if k > 2) == \
            ["/", os.path.join(rt.root, cid, "exec.fifo")]
        rt.ok("start", cid)
        seen = read_pty(master, until=b"\n2\r\n", timeout=20)
    finally:
        os.close(master)
    assert seen.split("\r\n")[:2] == ["/dev/pts/0", "1000"]
    assert rt.wait_status(cid, "stopped") == "stopped"

    # run -d: the same
    cid, bundle = rt.bundle(("sh", "-c", "tty; sleep 100"), edit=edit)
    out, master = _create_in_command_substitution(PYRUNC, rt.root, bundle, cid,
                                                  console_socket(tmp_path, "run.sock"),
                                                  command=("run", "-d"))
    try:
        assert out == "rc=0 out=\n"
        assert read_pty(master, until=b"\n", timeout=20) == "/dev/pts/0\r\n"
    finally:
        os.close(master)

    # runc: the same
    rcid, rbundle = runc.bundle(bundle)
    out, master = _create_in_command_substitution(RUNC, runc.root, rbundle, rcid,
                                                  console_socket(tmp_path, "runc.sock"))
    os.close(master)
    assert out == "rc=0 out=\n"


def test_detached_create_without_terminal_passes_only_the_callers_stdio(rt, runc, tmp_path):
    """The init gets the caller's stdin/stdout/stderr (as runc's), but no other
    fd of the caller's or of the runtime's (an inherited fd 7 stays out)."""
    cid, bundle = rt.bundle(("sleep", "100"))
    rcid, rbundle = runc.bundle(bundle)
    held = {}
    for name, cmd in (("pyrunc", [PYRUNC, "--root", rt.root, "create", "--bundle", bundle,
                                  cid]),
                      ("runc", [RUNC, "--root", runc.root, "create", "--bundle", rbundle,
                                rcid])):
        out, err, extra = (str(tmp_path / f"{name}.{x}") for x in ("out", "err", "extra"))
        with open(out, "w") as o, open(err, "w") as e, open(extra, "w") as x:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                               pass_fds=[x.fileno()], timeout=60)
        assert p.returncode == 0, open(err).read()
        state = subprocess.run([cmd[0], "--root", cmd[2], "state", cmd[-1]],
                               capture_output=True, text=True).stdout
        fds = fds_of(init_pid(state))
        assert [fds[i] for i in (0, 1, 2)] == ["/dev/null", out, err], name
        assert extra not in fds.values(), name
        held[name] = fds
    assert sorted(v for k, v in held["pyrunc"].items() if k > 2) == \
        ["/", os.path.join(rt.root, cid, "exec.fifo")]     # "/": core/procself.py


# --------------------------------------------------------------------------
# the exec fifo: any process user, user namespaces
# --------------------------------------------------------------------------

def test_non_root_user_create_start_exec_like_runc(rt, runc):
    cid, bundle = rt.bundle(("sleep", "100"), edit=user(1000, 1000))
    rcid, rbundle = runc.bundle(bundle)
    old = os.umask(0o077)      # the fifo's mode must not depend on it
    try:
        rt.ok("create", "--bundle", bundle, cid)
        assert runc("create", "--bundle", rbundle, rcid).returncode == 0
    finally:
        os.umask(old)
    assert rt.state(cid)["status"] == "created"
    assert os.stat(os.path.join(rt.root, cid, "exec.fifo")).st_mode & 0o777 == 0o622
    rt.ok("start", cid)
    assert runc("start", rcid).returncode == 0
    assert rt.state(cid)["status"] == "running"
    ours = rt.ok("exec", cid, "id").stdout
    theirs = runc("exec", rcid, "id").stdout
    assert ours == theirs and ours.startswith("uid=1000(user) gid=1000(user)")


def test_non_root_user_with_a_terminal(rt, tmp_path):
    cid, bundle = rt.bundle(("sh", "-c", "tty; id -u; sleep 100"), edit=lambda s: (
        s["process"].update(terminal=True), user(1000, 1000)(s)))
    srv, path = console_socket(tmp_path)
    with srv:
        create = subprocess.Popen([PYRUNC, "--root", rt.root, "create", "--bundle", bundle,
                                   "--console-socket", path, cid], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        master = receive_master(srv)
        assert create.wait(timeout=30) == 0, create.stderr.read()
    try:
        rt.ok("start", cid)
        out = read_pty(master, until=b"1000\r\n", timeout=20)
    finally:
        os.close(master)
    assert out.split("\r\n")[:2] == ["/dev/pts/0", "1000"]
    srv, path = console_socket(tmp_path, "exec.sock")
    with srv:
        ex = subprocess.Popen([PYRUNC, "--root", rt.root, "exec", "-t", "-d", "--console-socket",
                               path, cid, "sh", "-c", "id -u; tty"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL)
        master = receive_master(srv)
        assert ex.wait(timeout=30) == 0
    try:
        out = read_pty(master, timeout=20)
    finally:
        os.close(master)
    assert out.startswith("1000\r\n/dev/pts/")


@pytest.fixture
def world_rt(rootfs):
    """pyrunc on bundles the namespace's root can reach (pytest's tmp_path
    is mode 700)."""
    import pathlib
    path = tempfile.mkdtemp(prefix=unique("tmp") + "-", dir="/tmp")
    os.chmod(path, 0o755)
    runtime = Runtime(pathlib.Path(path), rootfs)
    yield runtime
    runtime.cleanup()
    shutil.rmtree(path)


def test_user_namespaced_create_start(world_rt):
    rt = world_rt
    maps = [{"containerID": 0, "hostID": 300000, "size": 65536}]

    def edit(spec):
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"].update(uidMappings=maps, gidMappings=maps)
    cid, bundle = rt.bundle(("sleep", "100"), edit=edit)
    rt.ok("create", "--bundle", bundle, cid)
    st = os.stat(os.path.join(rt.root, cid, "exec.fifo"))
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o622, 300000, 300000)
    assert rt.state(cid)["status"] == "created"
    rt.ok("start", cid)
    pid = rt.state(cid)["pid"]
    assert wait_for(lambda: open(f"/proc/{pid}/comm").read() == "sleep\n")
    assert rt.state(cid)["status"] == "running"
    with open(f"/proc/{pid}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == ["300000"] * 4


# --------------------------------------------------------------------------
# the init's death reason reaches create or start
# --------------------------------------------------------------------------

def test_setup_failures_reach_create_like_runc(rt, runc):
    cases = [(dict(args=["no-such-program"]), "executable file not found in $PATH"),
             (dict(args=["sleep", "1"], cwd="/etc/passwd"), "not a directory")]
    for process, message in cases:
        cid, bundle = rt.bundle(edit=lambda s: s["process"].update(process))
        r = rt("create", "--bundle", bundle, cid)
        assert r.returncode == 1 and message.lower() in r.stderr.lower(), r
        assert len(r.stderr.splitlines()) == 1, r
        assert not os.path.exists(os.path.join(rt.root, cid))
        rcid, rbundle = runc.bundle(bundle)
        r = runc("create", "--bundle", rbundle, rcid)
        assert r.returncode == 1 and message.lower() in r.stderr.lower(), r.stderr


def test_failure_after_start_reaches_start(rt, tmp_path):
    cid, bundle = rt.bundle(("sleep", "100"), edit=lambda s: s.update(hooks={
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo no way >&2; exit 7"]}]}))
    rt.ok("create", "--bundle", bundle, cid)
    r = rt("start", cid)
    assert r.returncode == 1, r
    assert r.stderr == "pyrunc: hooks.startContainer[0]: /bin/sh failed (exit status 7): " \
                       "no way\n"
    assert rt.wait_status(cid, "stopped") == "stopped"


# --------------------------------------------------------------------------
# hooks: phases, working directory, environment, exec check
# --------------------------------------------------------------------------

def _hooks_dir(tmp_path):
    out = tmp_path / "hooks"
    out.mkdir(exist_ok=True)
    os.chmod(out, 0o777)
    return out


def _with_hooks_dir(out, hooks):
    def edit(spec):
        spec["hooks"] = hooks
        spec["mounts"].append({"destination": "/hooks", "type": "bind", "source": str(out),
                               "options": ["rbind", "rw"]})
    return edit


ENV_HOOK = f"""#!{sys.executable} -S
import os, sys
with open("/proc/self/environ") as f:     # as exec'd: Python adds LC_CTYPE to an empty one
    env = sorted(f.read().split("\\0")[:-1])
with open(sys.argv[1], "w") as f:
    f.write(" ".join(env) + "\\n" + os.getcwd())
"""


def test_hook_environment_and_working_directory(rt, runc, tmp_path, monkeypatch):
    """A hook gets exactly its env (none when absent; never the runtime's,
    FOO here); createContainer runs in the rootfs, as runc's."""
    out = _hooks_dir(tmp_path)
    monkeypatch.setenv("FOO", "runtime-secret")
    script = tmp_path / "env-hook"
    script.write_text(ENV_HOOK)
    script.chmod(0o755)

    def record(name, env=None):
        hook = {"path": str(script), "args": ["env-hook", str(out / name)]}
        if env is not None:
            hook["env"] = env
        return [hook]
    hooks = {"prestart": record("prestart"), "createRuntime": record("createRuntime", []),
             "createContainer": record("createContainer", ["A=1", "B=two"]),
             "poststart": record("poststart"), "poststop": record("poststop"),
             # in the container: busybox's sh adds PATH, PWD, SHLVL of its own
             "startContainer": [{"path": "/bin/sh", "args": [
                 "sh", "-c", "env > /hooks/startContainer"]}]}
    cid, bundle = rt.bundle(("true",), edit=_with_hooks_dir(out, hooks))
    rt.ok("run", "--bundle", bundle, cid)
    envs = {n: (out / n).read_text().split("\n")[0] for n in hooks if n != "startContainer"}
    assert envs == {"prestart": "", "createRuntime": "", "createContainer": "A=1 B=two",
                    "poststart": "", "poststop": ""}
    inside = {line.split("=")[0] for line in (out / "startContainer").read_text().split()}
    assert inside <= {"PATH", "PWD", "SHLVL"}, inside
    cwd = (out / "createContainer").read_text().split("\n")[1]
    assert os.path.realpath(cwd) == os.path.realpath(rt.rootfs)

    # runc runs createContainer in the rootfs too
    need_runc()
    os.unlink(out / "createContainer")
    rcid, rbundle = runc.bundle(bundle)
    assert runc("run", "--bundle", rbundle, rcid).returncode == 0
    assert (out / "createContainer").read_text().split("\n")[1] == cwd


def test_prestart_hooks_see_the_init_in_its_cgroup_with_its_mounts(rt, runc, tmp_path):
    """As runc's: prestart and createRuntime hooks run once the init is in
    its cgroup and its mounts are made (a hook may mount into the rootfs)."""
    out = _hooks_dir(tmp_path)
    script = ('s=$(cat); pid=$(echo "$s" | sed -n \'s/.*"pid": *\\([0-9]*\\).*/\\1/p\'); '
              f'cat /proc/$pid/cgroup > {out}/$0.cgroup; cat /proc/$pid/mountinfo > {out}/$0.mnt')
    hooks = {n: [{"path": "/bin/sh", "args": ["sh", "-c", script, n]}]
             for n in ("prestart", "createRuntime")}
    cid, bundle = rt.bundle(("true",), edit=lambda s: s.update(hooks=hooks))
    proc = os.path.join(os.path.realpath(rt.rootfs), "proc")
    rt.ok("create", "--bundle", bundle, cid)
    for name in hooks:
        lines = (out / f"{name}.cgroup").read_text().splitlines()
        assert any(line.endswith(f":/{cid}") for line in lines), (name, lines)
        assert proc in [line.split()[4] for line in (out / f"{name}.mnt").read_text()
                        .splitlines()], name
    need_runc()
    rcid, rbundle = runc.bundle(bundle)
    assert runc("create", "--bundle", rbundle, rcid).returncode == 0
    for name in hooks:
        lines = (out / f"{name}.cgroup").read_text().splitlines()
        assert any(line.endswith(f":/{rcid}") for line in lines), (name, lines)
        assert proc in [line.split()[4] for line in (out / f"{name}.mnt").read_text()
                        .splitlines()], name


def test_start_container_hooks_run_after_seccomp(rt, tmp_path):
    out = _hooks_dir(tmp_path)
    hooks = {"startContainer": [{"path": "/bin/sh", "args": [
        "sh", "-c", "grep Seccomp: /proc/self/status > /hooks/seccomp; "
                    "mkdir /hooks/made 2>/dev/null; echo $? > /hooks/mkdir"]}]}

    def edit(spec):
        _with_hooks_dir(out, hooks)(spec)
        spec["linux"]["seccomp"] = MKDIR_DENIED
    cid, bundle = rt.bundle(("true",), edit=edit)
    rt.ok("run", "--bundle", bundle, cid)
    assert (out / "seccomp").read_text().split() == ["Seccomp:", "2"]
    assert (out / "mkdir").read_text().strip() != "0" and not (out / "made").exists()


@pytest.mark.parametrize("path", ["/proc/self/exe", "/hooks/exe"])
def test_start_container_hook_cannot_run_the_runtimes_binary(rt, tmp_path, path):
    """A startContainer hook is a container's file: a path to /proc/self/exe
    (the host's Python while the init runs it), or a symlink to it, is
    refused by the same check as the process."""
    out = _hooks_dir(tmp_path)
    os.symlink("/proc/self/exe", out / "exe")
    hooks = {"startContainer": [{"path": path, "args": [
        "python3", "-S", "-c", "open('/hooks/pwned', 'w')"]}]}
    cid, bundle = rt.bundle(("sleep", "100"), edit=_with_hooks_dir(out, hooks))
    rt.ok("create", "--bundle", bundle, cid)
    r = rt("start", cid)
    assert r.returncode == 1, r
    assert "hooks.startContainer[0]" in r.stderr and "refusing to execute" in r.stderr, r
    assert not (out / "pwned").exists()
    assert rt.wait_status(cid, "stopped") == "stopped"


def test_program_swapped_by_a_start_container_hook_is_refused(rt, tmp_path):
    """The exec check runs again after the startContainer hooks, which run
    in the container and could replace the program by /proc/self/exe."""
    out = _hooks_dir(tmp_path)
    (out / "entry").write_text("#!/bin/sh\nexec sleep 100\n")
    os.chmod(out / "entry", 0o755)
    hooks = {"startContainer": [{"path": "/bin/sh", "args": [
        "sh", "-c", "rm /hooks/entry && ln -s /proc/self/exe /hooks/entry"]}]}
    cid, bundle = rt.bundle(("/hooks/entry",), edit=_with_hooks_dir(out, hooks))
    rt.ok("create", "--bundle", bundle, cid)
    r = rt("start", cid)
    assert r.returncode == 1 and "exec '/hooks/entry': refusing to execute" in r.stderr, r
    assert rt.wait_status(cid, "stopped") == "stopped"


# --------------------------------------------------------------------------
# the status cannot be spoofed from inside
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lc:init-setup", "lc:init-held"])
def test_status_ignores_the_inits_name(rt, name):
    cid, bundle = rt.running(("sh", "-c", f"printf {name} > /proc/self/comm; "
                                          "while :; do sleep 1; done"))
    pid = rt.state(cid)["pid"]
    assert wait_for(lambda: open(f"/proc/{pid}/comm").read() == name + "\n")
    assert rt.state(cid)["status"] == "running"
    r = rt("delete", cid)
    assert r.returncode == 1 and "not stopped" in r.stderr, r
    rt.ok("kill", cid, "KILL")
    assert rt.wait_status(cid, "stopped") == "stopped"


# --------------------------------------------------------------------------
# containerd with a terminal
# --------------------------------------------------------------------------

@pytest.mark.clients
def test_containerd_run_with_a_terminal(containerd):
    """`ctr run -t`: the shim runs `create --console-socket` with its output
    in a pipe it reads to EOF."""
    master, slave = os.openpty()
    cmd = ["ctr", "--address", containerd.sock, "-n", containerd.ns, "run", "-t", "--rm",
           "--runc-binary", PYRUNC, "--env", "PATH=/bin", "--rootfs", str(containerd.rootfs),
           unique("t"), "sh", "-c", "tty; exit 3"]
    p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        out = read_pty(master, timeout=60)
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    assert rc == 3, out
    assert "/dev/pts/0" in out
