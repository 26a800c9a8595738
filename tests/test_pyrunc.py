"""pyrunc, the runc-compatible CLI: lifecycle, exit codes, exec, queries,
errors, argv forms, OCI hooks, terminals; the same shapes as runc's output;
and the real clients, podman and containerd (marker ``clients``)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, copy_rootfs, gone, read_pty, unique

PYRUNC = os.path.join(BIN, "pyrunc")


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def __repr__(self):
        return f"<rc={self.returncode} out={self.stdout!r} err={self.stderr!r}>"


def call(*args, input=None, timeout=60, cwd=None):
    """Run pyrunc with stdout/stderr in files: a created container keeps the
    runtime's stdio, so pipes would not see EOF until it exits."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run([PYRUNC, *args], stdout=out, stderr=err, cwd=cwd, timeout=timeout,
                           input=input, text=True,
                           stdin=None if input is not None else subprocess.DEVNULL)
        out.seek(0)
        err.seek(0)
        return Result(p.returncode, out.read(), err.read())


class Runtime:
    """pyrunc with its own --root, and the bundles of one test."""

    def __init__(self, tmp_path, rootfs):
        self.tmp = tmp_path
        self.root = str(tmp_path / "pyrunc-state")
        self.rootfs = rootfs

    def __call__(self, *args, **kw):
        return call("--root", self.root, *args, **kw)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.returncode == 0, r
        return r

    def bundle(self, args=("sh", "-c", "echo hi"), cid=None, edit=None):
        """(id, bundle dir): config.json from `pyrunc spec`, no terminal, an
        absolute lct- cgroup path; rootfs is a symlink to the busybox rootfs."""
        cid = cid or unique()
        path = self.tmp / cid
        path.mkdir()
        os.symlink(self.rootfs, path / "rootfs")
        assert call("spec", "--bundle", str(path)).returncode == 0
        with open(path / "config.json") as f:
            spec = json.load(f)
        spec["process"]["terminal"] = False
        spec["process"]["args"] = list(args)
        spec["linux"]["cgroupsPath"] = f"/{cid}"
        if edit:
            edit(spec)
        with open(path / "config.json", "w") as f:
            json.dump(spec, f)
        return cid, str(path)

    def state(self, cid):
        return json.loads(self.ok("state", cid).stdout)

    def wait_status(self, cid, status, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            r = self("state", cid)
            current = json.loads(r.stdout)["status"] if r.returncode == 0 else None
            if current == status or time.monotonic() > deadline:
                return current
            time.sleep(0.02)

    def running(self, args=("sleep", "100"), edit=None):
        cid, bundle = self.bundle(args, edit=edit)
        self.ok("create", "--bundle", bundle, cid)
        self.ok("start", cid)
        return cid, bundle

    def cleanup(self):
        leftovers = os.listdir(self.root) if os.path.isdir(self.root) else []
        for cid in leftovers:
            self("delete", "--force", cid)
        return leftovers


@pytest.fixture
def rt(tmp_path, rootfs):
    runtime = Runtime(tmp_path, rootfs)
    yield runtime
    runtime.cleanup()
    assert not (os.path.isdir(runtime.root) and os.listdir(runtime.root))



def last_error_record(path):
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return records[-1]


# --------------------------------------------------------------------------
# the lifecycle
# --------------------------------------------------------------------------

def test_create_start_state_kill_delete(rt, tmp_path):
    cid, bundle = rt.bundle(("sleep", "100"))
    pid_file = tmp_path / "init.pid"
    rt.ok("create", "--bundle", bundle, "--pid-file", str(pid_file), cid)
    # create returns once the init waits and the pid file is written
    pid = int(pid_file.read_text())
    st = rt.state(cid)
    assert st["status"] == "created"
    assert st["pid"] == pid
    assert st["bundle"] == bundle
    assert st["rootfs"] == os.path.join(bundle, "rootfs")
    assert st["ociVersion"].startswith("1.")
    assert st["created"].endswith("Z")
    assert os.path.exists(f"/proc/{pid}")

    rt.ok("start", cid)
    assert rt.state(cid)["status"] == "running"
    r = rt("start", cid)
    assert r.returncode == 1 and "already running" in r.stderr

    rt.ok("kill", cid, "KILL")
    assert rt.wait_status(cid, "stopped") == "stopped"
    assert rt.state(cid)["pid"] == 0
    r = rt("kill", cid, "TERM")
    assert r.returncode == 1
    assert r.stderr.strip().endswith("container not running")
    r = rt("start", cid)
    assert r.returncode == 1 and "stopped" in r.stderr

    rt.ok("delete", cid)
    r = rt("state", cid)
    assert r.returncode == 1
    assert r.stderr.strip() == f"pyrunc: container {cid} does not exist"
    assert not os.path.exists(f"/sys/fs/cgroup/pids/{cid}")


def test_delete_created_container_without_force_but_not_a_running_one(rt):
    cid, bundle = rt.bundle(("sleep", "100"))
    rt.ok("create", "--bundle", bundle, cid)
    pid = rt.state(cid)["pid"]
    rt.ok("delete", cid)              # a created container is deleted like runc does
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert rt("state", cid).returncode == 1
    assert gone(pid)

    cid, _ = rt.running()
    r = rt("delete", cid)
    assert r.returncode == 1
    assert "cannot delete container" in r.stderr and "running" in r.stderr
    rt.ok("delete", "--force", cid)


def test_run_exit_status_and_output(rt, tmp_path):
    cid, bundle = rt.bundle(("sh", "-c", "echo out; hostname; exit 3"))
    r = rt("run", "--bundle", bundle, cid)
    assert r.returncode == 3
    assert r.stdout.split() == ["out", "pyrunc"]    # the runtime's stdout; spec's hostname
    assert not os.path.exists(os.path.join(rt.root, cid))    # run deletes what it made

    cid, bundle = rt.bundle(("true",))
    rt.ok("run", "--keep", "--bundle", bundle, cid)
    assert rt.state(cid)["status"] == "stopped"
    rt.ok("delete", cid)


def test_run_exit_status_of_a_signalled_init_and_signal_forwarding(rt, tmp_path):
    # killed from outside: 128+9
    cid, bundle = rt.bundle(("sleep", "100"))
    with open(tmp_path / "out", "w") as out:
        run = subprocess.Popen([PYRUNC, "--root", rt.root, "run", "--bundle", bundle, cid],
                               stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert rt.wait_status(cid, "running") == "running"
        rt.ok("kill", cid, "9")
        assert run.wait(timeout=30) == 137

    # SIGTERM to the runtime reaches the init, whose handler exits 9
    cid, bundle = rt.bundle(("sh", "-c", "trap 'exit 9' TERM; echo ready; "
                                         "while :; do sleep 0.05; done"))
    with open(tmp_path / "out2", "w") as out:
        run = subprocess.Popen([PYRUNC, "--root", rt.root, "run", "--bundle", bundle, cid],
                               stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while "ready" not in (tmp_path / "out2").read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) == 9


def test_run_detached(rt, tmp_path):
    cid, bundle = rt.bundle(("sleep", "100"))
    rt.ok("run", "-d", "--pid-file", str(tmp_path / "pid"), "--bundle", bundle, cid)
    assert rt.state(cid)["status"] == "running"
    assert rt.state(cid)["pid"] == int((tmp_path / "pid").read_text())
    rt.ok("delete", "-f", cid)


def test_preserve_fds(rt, tmp_path):
    cid, bundle = rt.bundle(("sh", "-c", "echo through-fd-3 >&3"))
    out = tmp_path / "fd3"
    # fd 3 of the runtime is handed to the container as its fd 3
    p = subprocess.run(["sh", "-c", f'exec 3>"{out}"; exec "$@"', "sh", PYRUNC, "--root",
                        rt.root, "run", "--preserve-fds", "1", "--bundle", bundle, cid],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0, p.stderr
    assert out.read_text() == "through-fd-3\n"


def test_exec(rt, tmp_path):
    cid, _ = rt.running()
    r = rt("exec", "--env", "X=exec-env", cid, "sh", "-c", "echo $X; ps -o pid,comm; exit 5")
    assert r.returncode == 5
    lines = r.stdout.split("\n")
    assert lines[0] == "exec-env"
    assert "1 sleep" in r.stdout            # it sees the container's pid namespace

    # options after the id belong to the command
    r = rt("exec", cid, "sh", "-c", 'echo "$@"', "sh", "--env", "-t")
    assert r.stdout.strip() == "--env -t"

    # an OCI process file, as containerd and conmon send it
    spec = json.loads((tmp_path / cid / "config.json").read_text())["process"]
    spec.update(args=["sh", "-c", "echo from-process-file; id -u; pwd"], cwd="/tmp",
                user={"uid": 1000, "gid": 1000}, capabilities={})
    (tmp_path / "process.json").write_text(json.dumps(spec))
    r = rt("exec", "--process", str(tmp_path / "process.json"), cid)
    assert r.returncode == 0, r
    assert r.stdout.split() == ["from-process-file", "1000", "/tmp"]

    # detached, with a pid file
    pid_file = tmp_path / "exec.pid"
    rt.ok("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "50")
    pid = int(pid_file.read_text())
    assert pid in json.loads(rt.ok("ps", "--format", "json", cid).stdout)

    # user and cwd flags
    r = rt("exec", "--user", "1000:1000", "--cwd", "/etc", cid, "sh", "-c", "id -u; id -g; pwd")
    assert r.stdout.split() == ["1000", "1000", "/etc"]

    rt.ok("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    r = rt("exec", cid, "true")
    assert r.returncode == 255 and "stopped" in r.stderr      # runc: 255 when exec fails


def test_list_and_ps(rt):
    cid, bundle = rt.running()
    other, _ = rt.bundle(("sleep", "100"))
    rt.ok("create", "--bundle", str(rt.tmp / other), other)
    rows = json.loads(rt.ok("list", "--format", "json").stdout)
    by_id = {r["id"]: r for r in rows}
    assert by_id[cid]["status"] == "running" and by_id[other]["status"] == "created"
    assert by_id[cid]["bundle"] == bundle
    assert sorted(rt.ok("list", "-q").stdout.split()) == sorted([cid, other])
    table = rt.ok("list").stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert any(line.split()[:3] == [cid, str(by_id[cid]["pid"]), "running"]
               for line in table[1:])

    pid = by_id[cid]["pid"]
    assert json.loads(rt.ok("ps", "--format", "json", cid).stdout) == [pid]
    table = rt.ok("ps", cid).stdout.splitlines()
    assert "PID" in table[0].split() and "CMD" in table[0].split()
    assert len(table) == 2 and str(pid) in table[1].split() and "sleep" in table[1]
    # everything after the id goes to ps(1)
    table = rt.ok("ps", cid, "-o", "pid,comm").stdout.splitlines()
    assert table[0].split() == ["PID", "COMMAND"]
    assert table[1].split() == [str(pid), "sleep"]


def test_pause_resume(rt):
    cid, _ = rt.running()
    rt.ok("pause", cid)
    assert rt.state(cid)["status"] == "paused"
    r = rt("exec", cid, "true")
    assert r.returncode == 255 and "paused" in r.stderr
    rt.ok("resume", cid)
    assert rt.state(cid)["status"] == "running"
    rt.ok("pause", cid)
    rt.ok("kill", cid, "KILL")           # a frozen init dies once thawed
    assert rt.wait_status(cid, "stopped") == "stopped"


def test_update_and_events(rt):
    cid, _ = rt.running()
    rt.ok("update", cid, "--memory", "50M", "--pids-limit", "20")   # flags after the id
    stats = json.loads(rt.ok("events", "--stats", cid).stdout)
    assert stats["type"] == "stats" and stats["id"] == cid
    assert stats["data"]["memory"]["usage"]["limit"] == 50 << 20
    assert stats["data"]["pids"] == {"current": 1, "limit": 20}
    assert stats["data"]["cpu"]["usage"]["total"] > 0

    rt.ok("update", "--resources", "-", cid, input=json.dumps({"pids": {"limit": 30}}))
    stats = json.loads(rt.ok("events", "--stats", cid).stdout)["data"]
    assert stats["pids"]["limit"] == 30
    assert stats["memory"]["usage"]["limit"] == 50 << 20        # merged, not replaced

    r = rt("update", cid, "--memory", "lots")
    assert r.returncode == 1 and "--memory: invalid value 'lots'" in r.stderr
    r = rt("update", "--resources", "-", cid, input='{"pids": {"limit": "x"}}')
    assert r.returncode == 1
    assert "resources: resources.pids.limit: expected an integer" in r.stderr


# --------------------------------------------------------------------------
# errors and the command line
# --------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["state"], ["kill"], ["start"], ["delete"], ["pause"],
                                     ["ps"], ["exec"], ["events", "--stats"]])
def test_unknown_id(rt, command):
    cid = unique()
    args = command[:1] + command[1:] + [cid] + (["true"] if command == ["exec"] else [])
    r = rt(*args)
    if command == ["exec"]:     # as runc: 255 and "exec failed: "
        assert (r.returncode, r.stderr) == (255, f"pyrunc: exec failed: container {cid} does "
                                                 f"not exist\n")
        return
    assert r.returncode == 1
    assert r.stderr == f"pyrunc: container {cid} does not exist\n"


def test_delete_force_of_unknown_id_succeeds(rt):
    rt.ok("delete", "--force", unique())


def test_json_error_record_in_the_log(rt, tmp_path):
    log = tmp_path / "log.json"
    cid, bundle = rt.running()
    rt.ok("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    r = rt("--log", str(log), "--log-format", "json", "kill", cid, "15")
    assert r.returncode == 1
    assert r.stderr.strip() == "pyrunc: container not running"     # one line on stderr
    record = last_error_record(log)
    assert record["level"] == "error"
    assert record["msg"] == "container not running"
    assert "time" in record


def test_bad_config_names_the_field_and_leaves_nothing(rt, tmp_path):
    cid, bundle = rt.bundle(edit=lambda s: s["process"].update(args="sh"))
    log = tmp_path / "log.json"
    r = rt("--log", str(log), "--log-format=json", "create", "--bundle", bundle, cid)
    assert r.returncode == 1
    assert r.stderr == 'pyrunc: config.json: process.args: expected a list, got "sh"\n'
    assert last_error_record(log)["msg"] == 'config.json: process.args: expected a list, got "sh"'
    assert not os.path.exists(os.path.join(rt.root, cid))

    # a value the plugins refuse: also one line, nothing left behind
    # (an unknown capability is only a warning, as runc: this one is refused)
    cid, bundle = rt.bundle(edit=lambda s: s["process"]["capabilities"].update(
        effective=["CAP_SYS_ADMIN"]))
    r = rt("create", "--bundle", bundle, cid)
    assert r.returncode == 1 and "SYS_ADMIN" in r.stderr and "\n" == r.stderr[-1]
    assert len(r.stderr.splitlines()) == 1
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert not os.path.exists(f"/sys/fs/cgroup/pids/{cid}")

    r = rt("create", "--bundle", str(tmp_path / "nowhere"), unique())
    assert r.returncode == 1 and "config.json: no such file" in r.stderr

    cid, bundle = rt.bundle(edit=lambda s: s["linux"].update(cgroupsPath="system.slice:x:y"))
    r = rt("create", "--bundle", bundle, cid)
    assert "run with --systemd-cgroup" in r.stderr
    r = rt("--systemd-cgroup", "create", "--bundle", bundle, cid)
    # the systemd driver: cgroup v2 only (tests/test_systemd_vm.py runs it)
    assert r.returncode == 1 and "systemd" in r.stderr and len(r.stderr.splitlines()) == 1


def test_argv_forms(rt, tmp_path):
    # single-dash long flags and --flag=value, as runc's CLI library accepts
    cid, bundle = rt.bundle(("sleep", "100"))
    r = call("-root", rt.root, "create", "-bundle", bundle, f"--pid-file={tmp_path / 'p'}",
             "-no-new-keyring", cid)
    assert r.returncode == 0, r
    assert (tmp_path / "p").read_text().isdigit()
    rt.ok("start", cid)
    # flags after the id, a boolean flag with =true
    rt.ok("kill", cid, "--all=true", "SIGUSR1")
    rt.ok("kill", "-a", cid, "KILL")
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid, "--force")

    cid, bundle = rt.bundle(("true",))
    r = call(f"--root={rt.root}", "run", cid, f"--bundle={bundle}", "-no-subreaper")
    assert r.returncode == 0, r

    r = rt("create", "--no-such-flag", cid)
    assert r.returncode == 1 and "flag provided but not defined: -no-such-flag" in r.stderr
    r = rt("frobnicate")
    assert r.returncode == 3 and "No help topic for 'frobnicate'" in r.stderr   # as runc
    assert rt("kill", cid, "SIGNOPE").stderr.strip() == "pyrunc: invalid signal 'SIGNOPE'"
    assert "--help" in rt.ok("--help").stdout and "create" in rt.ok("--help").stdout
    assert "--console-socket" in rt.ok("create", "--help").stdout


def test_version_and_features(rt):
    for flag in ("--version", "-v"):
        lines = call(flag).stdout.splitlines()
        assert lines[0].startswith("pyrunc version ")
        assert lines[1].startswith("commit: ")
        assert lines[2].startswith("spec: 1.2.")
    features = json.loads(rt.ok("features").stdout)
    assert features["ociVersionMin"] == "1.0.0"
    assert features["hooks"] == ["prestart", "createRuntime", "createContainer",
                                 "startContainer", "poststart", "poststop"]
    assert "rbind" in features["mountOptions"]
    assert "CAP_SYS_ADMIN" in features["linux"]["capabilities"]
    assert set(features["linux"]["namespaces"]) >= {"pid", "network", "mount", "user"}
    assert features["linux"]["cgroup"]["v1"] or features["linux"]["cgroup"]["v2"]


def test_spec_command(tmp_path):
    r = call("spec", "--bundle", str(tmp_path))
    assert r.returncode == 0
    spec = json.loads((tmp_path / "config.json").read_text())
    assert spec["root"] == {"path": "rootfs", "readonly": True}
    assert spec["process"]["args"] == ["sh"] and spec["process"]["terminal"] is True
    r = call("spec", "--bundle", str(tmp_path))
    assert r.returncode == 1 and "exists" in r.stderr
    rootless = tmp_path / "rootless"
    rootless.mkdir()
    call("spec", "--rootless", "--bundle", str(rootless))
    spec = json.loads((rootless / "config.json").read_text())
    assert {"type": "user"} in spec["linux"]["namespaces"]


def test_hot_paths_import_neither_pyroute2_nor_click(rt):
    cid, bundle = rt.bundle(("sleep", "100"))
    rt.ok("create", "--bundle", bundle, cid)
    for args in (["state", cid], ["list"], ["start", cid], ["kill", cid, "KILL"]):
        p = subprocess.run([os.path.join(BIN, "python"), "-X", "importtime", PYRUNC,
                            "--root", rt.root, *args], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        assert p.returncode == 0, (args, p.stderr[-500:])
        imported = {line.split("|")[-1].strip() for line in p.stderr.splitlines()
                    if line.startswith("import time:")}
        assert "pyroute2" not in imported, args
        assert "click" not in imported, args


# --------------------------------------------------------------------------
# OCI hooks
# --------------------------------------------------------------------------

HOOK_SCRIPT = """#!/bin/sh
cat > {out}/$1.json
echo $1 >> {out}/order
exit ${{2:-0}}
"""


def _hooked(rt, tmp_path, hooks, annotations=None):
    out = tmp_path / "hooks"
    out.mkdir(exist_ok=True)
    script = tmp_path / "hook.sh"
    script.write_text(HOOK_SCRIPT.format(out=out))
    script.chmod(0o755)

    def edit(spec):
        spec["hooks"] = hooks(str(script))
        spec["annotations"] = annotations or {}
        # the hooks dir is visible inside too, for startContainer
        spec["mounts"].append({"destination": "/hooks", "type": "bind", "source": str(out),
                               "options": ["rbind", "rw"]})
    cid, bundle = rt.bundle(("sleep", "100"), edit=edit)
    return cid, bundle, out


def test_oci_hooks_run_in_order_with_the_state(rt, tmp_path):
    def hooks(script):
        h = {name: [{"path": script, "args": ["hook", name], "timeout": 10}]
             for name in ("prestart", "createRuntime", "createContainer", "poststart",
                          "poststop")}
        # in the container, after pivot_root: a path inside the rootfs
        h["startContainer"] = [{"path": "/bin/sh", "args": [
            "sh", "-c", "cat > /hooks/startContainer.json; echo startContainer >> /hooks/order"]}]
        return h
    cid, bundle, out = _hooked(rt, tmp_path, hooks, {"org.example/k": "v"})
    rt.ok("create", "--bundle", bundle, cid)
    assert (out / "order").read_text().split() == ["prestart", "createRuntime",
                                                   "createContainer"]
    pid = rt.state(cid)["pid"]
    rt.ok("start", cid)
    deadline = time.monotonic() + 10
    while "poststart" not in (out / "order").read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    order = (out / "order").read_text().split()
    assert order[:3] == ["prestart", "createRuntime", "createContainer"]
    assert sorted(order[3:]) == ["poststart", "startContainer"]
    rt.ok("delete", "--force", cid)
    assert (out / "order").read_text().split()[-1] == "poststop"

    states = {name: json.loads((out / f"{name}.json").read_text()) for name in
              ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
               "poststop")}
    for name, st in states.items():
        assert st["id"] == cid and st["bundle"] == bundle, name
        assert st["annotations"] == {"org.example/k": "v"}, name
    assert [states[n]["status"] for n in ("prestart", "createRuntime", "createContainer",
                                          "startContainer", "poststart", "poststop")] == \
        ["creating", "creating", "creating", "created", "running", "stopped"]
    for name in ("prestart", "createRuntime", "createContainer", "poststart"):
        assert states[name]["pid"] == pid, name


def test_failing_hook_fails_create_and_leaves_nothing(rt, tmp_path):
    cid, bundle, out = _hooked(rt, tmp_path, lambda s: {
        "prestart": [{"path": s, "args": ["hook", "prestart", "3"]}],
        "poststop": [{"path": s, "args": ["hook", "poststop"]}]})
    r = rt("create", "--bundle", bundle, cid)
    assert r.returncode == 1
    assert r.stderr.startswith("pyrunc: hooks.prestart[0]: ")
    assert "exit status 3" in r.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert not os.path.exists(f"/sys/fs/cgroup/pids/{cid}")
    assert (out / "order").read_text().split() == ["prestart", "poststop"]

    cid, bundle, out = _hooked(rt, tmp_path, lambda s: {
        "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]})
    r = rt("create", "--bundle", bundle, cid)
    assert r.returncode == 1 and "hooks.createRuntime[0]: /bin/sleep timed out after 1s" in \
        r.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_failing_poststart_fails_start_and_kills_the_container(rt, tmp_path):
    cid, bundle, out = _hooked(rt, tmp_path, lambda s: {
        "poststart": [{"path": s, "args": ["hook", "poststart", "1"]}]})
    rt.ok("create", "--bundle", bundle, cid)
    r = rt("start", cid)
    assert r.returncode == 1 and "hooks.poststart[0]" in r.stderr
    assert rt.wait_status(cid, "stopped") == "stopped"


def test_failing_poststop_only_warns(rt, tmp_path):
    cid, bundle, out = _hooked(rt, tmp_path, lambda s: {
        "poststop": [{"path": s, "args": ["hook", "poststop", "1"]}]})
    rt.ok("create", "--bundle", bundle, cid)
    r = rt.ok("delete", "--force", cid)
    assert "hooks.poststop[0]" in r.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))


# --------------------------------------------------------------------------
# terminals
# --------------------------------------------------------------------------

def _console_socket(tmp_path):
    path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(30)
    return srv, path


def _receive_master(srv):
    conn, _ = srv.accept()
    with conn:
        msg, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    assert len(fds) == 1
    return fds[0]


def test_console_socket_receives_the_pty_master(rt, tmp_path):
    cid, bundle = rt.bundle(("sh", "-c", "tty; [ -t 0 ] && echo stdin-is-a-tty; sleep 0.2"),
                            edit=lambda s: s["process"].update(terminal=True))
    r = rt("create", "--bundle", bundle, cid)
    assert r.returncode == 1 and "--console-socket" in r.stderr     # runc refuses too
    srv, path = _console_socket(tmp_path)
    with srv:
        create = subprocess.Popen([PYRUNC, "--root", rt.root, "create", "--bundle", bundle,
                                   "--console-socket", path, cid], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        master = _receive_master(srv)
        assert create.wait(timeout=30) == 0
    try:
        rt.ok("start", cid)
        out = read_pty(master, timeout=20)
    finally:
        os.close(master)
    assert "/dev/pts/0" in out and "stdin-is-a-tty" in out


def test_exec_tty_with_console_socket_and_attached_run_tty(rt, tmp_path):
    cid, _ = rt.running()
    srv, path = _console_socket(tmp_path)
    with srv:
        ex = subprocess.Popen([PYRUNC, "--root", rt.root, "exec", "-t", "-d", "--console-socket",
                               path, cid, "sh", "-c", "tty; echo exec-tty"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        master = _receive_master(srv)
        assert ex.wait(timeout=30) == 0
    try:
        out = read_pty(master, timeout=20)
    finally:
        os.close(master)
    assert "/dev/pts/" in out and "exec-tty" in out

    # attached run with a terminal and no socket: the runtime copies the pty
    cid, bundle = rt.bundle(("sh", "-c", "tty; exit 4"),
                            edit=lambda s: s["process"].update(terminal=True))
    p = subprocess.run([PYRUNC, "--root", rt.root, "run", "--bundle", bundle, cid],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert p.returncode == 4
    assert "/dev/pts/0" in p.stdout


def test_attached_run_on_a_terminal_is_raw_and_follows_its_size(rt, tmp_path):
    import fcntl
    import struct
    import termios
    cid, bundle = rt.bundle(("sh", "-c", "stty size; tty; read x; echo got:$x"),
                            edit=lambda s: s["process"].update(terminal=True))
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    run = subprocess.Popen([PYRUNC, "--root", rt.root, "run", "--bundle", bundle, cid],
                           stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        seen = b""
        import select
        deadline = time.monotonic() + 30
        while b"/dev/pts/0" not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                seen += os.read(master, 4096)
        os.write(master, b"hello\r")
        seen += read_pty(master, timeout=20).encode()
    finally:
        os.close(master)
    assert run.wait(timeout=30) == 0
    lines = seen.decode().split("\r\n")
    assert lines[:2] == ["30 100", "/dev/pts/0"]
    # our terminal was raw: the input is echoed once, by the container's pty
    assert lines[2:4] == ["hello", "got:hello"]


# --------------------------------------------------------------------------
# the same shapes as runc
# --------------------------------------------------------------------------

def test_state_list_ps_have_runc_shapes(rt, tmp_path):
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed (make apt installs it)")
    runc_root = str(tmp_path / "runc-state")
    cid, bundle = rt.bundle(("sleep", "100"))
    theirs = unique()

    def runc_call(*args):
        with tempfile.TemporaryFile("w+") as out:
            p = subprocess.run([runc, "--root", runc_root, *args], stdout=out,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=60)
            out.seek(0)
            return p.returncode, out.read()
    spec_path = os.path.join(bundle, "config.json")
    runc_bundle = tmp_path / theirs
    runc_bundle.mkdir()
    spec = json.loads(open(spec_path).read())
    spec["linux"]["cgroupsPath"] = f"/{theirs}"
    spec["root"]["path"] = rt.rootfs        # runc refuses a symlink
    (runc_bundle / "config.json").write_text(json.dumps(spec))
    try:
        rc, out = runc_call("create", "--bundle", str(runc_bundle), theirs)
        if rc != 0:
            pytest.skip(f"runc cannot run a container here: {out.strip()}")
        rt.ok("create", "--bundle", bundle, cid)
        mine_state = rt.state(cid)
        rc, out = runc_call("state", theirs)
        runc_state = json.loads(out)
        assert set(mine_state) == set(runc_state)
        assert {k: type(v) for k, v in mine_state.items()} == \
            {k: type(v) for k, v in runc_state.items()}
        assert mine_state["status"] == runc_state["status"] == "created"

        mine_list = json.loads(rt.ok("list", "--format", "json").stdout)
        runc_list = json.loads(runc_call("list", "--format", "json")[1])
        assert set(mine_list[0]) == set(runc_list[0])
        assert rt.ok("list").stdout.split()[:6] == runc_call("list")[1].split()[:6]

        runc_call("start", theirs)
        rt.ok("start", cid)
        mine_ps = json.loads(rt.ok("ps", "--format", "json", cid).stdout)
        runc_ps = json.loads(runc_call("ps", "--format", "json", theirs)[1])
        assert [type(p) for p in mine_ps] == [type(p) for p in runc_ps] == [int]
        assert rt.ok("ps", cid).stdout.splitlines()[0] == \
            runc_call("ps", theirs)[1].splitlines()[0]

        # the same errors, as clients match them
        runc_call("kill", theirs, "KILL")
        rt.ok("kill", cid, "KILL")
        rt.wait_status(cid, "stopped")
        for _ in range(200):
            if json.loads(runc_call("state", theirs)[1])["status"] == "stopped":
                break
            time.sleep(0.02)
        assert "container not running" in runc_call("kill", theirs, "KILL")[1]
        assert "container not running" in rt("kill", cid, "KILL").stderr
        assert "does not exist" in runc_call("state", unique())[1]
        assert "does not exist" in rt("state", unique()).stderr
    finally:
        runc_call("delete", "--force", theirs)


# --------------------------------------------------------------------------
# real clients
# --------------------------------------------------------------------------

def _need(*binaries):
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: run 'make test-clients'")


def _rmdir_cgroup(path):
    """Remove an (empty) cgroup directory tree in every hierarchy."""
    bases = ["/sys/fs/cgroup"] + [os.path.join("/sys/fs/cgroup", d)
                                  for d in os.listdir("/sys/fs/cgroup")]
    for base in bases:
        top = os.path.join(base, path.strip("/"))
        if not os.path.isdir(top) or not os.path.ismount(base) and base != "/sys/fs/cgroup":
            continue
        for current, dirs, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(current)
            except OSError:
                pass


class Podman:
    def __init__(self, tmp_path, rootfs):
        self.dir = tmp_path / "podman"
        self.dir.mkdir()
        self.parent = f"/{unique('podman')}"
        self.state = self.dir / "pyrunc-state"
        # podman never passes --root: pin the runtime's state into tmp
        self.runtime = self.dir / "pyrunc"
        self.runtime.write_text(f'#!/bin/sh\nexec {PYRUNC} --root {self.state} "$@"\n')
        self.runtime.chmod(0o755)
        nofile = os.sysconf("SC_OPEN_MAX")
        import resource
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        nproc = min(nproc if nproc != resource.RLIM_INFINITY else 32768, 32768)
        # podman's default rlimits for root (1048576) need CAP_SYS_RESOURCE
        (self.dir / "containers.conf").write_text(
            "[containers]\n"
            'netns = "none"\n'
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            "[network]\n"
            f'network_config_dir = "{self.dir / "networks"}"\n'
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "none"\n')
        # whatever --root says, image copies write a blob cache in /var/lib/containers
        # and the network backend makes its run dir: removed if we made them
        self.made = [d for d in ("/var/lib/containers", "/run/containers")
                     if not os.path.exists(d)]
        self.env = dict(os.environ, CONTAINERS_CONF=str(self.dir / "containers.conf"),
                        HOME=str(self.dir / "home"))
        self.base = ["podman", "--root", str(self.dir / "root"), "--runroot",
                     str(self.dir / "run"), "--tmpdir", str(self.dir / "tmp"),
                     "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                     "--runtime", str(self.runtime)]
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        p = subprocess.run(self.base + ["import", "-", "lct-busybox"], stdin=tar.stdout,
                           capture_output=True, text=True, env=self.env, timeout=120)
        tar.wait()
        assert p.returncode == 0, p.stderr

    def __call__(self, *args, timeout=60):
        cmd = self.base + list(args)
        if args and args[0] in ("run", "create"):
            cmd[len(self.base) + 1:len(self.base) + 1] = [f"--cgroup-parent={self.parent}"]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env,
                              stdin=subprocess.DEVNULL, timeout=timeout)

    def close(self):
        self("rm", "--all", "--force", "--time", "0")
        self("rmi", "--all", "--force")
        if self.state.is_dir():
            for cid in os.listdir(self.state):
                call("--root", str(self.state), "delete", "--force", cid)
        _rmdir_cgroup(self.parent)
        shutil.rmtree(self.dir, ignore_errors=True)
        for d in self.made:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def podman(tmp_path_factory, rootfs):
    _need("podman", "conmon")
    pm = Podman(tmp_path_factory.mktemp("pm"), rootfs)
    yield pm
    pm.close()


def _cgroup_file(pid, controller, name):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(",") or (ctrls == "" and controller == ""):
                return os.path.join("/sys/fs/cgroup", controller, path.lstrip("/"), name)
    return None


@pytest.mark.clients
def test_podman_run_and_exit_codes(podman):
    p = podman("run", "--rm", "lct-busybox", "echo", "hello from podman")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello from podman\n"
    assert podman("run", "--rm", "lct-busybox", "sh", "-c", "exit 7").returncode == 7
    p = podman("run", "--rm", "-t", "lct-busybox", "tty")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "/dev/pts/0"


@pytest.mark.clients
def test_podman_detached_exec_top_stats_pause_stop(podman):
    name = unique("pm")
    p = podman("run", "-d", "--name", name, "--memory", "64m", "lct-busybox", "sleep", "1000")
    assert p.returncode == 0, p.stderr
    try:
        p = podman("exec", name, "sh", "-c", "echo exec-ok; exit 3")
        assert (p.returncode, p.stdout) == (3, "exec-ok\n")
        p = podman("exec", "-t", name, "tty")
        assert p.returncode == 0 and p.stdout.strip().startswith("/dev/pts/"), p.stderr
        p = podman("top", name)
        assert p.returncode == 0 and "sleep 1000" in p.stdout, p.stderr
        pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout)
        limit = _cgroup_file(pid, "memory", "memory.limit_in_bytes")
        if limit and os.path.exists(limit):
            assert int(open(limit).read()) == 64 << 20
        else:
            assert int(open(_cgroup_file(pid, "", "memory.max")).read()) == 64 << 20
        p = podman("stats", "--no-stream", "--format", "{{.MemUsage}}", name)
        assert p.returncode == 0 and "67.11MB" in p.stdout, (p.stdout, p.stderr)
        assert podman("pause", name).returncode == 0
        assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == \
            "paused"
        assert podman("unpause", name).returncode == 0
        assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == \
            "running"
        p = podman("stop", "-t", "1", name)
        assert p.returncode == 0, p.stderr
        assert podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == \
            "137"
    finally:
        podman("rm", "-f", name)


@pytest.mark.clients
def test_podman_non_root_user(podman):
    """`-u` (or an image's USER line): the process runs as that user with
    exactly its groups, with and without a terminal. (podman itself refuses
    a `-w` that the image lacks, whatever the runtime: a missing cwd is
    tested against pyrunc directly, test_missing_cwd_is_created_as_runc.)"""
    p = podman("run", "--rm", "-u", "1000:1000", "-w", "/tmp", "lct-busybox",
               "sh", "-c", "id -u; id -g; id -G; pwd; touch ok && echo wrote")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["1000", "1000", "1000", "/tmp", "wrote"]
    p = podman("run", "--rm", "-t", "-u", "1000:1000", "lct-busybox", "sh", "-c", "id -u; tty")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[0] == "1000" and p.stdout.split()[1].startswith("/dev/pts/")


class Containerd:
    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.ns = unique("ctd")
        self.sock = str(tmp_path / "containerd.sock")
        self.had_run_dir = os.path.exists("/run/containerd")
        config = tmp_path / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{tmp_path}/root"\n'
            f'state = "{tmp_path}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri", '
            '"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", '
            '"io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", '
            '"io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]\n'
            f'[grpc]\n  address = "{self.sock}"\n'
            f'[ttrpc]\n  address = "{self.sock}.ttrpc"\n'
            '[debug]\n  address = ""\n[metrics]\n  address = ""\n')
        self.log = open(tmp_path / "containerd.log", "w")
        self.proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            assert self.proc.poll() is None, open(tmp_path / "containerd.log").read()[-2000:]
            assert time.monotonic() < deadline, "containerd did not start"
            time.sleep(0.05)
        self.rootfs = tmp_path / "rootfs"

    def ctr(self, *args, timeout=60):
        return subprocess.run(["ctr", "--address", self.sock, "-n", self.ns, *args],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=timeout)

    def run(self, flags, cid, *cmd):
        return self.ctr("run", "--runc-binary", PYRUNC, "--env", "PATH=/bin:/sbin:/usr/bin",
                        *flags, "--rootfs", str(self.rootfs), cid, *cmd)

    def close(self):
        for task in self.ctr("task", "ls", "-q").stdout.split():
            self.ctr("task", "kill", "-s", "SIGKILL", task)
            self.ctr("task", "rm", "-f", task)
        for c in self.ctr("containers", "ls", "-q").stdout.split():
            self.ctr("containers", "rm", c)
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()
        # the shim's runc root (the namespace's), and cgroup parent
        state = f"/run/containerd/runc/{self.ns}"
        if os.path.isdir(state):
            for cid in os.listdir(state):
                call("--root", state, "delete", "--force", cid)
            os.rmdir(state)
        _rmdir_cgroup(f"/{self.ns}")
        if not self.had_run_dir:
            shutil.rmtree("/run/containerd", ignore_errors=True)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory, rootfs):
    _need("containerd", "ctr", "containerd-shim-runc-v2")
    path = tmp_path_factory.mktemp("ctd")
    # before containerd starts (a failed copy leaves no daemon), and never a
    # device node a test left in the rootfs (copying /dev/full fills the disk)
    copy_rootfs(rootfs, path / "rootfs")
    ctd = Containerd(path)
    yield ctd
    ctd.close()


@pytest.mark.clients
def test_containerd_run_exec_kill(containerd):
    p = containerd.run(["--rm"], unique("c"), "sh", "-c", "echo hello from ctr; exit 4")
    assert p.returncode == 4, p.stderr
    assert p.stdout == "hello from ctr\n"

    cid = unique("c")
    p = containerd.run(["-d"], cid, "sleep", "1000")
    assert p.returncode == 0, p.stderr
    p = containerd.ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo in-task; exit 6")
    assert (p.returncode, p.stdout) == (6, "in-task\n"), p.stderr
    p = containerd.ctr("task", "ps", cid)
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 2, p.stderr
    assert containerd.ctr("task", "pause", cid).returncode == 0
    assert "PAUSED" in containerd.ctr("task", "ls").stdout
    assert containerd.ctr("task", "resume", cid).returncode == 0
    assert containerd.ctr("task", "kill", "-s", "SIGKILL", cid).returncode == 0
    deadline = time.monotonic() + 20
    while "STOPPED" not in containerd.ctr("task", "ls").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "STOPPED" in containerd.ctr("task", "ls").stdout
    assert containerd.ctr("task", "rm", cid).returncode == 0
    assert containerd.ctr("containers", "rm", cid).returncode == 0
