"""pyrunc's command line as scripts see it, next to runc's: the real binary
driven through bash (`out=$(pyrunc ...)`, `$?`), with the same script run
against runc wherever both can run. Then the attacks of issue 15 on the
command line and the state root."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

import libcontainer
from libcontainer import configs
from libcontainer.errors import ConfigError, LibcontainerError

from conftest import BIN, gone, unique

PYRUNC = os.path.join(BIN, "pyrunc")
RUNC = shutil.which("runc")


def bash(script, env=None, timeout=60):
    """(exit status, stdout, stderr) of a bash script; output through files:
    a created container keeps the runtime's stdio open."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(["bash", "-c", script], stdout=out, stderr=err, timeout=timeout,
                           stdin=subprocess.DEVNULL, text=True,
                           env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}",
                                **(env or {})})
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read()


class Runtime:
    """One runtime (pyrunc or runc) with its own root, and one bundle whose
    container runs `sleep 100`. Scripts see $RT (the runtime with --root),
    $C (a container id) and $B (the bundle)."""

    def __init__(self, binary, tmp, rootfs):
        self.binary = binary
        self.name = os.path.basename(binary)
        self.root = str(tmp / f"{self.name}-state")
        self.cid = unique(self.name)
        self.bundle = tmp / self.cid
        self.bundle.mkdir()
        rc, _, err = bash(f"cd {self.bundle} && {PYRUNC} spec")
        assert rc == 0, err
        spec = json.loads((self.bundle / "config.json").read_text())
        spec["process"].update(terminal=False, args=["sleep", "100"])
        spec["root"]["path"] = rootfs       # runc refuses a symlinked root
        spec["linux"]["cgroupsPath"] = f"/{self.cid}"
        (self.bundle / "config.json").write_text(json.dumps(spec))

    def __call__(self, script, **kw):
        env = {"RT": f"{self.binary} --root {self.root}", "C": self.cid, "B": str(self.bundle)}
        return bash(script, env={**env, **kw.pop("env", {})}, **kw)

    def up(self):
        rc, out, err = self('$RT create --bundle "$B" "$C" >/dev/null 2>&1 </dev/null; '
                            'echo create=$?; $RT start "$C"; echo start=$?')
        if self.name == "runc" and "create=0" not in out:
            pytest.skip(f"runc cannot run a container here: {err.strip()}")
        assert out.split() == ["create=0", "start=0"], err
        return self

    def init_pid(self):
        return json.loads(self('$RT state "$C"')[1])["pid"]

    def down(self):
        self('$RT delete --force "$C"')


@pytest.fixture
def pyrunc(tmp_path, rootfs):
    rt = Runtime(PYRUNC, tmp_path, rootfs)
    yield rt
    rt.down()
    assert not os.listdir(rt.root) if os.path.isdir(rt.root) else True


@pytest.fixture
def runc(tmp_path, rootfs):
    if RUNC is None:
        pytest.skip("runc is not installed (make apt installs it)")
    rt = Runtime(RUNC, tmp_path, rootfs)
    yield rt
    rt.down()



def codes(out):
    """'name=N' words of a script's output -> {name: N}."""
    return dict(w.split("=", 1) for w in out.split() if re.fullmatch(r"[\w-]+=-?\d+", w))


# --------------------------------------------------------------------------
# help
# --------------------------------------------------------------------------

def headers(text):
    return [line for line in text.splitlines() if re.fullmatch(r"[A-Z ]+:", line)]


def commands(text):
    lines = text.split("COMMANDS:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [line.split()[0].rstrip(",") for line in lines]


def test_help_has_runcs_layout_and_order():
    mine = bash("pyrunc -h; echo rc=$?")[1]
    assert headers(mine) == ["NAME:", "USAGE:", "VERSION:", "COMMANDS:", "GLOBAL OPTIONS:"]
    assert mine.splitlines()[1].startswith("   pyrunc - ")
    if RUNC:
        theirs = bash("runc -h")[1]
        assert headers(mine) == headers(theirs)
        assert commands(mine) == commands(theirs)
        assert codes(mine)["rc"] == "0"
    # a command: NAME, USAGE, DESCRIPTION, OPTIONS, as `runc create -h`
    mine = bash("pyrunc create -h")[1]
    assert headers(mine) == ["NAME:", "USAGE:", "DESCRIPTION:", "OPTIONS:"]
    assert mine.splitlines()[1].startswith("   pyrunc create - ")
    assert "   pyrunc create [command options] " in mine
    assert re.search(r"^   --bundle value, -b value +\S", mine, re.M)
    assert re.search(r"^   --no-pivot +\S", mine, re.M)
    if RUNC:
        assert headers(bash("runc create -h")[1]) == headers(mine)
    assert bash("pyrunc help kill")[1] == bash("pyrunc kill --help")[1]
    assert bash("pyrunc")[0] == 0 and "COMMANDS:" in bash("pyrunc")[1]


@pytest.mark.parametrize("argv", ["foo -h", "help foo", "foo"])
def test_no_help_topic(argv):
    rc, out, err = bash(f"pyrunc {argv}")
    assert (rc, out, err) == (3, "", "pyrunc: No help topic for 'foo'\n")
    if RUNC:
        rc, _, err = bash(f"runc {argv}")
        assert rc == 3 and "No help topic for 'foo'" in err


# --------------------------------------------------------------------------
# kill and spec
# --------------------------------------------------------------------------

KILL_SCRIPT = """
$RT kill "$C" 0; echo alive=$?
$RT kill "$C" 65; echo bad-number=$?
$RT kill "$C" 0x; echo bad-name=$?
$RT kill "$C" KILL; echo kill=$?
for i in $(seq 200); do
    [ "$($RT state "$C" | grep -c '"stopped"')" = 1 ] && break; sleep 0.05
done
$RT kill "$C" 0; echo stopped-0=$?
$RT kill --all "$C" KILL; echo stopped-all=$?
$RT kill "$C" KILL; echo stopped-kill=$?
"""


def test_kill_any_number_and_all_of_a_stopped_container(pyrunc, runc):
    rc, out, err = pyrunc.up()(KILL_SCRIPT)
    mine = codes(out)
    assert mine == {"alive": "0", "bad-number": "1", "bad-name": "1", "kill": "0",
                    "stopped-0": "1", "stopped-all": "0", "stopped-kill": "1"}, err
    assert "pyrunc: unable to signal init: Invalid argument" in err
    assert err.count("container not running") == 2
    assert codes(runc.up()(KILL_SCRIPT)[1]) == mine


def test_spec_adds_a_cgroup_namespace_only_on_cgroup_v2(tmp_path):
    # /sys/fs/cgroup is a tmpfs on a hybrid host: its type, not its path, tells
    v2 = bash("stat -f -c %T /sys/fs/cgroup")[1].strip() == "cgroup2fs"
    mine = tmp_path / "mine"
    mine.mkdir()
    assert bash(f"cd {mine} && pyrunc spec")[0] == 0
    spec = json.loads((mine / "config.json").read_text())
    assert ({"type": "cgroup"} in spec["linux"]["namespaces"]) == v2
    if RUNC:
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        bash(f"cd {theirs} && runc spec")
        runc_spec = json.loads((theirs / "config.json").read_text())
        assert ({"type": "cgroup"} in runc_spec["linux"]["namespaces"]) == v2


# --------------------------------------------------------------------------
# exec
# --------------------------------------------------------------------------

EXEC_SCRIPT = """
$RT exec "$C" sh -c 'exit 7'; echo status=$?
$RT exec "$C" /no/such/program; echo missing=$?
$RT exec --pid-file /no/such/dir/pid "$C" true; echo pid-file=$?
$RT exec no-such-container true; echo unknown=$?
$RT exec --cgroup ../x "$C" true; echo cgroup-dotdot=$?
$RT exec --cgroup nosuchctl:/x "$C" true; echo cgroup-controller=$?
$RT exec; echo usage=$?
$RT pause "$C"; $RT exec "$C" true; echo paused=$?; $RT resume "$C"
$RT kill "$C" KILL
for i in $(seq 200); do
    [ "$($RT state "$C" | grep -c '"stopped"')" = 1 ] && break; sleep 0.05
done
$RT exec "$C" true; echo stopped=$?
"""


def test_exec_exit_status_as_runc(pyrunc, runc):
    rc, out, err = pyrunc.up()(EXEC_SCRIPT)
    mine = codes(out)
    assert mine == {"status": "7", "missing": "255", "pid-file": "255", "unknown": "255",
                    "cgroup-dotdot": "255", "cgroup-controller": "255", "usage": "1",
                    "paused": "255", "stopped": "255"}, err
    lines = err.splitlines()
    assert all(line.startswith("pyrunc: ") for line in lines), err
    assert "pyrunc: exec failed: cannot exec in a paused container (use --ignore-paused " \
           "to override)" in lines
    assert "pyrunc: exec failed: cannot exec in a stopped container" in lines
    assert any(re.search("not a sub.cgroup path", line) for line in lines), lines
    assert any("unknown controller 'nosuchctl'" in line for line in lines)
    assert codes(runc.up()(EXEC_SCRIPT)[1]) == mine


def test_exec_ignore_paused_waits_frozen_until_resume(pyrunc):
    pyrunc.up()
    pid = pyrunc.init_pid()
    marker = f"/proc/{pid}/root/dev/shm/ran"
    assert pyrunc('$RT pause "$C"')[0] == 0
    # as runc: exec returns once the process could run, i.e. after resume
    script = ('$RT exec --ignore-paused -d --pid-file "$B/exec.pid" "$C" '
              'sh -c "echo ran > /dev/shm/ran; exec sleep 50"; echo exec=$?')
    env = {"RT": f"{PYRUNC} --root {pyrunc.root}", "C": pyrunc.cid, "B": str(pyrunc.bundle)}
    with tempfile.TemporaryFile("w+") as out:
        waiting = subprocess.Popen(["bash", "-c", script], stdout=out, stderr=out,
                                   stdin=subprocess.DEVNULL, env={**os.environ, **env})
        try:
            # the process being set up joined the frozen cgroup: two pids
            for _ in range(400):
                pids = json.loads(pyrunc('$RT ps --format json "$C"')[1] or "[]")
                if len(pids) == 2:
                    break
                subprocess.run(["sleep", "0.05"])
            assert len(pids) == 2
            assert json.loads(pyrunc('$RT state "$C"')[1])["status"] == "paused"
            assert waiting.poll() is None and not os.path.exists(marker)
            assert pyrunc('$RT resume "$C"')[0] == 0
            assert waiting.wait(timeout=30) == 0
        finally:
            if waiting.poll() is None:
                pyrunc('$RT resume "$C"')
                waiting.wait(timeout=30)
        out.seek(0)
        assert "exec=0" in out.read()
    assert open(marker).read() == "ran\n"
    exec_pid = int((pyrunc.bundle / "exec.pid").read_text())
    assert exec_pid in json.loads(pyrunc('$RT ps --format json "$C"')[1])


def _cgroup_line(text, controller):
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def test_exec_cgroup_puts_the_process_in_a_sub_cgroup(pyrunc):
    pyrunc.up()
    with open(f"/proc/{pyrunc.init_pid()}/cgroup") as f:
        init_cgroups = f.read()
    v2 = _cgroup_line(init_cgroups, "pids") is None
    controller = "" if v2 else "pids"
    base = _cgroup_line(init_cgroups, controller)
    assert base.endswith(f"/{pyrunc.cid}")
    mount = "/sys/fs/cgroup" if v2 else "/sys/fs/cgroup/pids"
    os.mkdir(f"{mount}{base}/sub")         # removed with the container's cgroup
    arg = "/sub" if v2 else "pids:/sub"
    rc, out, err = pyrunc(f'$RT exec -d --pid-file "$B/exec.pid" --cgroup {arg} "$C" '
                          f'sleep 50')
    assert rc == 0, err
    with open(f"/proc/{int((pyrunc.bundle / 'exec.pid').read_text())}/cgroup") as f:
        joined = f.read()       # the host's view (a cgroup namespace hides the base)
    assert _cgroup_line(joined, controller) == f"{base}/sub"
    if not v2:      # the other controllers: the container's own cgroup
        assert _cgroup_line(joined, "memory") == _cgroup_line(init_cgroups, "memory")
    rc, out, err = pyrunc('$RT exec --cgroup pids:/missing "$C" true')
    assert rc == 255 and "missing" in err


def test_exec_apparmor_and_process_label_are_never_dropped(pyrunc):
    """Accepted and ignored before; now handed to the lsm plugin, which
    applies them or refuses (on a host without AppArmor/SELinux)."""
    pyrunc.up()
    for flag, lsm, probe in (("--apparmor", "AppArmor", "/sys/kernel/security/apparmor"),
                             ("--process-label", "SELinux", "/sys/fs/selinux")):
        if os.path.exists(probe):
            continue        # enabled: the lsm plugin's own tests cover applying it
        rc, out, err = pyrunc(f'$RT exec {flag} lct-no-such-label "$C" true')
        assert rc == 255 and lsm in err and len(err.splitlines()) == 1, err


# --------------------------------------------------------------------------
# logs
# --------------------------------------------------------------------------

LOGFMT = re.compile(r'time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=(debug|info|warning|error) '
                    r'msg=("([^"\\]|\\.)*"|\S+)( [\w.-]+=("([^"\\]|\\.)*"|\S+))*')


def test_debug_log_text_and_json_as_runc(pyrunc):
    log = pyrunc.bundle / "log.txt"
    rc, out, err = pyrunc(f'$RT --debug --log {log} create --bundle "$B" "$C" '
                          f'>/dev/null 2>"$B/err" </dev/null; echo rc=$?')
    assert codes(out)["rc"] == "0" and (pyrunc.bundle / "err").read_text() == ""
    lines = log.read_text().splitlines()
    assert all(LOGFMT.fullmatch(line) for line in lines), lines
    msgs = [re.search(r'msg=("(?:[^"\\]|\\.)*"|\S+)', line)[1].strip('"') for line in lines]
    assert {"config validated", "spawning the init", "init set up"} <= set(msgs), msgs
    assert all(" level=debug " in line for line in lines)

    log = pyrunc.bundle / "log.json"
    rc, out, err = pyrunc(f'$RT --debug --log {log} --log-format json start "$C"; '
                          f'$RT --log {log} --log-format json kill "$C" 70000')
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert all(line.startswith("{") and ", " not in line.split('"msg"')[0] for line in lines)
    assert all(list(r) == sorted(r) and {"level", "msg", "time"} <= set(r) for r in records)
    assert "init released" in [r["msg"] for r in records]
    assert records[-1]["level"] == "error"
    assert records[-1]["msg"].startswith("unable to signal init")
    assert err.splitlines() == [f"pyrunc: {records[-1]['msg']}"]     # one line on stderr too


def test_log_file_is_opened_at_start(pyrunc, runc):
    for rt in (pyrunc, runc):
        log = rt.bundle / "quiet.log"
        assert rt(f"$RT --log {log} list")[0] == 0
        assert log.exists() and log.read_text() == "", rt.name


def test_hot_commands_import_neither_structlog_nor_pyroute2(pyrunc):
    rc, _, err = pyrunc('$RT create --bundle "$B" "$C" >/dev/null 2>&1 </dev/null')
    assert rc == 0, err
    for args in ('state "$C"', "list", 'start "$C"', 'kill "$C" 0', 'kill "$C" KILL'):
        rc, _, err = pyrunc(f"{BIN}/python -X importtime {PYRUNC} --root {pyrunc.root} {args}")
        assert rc == 0, (args, err[-300:])
        imported = {line.split("|")[-1].strip() for line in err.splitlines()
                    if line.startswith("import time:")}
        assert not imported & {"structlog", "pyroute2"}, args


# --------------------------------------------------------------------------
# issue 15: attacks through the command line and the state root
# --------------------------------------------------------------------------

def test_squatted_state_root_is_refused(pyrunc, tmp_path):
    """Another user owns the state root (a /tmp root made before us) and
    plants a container whose poststop hook our `delete` would run."""
    marker = tmp_path / "pwned"
    spec = json.loads((pyrunc.bundle / "config.json").read_text())
    spec["hooks"] = {"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}"]}]}
    (pyrunc.bundle / "config.json").write_text(json.dumps(spec))
    pyrunc('$RT create --bundle "$B" "$C" >/dev/null 2>&1 </dev/null; $RT kill "$C" KILL')
    assert oct(os.stat(pyrunc.root).st_mode & 0o777) == "0o700"     # made 0700
    os.chown(pyrunc.root, 65534, 65534)          # the planted root: someone else's
    try:
        for cmd in ('delete --force "$C"', 'state "$C"', "list"):
            rc, _, err = pyrunc(f"$RT {cmd}")
            assert rc == 1 and "owned by uid 65534" in err and "refusing" in err, (cmd, err)
        assert not marker.exists()
        os.chown(pyrunc.root, 0, 0)
        os.chmod(pyrunc.root, 0o777)            # ours, but anyone may plant there
        rc, _, err = pyrunc('$RT delete --force "$C"')
        assert rc == 1 and "not writable by group or others" in err
        assert not marker.exists()
    finally:
        os.chown(pyrunc.root, 0, 0)
        os.chmod(pyrunc.root, 0o700)
    assert pyrunc('$RT delete --force "$C"')[0] == 0
    assert marker.exists()          # our own root: our own hook runs


def test_sysctl_check_sees_the_netns_network(state_root, make_config):
    """The netns network sets the NEWNET path in validate_config: the sysctl
    plugin used to check before it (pluggy order) and wrote the host's
    net.* values. The host's current value is used: harmless either way."""
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        current = f.read().strip()
    config = make_config(sysctl={"net.ipv4.ip_forward": current},
                         networks=[configs.Network(type="netns",
                                                   path=f"/proc/{os.getpid()}/ns/net")])
    factory = libcontainer.new(state_root)
    with pytest.raises(ConfigError, match="joins the host's NEWNET namespace"):
        factory.create(unique(), config)
    assert not os.listdir(state_root) if os.path.isdir(state_root) else True


@pytest.mark.parametrize("plugin, edit", [
    ("seccomp", lambda s: s["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW",
                                                     "syscalls": [{"names": ["mkdir"],
                                                                   "action": "SCMP_ACT_ERRNO"}]})),
    ("capabilities", None),
    ("masked_paths", None),
    ("no_new_privs", None),
    ("cgroups", None),
])
def test_a_disabled_confinement_plugin_fails_closed(pyrunc, plugin, edit):
    """LIBCONTAINER_DISABLE_PLUGINS in a daemon's environment used to run
    the container without the disabled confinement."""
    spec = json.loads((pyrunc.bundle / "config.json").read_text())
    spec["process"]["args"] = ["true"]
    if edit:
        edit(spec)
    (pyrunc.bundle / "config.json").write_text(json.dumps(spec))
    rc, out, err = pyrunc('$RT run --bundle "$B" "$C" </dev/null; echo rc=$?',
                          env={"LIBCONTAINER_DISABLE_PLUGINS": plugin})
    assert codes(out)["rc"] == "1"
    assert f"plugin that applies it is disabled or not installed" in err
    assert f"'{plugin}'" in err and len(err.splitlines()) == 1, err
    assert not os.path.exists(os.path.join(pyrunc.root, pyrunc.cid))


def test_pid_file_temp_never_follows_a_planted_symlink(pyrunc, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    # the temp name holds the runtime's pid: `exec` keeps the shell's
    rc, out, err = pyrunc(f'ln -s {victim} {pid_dir}/.init.pid.$$; '
                          f'exec $RT create --bundle "$B" --pid-file {pid_dir}/init.pid "$C" '
                          f'>/dev/null </dev/null')
    assert rc == 1 and "File exists" in err, err
    assert victim.read_text() == "precious\n"
    assert not os.path.exists(os.path.join(pyrunc.root, pyrunc.cid))


def test_preserve_fds_beyond_the_callers_are_refused(pyrunc):
    """Only fd 3 is passed: fd 4 would be one the runtime opened itself."""
    spec = json.loads((pyrunc.bundle / "config.json").read_text())
    spec["process"]["args"] = ["sh", "-c", "ls -l /proc/self/fd/"]
    (pyrunc.bundle / "config.json").write_text(json.dumps(spec))
    rc, out, err = pyrunc('exec 3</dev/null; $RT run --preserve-fds 2 --bundle "$B" "$C" '
                          '</dev/null')
    assert rc == 1 and err == "pyrunc: --preserve-fds 2 (LISTEN_FDS=): fd 4 is not open " \
                              "in the caller\n"
    rc, out, err = pyrunc('exec 3</dev/null; $RT run --bundle "$B" "$C" </dev/null',
                          env={"LISTEN_FDS": "2"})
    assert rc == 1 and "fd 4 is not open in the caller" in err
    rc, out, err = pyrunc('exec 3</dev/null 4</dev/null; '
                          '$RT run --preserve-fds 2 --bundle "$B" "$C" </dev/null')
    assert rc == 0, err
    assert re.search(r" 3 -> /dev/null", out) and re.search(r" 4 -> /dev/null", out)


def test_ids_with_a_trailing_newline_are_refused(state_root, make_config, pyrunc):
    factory = libcontainer.new(state_root)
    for bad in ("abc\n", "abc\n\n"):
        with pytest.raises(LibcontainerError, match="invalid container id"):
            factory.create(bad, make_config())
    assert not os.path.isdir(state_root) or os.listdir(state_root) == []
    for cid, message in (("$'abc\\n'", "invalid container ID format"),
                         ("..", "invalid container ID format"),
                         ("a/b", "invalid container ID format"),
                         ("''", "container id cannot be empty")):
        rc, _, err = pyrunc(f"$RT state {cid}")
        assert rc == 1 and message in err, (cid, err)


def test_nsinit_refuses_a_squatted_root_too(tmp_path):
    root = tmp_path / "nsinit-root"
    root.mkdir(mode=0o700)
    os.chown(root, 65534, 65534)
    rc, out, err = bash(f"nsinit --root {root} list; echo rc=$?")
    assert codes(out)["rc"] == "1" and "owned by uid 65534" in err and "refusing" in err, err


def test_exec_with_a_disabled_confinement_plugin_fails_closed(pyrunc):
    """The container was made with its capabilities dropped; an exec whose
    environment disables the plugin used to join with every capability."""
    pyrunc.up()
    for plugin, flag in (("capabilities", ""), ("masked_paths", ""),
                         ("lsm", "--apparmor unconfined")):
        rc, out, err = pyrunc(f'$RT exec {flag} "$C" grep CapBnd /proc/self/status',
                              env={"LIBCONTAINER_DISABLE_PLUGINS": plugin})
        if plugin == "masked_paths":       # applied once, by the init: nothing to refuse
            assert rc == 0, err
            continue
        assert rc == 255 and f"'{plugin}' plugin" in err and len(err.splitlines()) == 1, err


def test_kill_all_of_a_stopped_container_reaches_its_cgroup(pyrunc, tmp_path):
    """Its init gone, a container joined to another's PID namespace keeps
    children in its cgroup: `kill --all` ends them (containerd's shim relies
    on it), as runc."""
    pyrunc.up()
    pod_init = pyrunc.init_pid()
    cid = unique("joined")
    bundle = tmp_path / cid
    bundle.mkdir()
    spec = json.loads((pyrunc.bundle / "config.json").read_text())
    spec["process"]["args"] = ["sh", "-c", "sleep 1001 & exec sleep 1002"]
    spec["linux"]["cgroupsPath"] = f"/{cid}"
    spec["linux"]["namespaces"] = [dict(ns, path=f"/proc/{pod_init}/ns/pid")
                                   if ns["type"] == "pid" else ns
                                   for ns in spec["linux"]["namespaces"]]
    (bundle / "config.json").write_text(json.dumps(spec))
    env = {"C2": cid, "B2": str(bundle)}
    try:
        rc, out, err = pyrunc('$RT run -d --bundle "$B2" "$C2" >/dev/null 2>&1 </dev/null; '
                              'echo run=$?', env=env)
        assert codes(out)["run"] == "0", err
        pids = []
        for _ in range(200):
            pids = json.loads(pyrunc('$RT ps --format json "$C2"', env=env)[1] or "[]")
            if len(pids) == 2:
                break
            subprocess.run(["sleep", "0.05"])
        assert len(pids) == 2
        state = json.loads(pyrunc('$RT state "$C2"', env=env)[1])
        os.kill(state["pid"], 9)
        for _ in range(200):
            if '"stopped"' in pyrunc('$RT state "$C2"', env=env)[1]:
                break
            subprocess.run(["sleep", "0.05"])
        left = [p for p in pids if p != state["pid"]]
        assert not gone(left[0])        # the child lives on
        rc, out, err = pyrunc('$RT kill --all "$C2" KILL; echo kill=$?', env=env)
        assert codes(out)["kill"] == "0", err
        for _ in range(200):
            if gone(left[0]):
                break
            subprocess.run(["sleep", "0.05"])
        assert gone(left[0])
    finally:
        pyrunc('$RT delete --force "$C2"', env=env)
