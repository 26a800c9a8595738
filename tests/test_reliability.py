"""Reliability: a runtime killed at any step, many runtimes at once, many runs
in a row, corrupt state and missing host resources. Failures must be boring:
a clear one-line error, a status that tells the truth, and afterwards nothing
left on the host -- no cgroup, mount, interface, state dir or process.

The fast variants run with ``make test``; the long ones are marked ``soak``
and run with ``make soak`` (``pytest -m soak``). Fault injection uses the
core's test hook: LIBCONTAINER_TEST_CRASH_AT=<point> makes the process that
reaches the point SIGKILL itself (core/spawn.py, core/container.py).
docs/reliability.md lists what is covered and the numbers reached.
"""
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import libcontainer
from libcontainer import configs
from libcontainer.linux import misc
from libcontainer.spawn import INIT_PHASES, JOIN_PHASES

from conftest import BIN, TOKEN, nsinit, unique

NAMESPACES = ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET", "NEWCGROUP"]
CRASH_ENV = "LIBCONTAINER_TEST_CRASH_AT"
PYTHON = os.path.realpath(sys.executable)


@pytest.fixture(autouse=True)
def _soak_only_when_asked(request):
    """`soak` tests run only when selected (make soak: pytest -m soak)."""
    if request.node.get_closest_marker("soak") and \
            "soak" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long run: make soak")


# --------------------------------------------------------------------------
# what the host looks like
# --------------------------------------------------------------------------

# What the tests made carries this run's token (cgroups, interfaces, marked
# processes) or lives under its temporary directory or the rootfs (mounts):
# other test runs share the host, so only that is compared.
_SCOPE = []


def _ours(name):
    return TOKEN in name or any(name.startswith(p) for p in _SCOPE)


def _cgroup_mounts():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            fstype = parts[parts.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                yield parts[4]


def mounted_controllers():
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            if parts[sep + 1] == "cgroup":
                out.update(parts[sep + 3].split(","))
    return out


def cgroup_dirs():
    out = set()
    for point in _cgroup_mounts():
        for path, dirs, _ in os.walk(point):
            dirs[:] = [d for d in dirs if d != "process_api"]
            if TOKEN in path:
                out.add(path)
    return out


def mount_points():
    with open("/proc/self/mountinfo") as f:
        return sorted(p for p in (line.split()[4] for line in f) if _ours(p))


def interfaces():
    return {n for n in os.listdir("/sys/class/net") if TOKEN in n}


def marked_processes():
    """Live processes whose command line carries this run's token: drivers,
    the CLIs (--id lct-...), container programs given a marker argument."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if TOKEN.encode() in cmdline and state not in (b"Z", b"X"):
            out.add(f"{entry}: {cmdline.replace(bytes(1), b' ').decode(errors='replace')}")
    return out


def own_zombies():
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == b"Z" and int(fields[1]) == os.getpid():
                out.append(int(entry))
    return out


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def snapshot():
    return {"cgroups": cgroup_dirs(), "mounts": mount_points(), "interfaces": interfaces(),
            "processes": marked_processes()}


def residue(before, after):
    out = {}
    for key in before:
        if key == "mounts":
            extra = list(after[key])
            for m in before[key]:
                if m in extra:
                    extra.remove(m)
            gone = [m for m in before[key] if m not in after[key]]
            changed = extra or gone
        else:
            changed = after[key] ^ before[key]
        if changed:
            out[key] = sorted(changed)
    return out


def reap_adopted():
    """Reap the orphans this process adopted as a subreaper."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@pytest.fixture
def clean_host(tmp_path_factory, rootfs):
    """The host before the test must be the host after it. Meanwhile this
    process is a child subreaper (as containerd-shim is for runc), so that
    what a killed runtime orphans is reaped here -- this machine's PID 1
    does not reap."""
    _SCOPE[:] = [str(tmp_path_factory.getbasetemp()) + "/", os.path.realpath(rootfs) + "/"]
    before = snapshot()
    misc.prctl(misc.PR_SET_CHILD_SUBREAPER, 1)
    try:
        yield before
        after = snapshot()
        for _ in range(50):       # a killed process's resources go asynchronously
            reap_adopted()
            after = snapshot()
            if not residue(before, after):
                break
            time.sleep(0.1)
        assert residue(before, after) == {}, "left on the host"
    finally:
        sweep(before)
        reap_adopted()
        misc.prctl(misc.PR_SET_CHILD_SUBREAPER, 0)


def sweep(before):
    """After a failure: remove by hand what this run left (its processes,
    interfaces and cgroups), so that the host stays clean for what follows."""
    now = snapshot()
    for line in now["processes"] - before["processes"]:
        try:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(20):
        reap_adopted()
        if not marked_processes() - before["processes"]:
            break
        time.sleep(0.1)
    for name in now["interfaces"] - before["interfaces"]:
        if TOKEN in name:
            subprocess.run(["ip", "link", "del", name], capture_output=True)
    for path in sorted(now["cgroups"] - before["cgroups"], key=len, reverse=True):
        if TOKEN in path:
            try:
                os.rmdir(path)
            except OSError:
                pass


def assert_gone(root, cid, cgroup_path=None, ifname=None):
    """Nothing of container `cid` is left: state dir, cgroup, host veth."""
    assert not os.path.exists(os.path.join(root, cid)), "state dir left"
    if cgroup_path:
        for point in _cgroup_mounts():
            assert not os.path.isdir(point + cgroup_path), f"cgroup {point + cgroup_path} left"
    if ifname:
        assert not os.path.exists(f"/sys/class/net/{ifname}"), f"interface {ifname} left"


# --------------------------------------------------------------------------
# containers that use every kind of host resource
# --------------------------------------------------------------------------

def ifname():
    """A host interface name of this run: at most 15 characters."""
    return f"lct{TOKEN}{os.urandom(3).hex()}"


def full_config(rootfs, cid, network=True):
    """Namespaces, a cgroup (absolute path) with limits and, with `network`,
    a veth pair whose host end is named for this run."""
    config = configs.Config(
        rootfs=rootfs, hostname="reliable",
        namespaces=[configs.Namespace(t) for t in NAMESPACES],
        cgroups=configs.Cgroup(path=f"/{cid}", resources=configs.Resources(
            memory=128 << 20, pids_limit=100)))
    if network:
        config.networks = [configs.Network(type="loopback"),
                           configs.Network(type="veth", name="eth0", host_interface_name=ifname(),
                                           address="10.254.7.2/24")]
    return config


def host_ifname(config):
    return next((n.host_interface_name for n in config.networks if n.type == "veth"), None)


def looping(marker):
    """A container program that runs until killed, findable by `marker`."""
    return ["/bin/sh", "-c", "while :; do sleep 1; done", marker]


def true_statuses(root, cid):
    """What the system says, independently of core/state.py: the init gone
    -> stopped; still the runtime's code (before exec) -> created if it was
    held for start (or stopped: a half-made init dies with its creator, and
    in every check here the creator is dead); else running."""
    state_dir = os.path.join(root, cid)
    with open(os.path.join(state_dir, "state.json")) as f:
        state = json.load(f)
    pid = state.get("init_pid")
    if not pid:
        return {"stopped"}
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return {"stopped"}
    if fields[0] in (b"Z", b"X") or int(fields[19]) != state.get("init_start_time") \
            or int(fields[6]) & 0x4:      # PF_EXITING: dying, its resources gone
        return {"stopped"}
    if os.path.realpath(exe) != PYTHON:
        return {"running"}
    return {"created", "stopped"} if os.path.exists(os.path.join(state_dir, "exec.fifo")) \
        else {"stopped"}


def run_cmd(cmd, env=None, cwd=None, timeout=60):
    """Run a command with its output in files, not pipes: a container it
    leaves behind (held, detached, orphaned) keeps its stdio open."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        r = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=err, timeout=timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, r.returncode, out.read(), err.read())


# --------------------------------------------------------------------------
# a process driving the library, to be killed
# --------------------------------------------------------------------------

DRIVER = r'''
"""tests/test_reliability.py's runtime: argv[1] a JSON job, argv[2] a marker
that makes this process (and its children until they exec) findable."""
import json
import os
import sys

import libcontainer
from libcontainer.configs import Config

job = json.loads(sys.argv[1])
factory = libcontainer.new(job["root"])
null = os.open(os.devnull, os.O_RDWR)


def process(args):
    return libcontainer.Process(args=args, stdin=null, stdout=null, stderr=null)


container = None
try:
    for step in job["steps"]:
        if step == "create":
            container = factory.create(job["id"], Config.load(job["config"]))
        elif step in ("start", "start-held"):
            container = container or factory.load(job["id"])
            container.start(process(job["args"]), hold=step == "start-held")
        elif step == "wait":
            container.init_process.wait()
        elif step == "exec":
            factory.load(job["id"]).exec()
        elif step == "run":
            p = process(["/bin/sh", "-c", "exit 0"])
            factory.load(job["id"]).run(p)
            p.wait()
        elif step == "destroy":
            factory.load(job["id"]).destroy()
except libcontainer.LibcontainerError as e:
    sys.stderr.write(f"error: {e}\n")
    sys.exit(3)
'''


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    path = tmp_path_factory.mktemp("driver") / "driver.py"
    path.write_text(DRIVER)
    return str(path)


class Bench:
    """One container's files: its config on disk, its state root, its id."""

    def __init__(self, tmp_path, rootfs, driver, network=True):
        self.root = str(tmp_path / "state")
        self.cid = unique("f")
        self.config = full_config(rootfs, self.cid, network)
        self.config_path = str(tmp_path / "container.json")
        self.config.save(self.config_path)
        self.ifname = host_ifname(self.config)
        self.marker = unique("marker")
        self.driver = driver
        self.tmp = tmp_path

    def drive(self, *steps, crash=None):
        job = {"root": self.root, "id": self.cid, "config": self.config_path,
               "args": looping(self.marker), "steps": steps}
        env = dict(os.environ)
        env.pop(CRASH_ENV, None)
        if crash:
            env[CRASH_ENV] = crash
        r = run_cmd([sys.executable, self.driver, json.dumps(job), self.marker], env=env)
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def status(self):
        return libcontainer.new(self.root).load(self.cid).status()

    def cli_status(self, cli="nsinit"):
        r = run_cmd([os.path.join(BIN, cli), "--root", self.root, "state", self.cid])
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["status"]

    def check_truthful(self):
        """The derived status tells the truth (as far as the system said
        before and after it was derived); a dead creator is not 'creating'."""
        before = true_statuses(self.root, self.cid)
        status = self.status()
        after = true_statuses(self.root, self.cid)
        assert status in before | after, f"{status}, but the system says {before | after}"
        cli = self.cli_status()
        assert cli in {status} | after, f"nsinit state: {cli}, library: {status}"
        return status

    def gone(self):
        assert_gone(self.root, self.cid, self.config.cgroups.path, self.ifname)


@pytest.fixture
def bench(tmp_path, rootfs, driver, clean_host):
    b = Bench(tmp_path, rootfs, driver)
    yield b
    if os.path.exists(os.path.join(b.root, b.cid)):     # a failed test: still clean up
        nsinit("destroy", "--force", b.cid, root=b.root)


# --------------------------------------------------------------------------
# fault injection: the library's parent, its init, nsinit, pyrunc
# --------------------------------------------------------------------------

PARENT_START = ["pre_clone:parent", "post_clone:parent", "post_start:parent"]
CHILD_INIT = ["enter_namespaces", *INIT_PHASES]
CHILD_JOIN = ["enter_namespaces", *JOIN_PHASES]


@pytest.mark.parametrize("point", PARENT_START + CHILD_INIT)
def test_killed_during_start(bench, point):
    r = bench.drive("create", "start", crash=point)
    if point.endswith(":parent"):
        assert r.returncode == -signal.SIGKILL, r.stderr
    else:       # the init died: the runtime reports it and undoes its work
        assert r.returncode == 3 and r.stderr.startswith("error: "), r.stderr
        assert len(r.stderr.splitlines()) == 1
    status = bench.check_truthful()
    assert status == ("running" if point == "post_start:parent" else "stopped")
    libcontainer.new(bench.root).load(bench.cid).destroy()
    bench.gone()


@pytest.mark.parametrize("point", PARENT_START)
def test_killed_during_create_held(bench, point):
    """The two-phase create of OCI runtimes: killed before the init waits for
    start, the container is stopped; killed after, it is created."""
    r = bench.drive("create", "start-held", crash=point)
    assert r.returncode == -signal.SIGKILL, r.stderr
    status = bench.check_truthful()
    assert status == ("created" if point == "post_start:parent" else "stopped")
    libcontainer.new(bench.root).load(bench.cid).destroy()
    bench.gone()


def test_killed_during_exec_of_held_init(bench):
    assert bench.drive("create", "start-held").returncode == 0
    assert bench.status() == "created"
    r = bench.drive("exec", crash="exec:parent")
    assert r.returncode == -signal.SIGKILL, r.stderr
    # opening the fifo released the init: it runs (or died writing to a
    # reader that was gone); either way it is no longer 'created', and
    # another start fails at once rather than waiting forever
    assert bench.check_truthful() in ("running", "stopped")
    r = bench.drive("exec")
    assert r.returncode == 3 and len(r.stderr.splitlines()) == 1, r.stderr
    libcontainer.new(bench.root).load(bench.cid).destroy()
    bench.gone()


@pytest.mark.parametrize("point", ["post_clone:parent", *CHILD_JOIN])
def test_killed_during_join(bench, point):
    """A process joining a running container dies half-way: the container
    runs on, untouched, and can be joined again."""
    assert bench.drive("create", "start").returncode == 0
    r = bench.drive("run", crash=point)
    assert r.returncode in (-signal.SIGKILL, 3), r.stderr
    assert bench.check_truthful() == "running"
    assert bench.drive("run").returncode == 0
    libcontainer.new(bench.root).load(bench.cid).destroy()
    bench.gone()


@pytest.mark.parametrize("point", ["destroy:teardown", "destroy:rmtree"])
def test_killed_during_destroy(bench, point):
    assert bench.drive("create", "start").returncode == 0
    r = bench.drive("destroy", crash=point)
    assert r.returncode == -signal.SIGKILL
    assert bench.check_truthful() == "stopped"
    assert bench.drive("destroy").returncode == 0
    bench.gone()


FLOWS = {   # flow -> (steps before, steps killed, crash points)
    "start": ((), ("create", "start"), PARENT_START + CHILD_INIT),
    "create-held": ((), ("create", "start-held"), PARENT_START + CHILD_INIT),
    "exec": (("create", "start-held"), ("exec",), ["exec:parent"]),
    "join": (("create", "start"), ("run",), ["post_clone:parent", *CHILD_JOIN]),
    "destroy": (("create", "start"), ("destroy",), ["destroy:teardown", "destroy:rmtree"]),
}


@pytest.mark.soak
def test_killed_at_random_soak(tmp_path, rootfs, driver, clean_host):
    """300 runtimes killed at a random point of a random operation: the
    status never lies, destroy always cleans up."""
    import random
    rng = random.Random(int(TOKEN, 16))
    for i in range(300):
        flow = rng.choice(sorted(FLOWS))
        before, killed, points = FLOWS[flow]
        point = rng.choice(points)
        (tmp_path / str(i)).mkdir()
        b = Bench(tmp_path / str(i), rootfs, driver)
        if before:
            assert b.drive(*before).returncode == 0, (flow, point)
        r = b.drive(*killed, crash=point)
        assert r.returncode in (-signal.SIGKILL, 3), (flow, point, r.stderr)
        b.check_truthful()
        libcontainer.new(b.root).load(b.cid).destroy()
        b.gone()


# -- nsinit ----------------------------------------------------------------------

def _crash_env(point=None):
    env = dict(os.environ)
    env.pop(CRASH_ENV, None)
    if point:
        env[CRASH_ENV] = point
    return env


def _nsinit(bench, *args, point=None):
    return run_cmd([os.path.join(BIN, "nsinit"), "--root", bench.root, *args],
                   env=_crash_env(point), cwd=bench.tmp)


def _nsinit_exec(bench, point=None, detach=False):
    return _nsinit(bench, "exec", *(["--detach"] if detach else []), "--id", bench.cid,
                   "--config", bench.config_path, *looping(bench.marker), point=point)


@pytest.mark.parametrize("point", PARENT_START + ["setup_mounts"])
def test_nsinit_killed_during_exec(bench, point):
    r = _nsinit_exec(bench, point=point)
    if point == "setup_mounts":     # nsinit saw the init die and cleaned up
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr
        bench.gone()
        return
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert bench.check_truthful() == ("running" if point == "post_start:parent" else "stopped")
    r = _nsinit(bench, "destroy", "--force", bench.cid)
    assert r.returncode == 0, r.stderr
    bench.gone()


def test_nsinit_killed_during_join_and_destroy(bench):
    r = _nsinit_exec(bench, detach=True)
    assert r.returncode == 0, r.stderr
    r = _nsinit(bench, "exec", "--id", bench.cid, "/bin/true", point="post_clone:parent")
    assert r.returncode == -signal.SIGKILL
    assert bench.check_truthful() == "running"
    r = _nsinit(bench, "destroy", "--force", bench.cid, point="destroy:teardown")
    assert r.returncode == -signal.SIGKILL
    assert bench.check_truthful() == "stopped"
    r = _nsinit(bench, "destroy", "--force", bench.cid, point="destroy:rmtree")
    assert r.returncode == -signal.SIGKILL
    r = _nsinit(bench, "destroy", "--force", bench.cid)
    assert r.returncode == 0, r.stderr
    bench.gone()


# -- pyrunc ----------------------------------------------------------------------

PYRUNC = os.path.join(BIN, "pyrunc")
needs_pyrunc = pytest.mark.skipif(not os.path.exists(PYRUNC), reason="pyrunc is not installed")


def _oci_bundle(bench, rootfs):
    """An OCI bundle for bench's container: its cgroup path, a pids limit."""
    subprocess.run([PYRUNC, "spec", "--bundle", str(bench.tmp)], check=True)
    spec = json.loads((bench.tmp / "config.json").read_text())
    spec["root"] = {"path": rootfs, "readonly": True}
    spec["process"].update(terminal=False, args=looping(bench.marker))
    spec["linux"]["cgroupsPath"] = bench.config.cgroups.path
    spec["linux"]["resources"]["pids"] = {"limit": 100}
    (bench.tmp / "config.json").write_text(json.dumps(spec))
    bench.ifname = None      # no veth in an OCI bundle
    return str(bench.tmp)


def _pyrunc(bench, *args, point=None):
    return run_cmd([PYRUNC, "--root", bench.root, *args], env=_crash_env(point), cwd=bench.tmp)


@needs_pyrunc
@pytest.mark.parametrize("point", PARENT_START + ["setup_environment"])
def test_pyrunc_killed_during_create(bench, rootfs, point):
    bundle = _oci_bundle(bench, rootfs)
    r = _pyrunc(bench, "create", "--bundle", bundle, bench.cid, point=point)
    if point == "setup_environment":
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        bench.gone()
        return
    assert r.returncode == -signal.SIGKILL, r.stderr
    status = bench.check_truthful()
    assert status == ("created" if point == "post_start:parent" else "stopped")
    assert bench.cli_status("pyrunc") == status
    r = _pyrunc(bench, "delete", "--force", bench.cid)
    assert r.returncode == 0, r.stderr
    bench.gone()


@needs_pyrunc
def test_pyrunc_killed_during_start_and_delete(bench, rootfs):
    bundle = _oci_bundle(bench, rootfs)
    assert _pyrunc(bench, "create", "--bundle", bundle, bench.cid).returncode == 0
    r = _pyrunc(bench, "start", bench.cid, point="exec:parent")
    assert r.returncode == -signal.SIGKILL
    assert bench.check_truthful() in ("running", "stopped")
    r = _pyrunc(bench, "delete", "--force", bench.cid, point="destroy:teardown")
    assert r.returncode == -signal.SIGKILL
    assert bench.check_truthful() == "stopped"
    r = _pyrunc(bench, "delete", bench.cid)
    assert r.returncode == 0, r.stderr
    bench.gone()


# --------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------

def _concurrent_distinct(tmp_path, rootfs, driver, n):
    root = str(tmp_path / "state")
    procs = []
    for i in range(n):
        cid = unique(f"c{i}")
        config = full_config(rootfs, cid)
        path = tmp_path / f"{cid}.json"
        config.save(path)
        job = {"root": root, "id": cid, "config": str(path),
               "args": ["/bin/sh", "-c", "echo $$ > /dev/null", cid],
               "steps": ["create", "start", "wait", "destroy"]}
        procs.append((cid, config, subprocess.Popen(
            [sys.executable, driver, json.dumps(job), cid], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
    for cid, config, p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"{cid}: {err}"
        assert_gone(root, cid, config.cgroups.path, host_ifname(config))
    assert os.listdir(root) == []


def test_concurrent_distinct_ids(tmp_path, rootfs, driver, clean_host):
    _concurrent_distinct(tmp_path, rootfs, driver, 10)


@pytest.mark.soak
def test_concurrent_distinct_ids_soak(tmp_path, rootfs, driver, clean_host):
    _concurrent_distinct(tmp_path, rootfs, driver, 50)


RACER = r'''
"""Race on one container id: create+start it, or destroy whoever's it is."""
import json
import os
import sys

import libcontainer
from libcontainer.configs import Config

job = json.loads(sys.argv[1])
factory = libcontainer.new(job["root"])
null = os.open(os.devnull, os.O_RDWR)
outcomes = []
for _ in range(job["rounds"]):
    try:
        container = factory.create(job["id"], Config.load(job["config"]))
        container.start(libcontainer.Process(args=job["args"], stdin=null, stdout=null,
                                             stderr=null))
        outcomes.append("started")
    except libcontainer.ContainerExists:
        try:
            factory.load(job["id"]).destroy()
            outcomes.append("destroyed")
        except libcontainer.LibcontainerError as e:
            outcomes.append(f"{type(e).__name__}: {e}")
    except libcontainer.LibcontainerError as e:
        outcomes.append(f"{type(e).__name__}: {e}")
print(json.dumps(outcomes))
'''

READER = r'''
"""Read one container's state.json over and over: every read must parse."""
import json
import os
import sys
import time

path, out = sys.argv[1], sys.argv[2]
reads = bad = 0
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        with open(path) as f:
            data = f.read()
    except OSError:
        continue
    reads += 1
    try:
        json.loads(data)
    except ValueError:
        bad += 1
    with open(out + ".tmp", "w") as f:
        f.write(f"{reads} {bad}")
    os.replace(out + ".tmp", out)
'''


def test_racing_on_one_id(tmp_path, rootfs, clean_host):
    """10 processes create/start/destroy the same id at once: each step
    succeeds or fails with a clean error, no state file is ever torn, and at
    the end nothing is left."""
    _race(tmp_path, rootfs, rounds=4)


@pytest.mark.soak
def test_racing_on_one_id_soak(tmp_path, rootfs, clean_host):
    _race(tmp_path, rootfs, rounds=25)


def _race(tmp_path, rootfs, rounds):
    root = str(tmp_path / "state")
    cid = unique("race")
    config = full_config(rootfs, cid)
    config.save(tmp_path / "c.json")
    (tmp_path / "racer.py").write_text(RACER)
    (tmp_path / "reader.py").write_text(READER)
    reader = subprocess.Popen([sys.executable, str(tmp_path / "reader.py"),
                               os.path.join(root, cid, "state.json"), str(tmp_path / "reads")])
    job = {"root": root, "id": cid, "config": str(tmp_path / "c.json"), "rounds": rounds,
           "args": looping(unique("marker"))}
    try:
        racers = [subprocess.Popen([sys.executable, str(tmp_path / "racer.py"), json.dumps(job),
                                    cid], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for _ in range(10)]
        outcomes = []
        for p in racers:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0 and "Traceback" not in err, err
            outcomes += json.loads(out)
    finally:
        reader.kill()
        reader.wait()
    kinds = [o.split(":")[0] for o in outcomes]
    print("race outcomes:", {k: kinds.count(k) for k in sorted(set(kinds))})
    assert "started" in outcomes
    allowed = ("started", "destroyed", "ContainerNotExists", "InvalidState", "ConfigError")
    odd = [o for o in outcomes if not o.startswith(allowed)]
    assert not odd, odd
    if os.path.exists(tmp_path / "reads"):
        reads, bad = map(int, (tmp_path / "reads").read_text().split())
        assert bad == 0, f"{bad} of {reads} reads of state.json were torn"
    # one container may be left, started by the last winner: it must be whole
    if os.path.exists(os.path.join(root, cid)):
        container = libcontainer.new(root).load(cid)
        assert container.status() in true_statuses(root, cid)
        container.destroy()
    assert os.listdir(root) == []
    assert_gone(root, cid, config.cgroups.path, host_ifname(config))


def test_destroy_waits_for_a_start_in_progress(tmp_path, rootfs, driver, clean_host):
    """A destroy that loaded the container before another process started it
    must not act on its stale copy: it kills what was started."""
    b = Bench(tmp_path, rootfs, driver)
    assert b.drive("create").returncode == 0
    stale = libcontainer.new(b.root).load(b.cid)       # loaded while stopped
    assert b.drive("start").returncode == 0
    stale.destroy()
    assert_gone(b.root, b.cid, b.config.cgroups.path, b.ifname)


def test_start_twice_from_stale_copies(tmp_path, rootfs, driver, clean_host):
    """Two processes that loaded the same stopped container: only one may
    start it; the other gets a clean error rather than a second init."""
    b = Bench(tmp_path, rootfs, driver)
    assert b.drive("create").returncode == 0
    stale = libcontainer.new(b.root).load(b.cid)
    assert b.drive("start").returncode == 0
    null = os.open(os.devnull, os.O_RDWR)
    try:
        with pytest.raises(libcontainer.LibcontainerError):
            stale.start(libcontainer.Process(args=looping(b.marker), stdin=null, stdout=null,
                                             stderr=null))
    finally:
        os.close(null)
    libcontainer.new(b.root).load(b.cid).destroy()
    assert_gone(b.root, b.cid, b.config.cgroups.path, b.ifname)


# --------------------------------------------------------------------------
# load and leaks
# --------------------------------------------------------------------------

def _one_run(factory, rootfs, i, null):
    cid = unique(f"l{i}")
    config = full_config(rootfs, cid)
    container = factory.create(cid, config)
    try:
        if i % 5 == 0:      # two-phase start, a joined process, destroy while running
            init = libcontainer.Process(args=["/bin/sleep", "60"], stdin=null, stdout=null,
                                        stderr=null)
            container.start(init, hold=True)
            container.exec()
            join = libcontainer.Process(args=["/bin/true"], stdin=null, stdout=null,
                                        stderr=null)
            container.run(join)
            assert join.wait() == 0
        else:
            p = libcontainer.Process(args=["/bin/sh", "-c", "exit 0"], stdin=null,
                                     stdout=null, stderr=null)
            container.start(p)
            assert p.wait() == 0
    finally:
        container.destroy()
    assert_gone(factory.root, cid, config.cgroups.path, host_ifname(config))


def _sequential_runs(tmp_path, rootfs, n):
    root = str(tmp_path / "state")
    factory = libcontainer.new(root)
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for i in range(3):      # warm up: imports, caches, pyroute2
            _one_run(factory, rootfs, i, null)
        before = {**snapshot(), "fds": open_fds(), "zombies": own_zombies()}
        rss = [rss_kib()]
        for i in range(n):
            _one_run(factory, rootfs, i, null)
            if (i + 1) % max(1, n // 10) == 0:
                rss.append(rss_kib())
        after = {**snapshot(), "fds": open_fds(), "zombies": own_zombies()}
    finally:
        os.close(null)
    assert os.listdir(root) == []
    assert residue({k: before[k] for k in ("cgroups", "mounts", "interfaces", "processes")},
                   after) == {}
    assert after["fds"] == before["fds"]
    assert after["zombies"] == before["zombies"] == []
    # bounded: after the first tenth, the resident set stays within 8 MiB
    assert max(rss[1:]) - rss[1] < 8 * 1024, f"RSS (KiB) grew: {rss}"
    return rss


def test_sequential_runs_leak_nothing(tmp_path, rootfs, clean_host):
    _sequential_runs(tmp_path, rootfs, 50)


@pytest.mark.soak
def test_sequential_runs_leak_nothing_soak(tmp_path, rootfs, clean_host):
    rss = _sequential_runs(tmp_path, rootfs, 1000)
    print(f"RSS over 1000 runs (KiB, every 100): {rss}")


@pytest.mark.soak
def test_nsinit_runs_leak_nothing_soak(tmp_path, rootfs, clean_host):
    """The CLI, 200 times in a row: exit status and output every time."""
    root = str(tmp_path / "state")
    for i in range(200):
        cid = unique(f"n{i}")
        config = full_config(rootfs, cid)
        config.save(tmp_path / "c.json")
        r = nsinit("exec", "--id", cid, "--config", str(tmp_path / "c.json"),
                   "/bin/sh", "-c", f"echo {i}; exit 7", root=root, cwd=tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (7, f"{i}\n", "")
        assert_gone(root, cid, config.cgroups.path, host_ifname(config))


# --------------------------------------------------------------------------
# corrupt state
# --------------------------------------------------------------------------

def _detached(bench):
    r = _nsinit_exec(bench, detach=True)
    assert r.returncode == 0, r.stderr
    assert bench.status() == "running"
    with open(os.path.join(bench.root, bench.cid, "state.json")) as f:
        return f.read()


def _one_line(r, *needles):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


CORRUPTIONS = {
    "truncated": lambda text: text[:len(text) // 2],
    "truncated-early": lambda text: text[:40],
    "empty": lambda text: "",
    "garbage": lambda text: "\x00\xff{{{ not json",
    "not-an-object": lambda text: "[1, 2, 3]",
    "bad-config": lambda text: json.dumps({**json.loads(text), "config": {"rootfs": 5}}),
    "no-config": lambda text: json.dumps({k: v for k, v in json.loads(text).items()
                                          if k != "config"}),
    "bad-pid": lambda text: json.dumps({**json.loads(text), "init_pid": "x"}),
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_state(bench, kind):
    """A running container whose state.json is damaged: reported clearly;
    `destroy --force` still kills what it can verify and removes what the
    stash names."""
    text = _detached(bench)
    path = os.path.join(bench.root, bench.cid, "state.json")
    with open(path, "w", errors="surrogateescape") as f:
        f.write(CORRUPTIONS[kind](text))
    r = _nsinit(bench, "state", bench.cid)
    if r.returncode == 0:       # what is still readable may be shown
        json.loads(r.stdout)
    else:
        _one_line(r, bench.cid)
    r = _nsinit(bench, "destroy", bench.cid)
    _one_line(r, bench.cid)
    r = _nsinit(bench, "destroy", "--force", bench.cid)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(bench.root, bench.cid))
    if kind in ("truncated", "bad-config", "no-config", "bad-pid"):
        # the stash (and, but for bad-pid, the init's pid and start time)
        # was still readable: all gone
        bench.gone()
    else:
        # nothing verifiable was left: the container's processes must be
        # found and killed by hand (as runc) -- here, by this test
        _kill_marked(bench.marker)
        _remove_by_hand(bench)


def _kill_marked(marker):
    for line in marked_processes():
        if marker in line:
            pid = int(line.split(":")[0])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for _ in range(100):
        if not any(marker in line for line in marked_processes()):
            return
        time.sleep(0.05)


def _remove_by_hand(bench):
    for point in _cgroup_mounts():
        path = point + bench.config.cgroups.path
        for _ in range(50):
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
    if bench.ifname and os.path.exists(f"/sys/class/net/{bench.ifname}"):
        subprocess.run(["ip", "link", "del", bench.ifname], check=False)


@needs_pyrunc
def test_pyrunc_delete_corrupt_state(bench, rootfs):
    bundle = _oci_bundle(bench, rootfs)
    assert _pyrunc(bench, "run", "--detach", "--bundle", bundle, bench.cid).returncode == 0
    path = os.path.join(bench.root, bench.cid, "state.json")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text[:len(text) // 2])
    _one_line(_pyrunc(bench, "state", bench.cid), bench.cid)
    r = _pyrunc(bench, "delete", "--force", bench.cid)
    assert r.returncode == 0, r.stderr
    try:
        bench.gone()
    finally:
        _kill_marked(bench.marker)
        _remove_by_hand(bench)


def test_state_dir_without_state_file(tmp_path, clean_host):
    """A creator killed between making the state dir and writing state.json."""
    root = tmp_path / "state"
    cid = unique()
    (root / cid).mkdir(parents=True)
    r = nsinit("destroy", cid, root=str(root))
    _one_line(r, cid)
    r = nsinit("destroy", "--force", cid, root=str(root))
    assert r.returncode == 0, r.stderr
    assert os.listdir(root) == []


# --------------------------------------------------------------------------
# host resources missing
# --------------------------------------------------------------------------

def test_rootfs_without_shell(tmp_path, clean_host):
    """No busybox: the exec fails with the program's name, nothing is left."""
    rootfs = tmp_path / "empty-rootfs"
    rootfs.mkdir()
    config = configs.Config(rootfs=str(rootfs), namespaces=[configs.Namespace(t)
                                                            for t in NAMESPACES])
    config.save(tmp_path / "container.json")
    root = str(tmp_path / "state")
    r = nsinit("exec", "--id", unique(), "/bin/sh", "-c", "true", root=root, cwd=tmp_path)
    _one_line(r, "exec '/bin/sh': No such file or directory")
    assert r.stderr.startswith("nsinit: ")
    assert os.listdir(root) == []


@pytest.mark.parametrize("resources, field", [
    ({"hugetlb_limit": [{"page_size": "2MB", "limit": 1 << 21}]}, "hugetlb"),
    ({"blkio_weight": 500}, "blkio"),
])
def test_missing_cgroup_controller(tmp_path, rootfs, clean_host, resources, field):
    """A config asking for a controller the host lacks: one line. (Whether a
    controller is missing depends on the host; a present one must work.)"""
    cid = unique()
    data = full_config(rootfs, cid, network=False).to_dict()
    data["cgroups"]["resources"].update(resources)
    (tmp_path / "container.json").write_text(json.dumps(data))
    root = str(tmp_path / "state")
    r = nsinit("exec", "--id", cid, "/bin/true", root=root, cwd=tmp_path)
    if field in mounted_controllers():
        assert r.returncode == 0, r.stderr
    else:
        _one_line(r, field)
    assert not os.path.exists(root) or os.listdir(root) == []


def test_cgroup_v2_driver_on_v1_host(tmp_path, rootfs, clean_host):
    data = full_config(rootfs, unique(), network=False).to_dict()
    data["cgroups"]["driver"] = "v2"
    (tmp_path / "container.json").write_text(json.dumps(data))
    root = str(tmp_path / "state")
    r = nsinit("exec", "--id", unique(), "/bin/true", root=root, cwd=tmp_path)
    if r.returncode != 0:
        _one_line(r, "cgroups")
    assert not os.path.exists(root) or os.listdir(root) == []


@pytest.fixture
def unprivileged(tmp_path):
    """A host user made for this test (lct-...), removed afterwards, and a
    directory it owns."""
    name = f"lct-{TOKEN}-{os.urandom(2).hex()}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/false",
                    "--user-group", name], check=True, capture_output=True)
    home = tempfile.mkdtemp(prefix=f"lct-{TOKEN}-home-")
    try:
        entry = pwd.getpwnam(name)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        yield entry, home
    finally:
        shutil.rmtree(home, ignore_errors=True)
        subprocess.run(["userdel", name], check=False, capture_output=True)
        subprocess.run(["groupdel", name], check=False, capture_output=True)


# The venv's interpreter lives under /root (0700 here): the user runs the
# system's python of the same version, with the venv's site-packages.
AS_USER = ("import site, sys; site.addsitedir(sys.argv.pop(1)); "
           "from libcontainer.cli.nsinit import cli; cli(sys.argv[1:])")
SITE = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))


def _as(entry, home, *args, cwd=None):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home,
           "XDG_CACHE_HOME": os.path.join(home, "cache")}
    python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is needed to run nsinit as another user")
    return subprocess.run([python, "-c", AS_USER, SITE, *args], user=entry.pw_uid,
                          group=entry.pw_gid, extra_groups=[], env=env, cwd=cwd or home,
                          capture_output=True, text=True, timeout=60)


def test_unprivileged_user(unprivileged, rootfs, clean_host):
    """No root: every refusal is one line naming what was not permitted,
    and nothing is left."""
    entry, home = unprivileged
    root = os.path.join(home, "state")

    def attempt(config, *options):
        config.save(os.path.join(home, "container.json"))
        os.chown(os.path.join(home, "container.json"), entry.pw_uid, entry.pw_gid)
        r = _as(entry, home, "--root", root, *options, "exec", "--id", unique(), "/bin/true")
        assert not os.path.exists(root) or os.listdir(root) == []
        return r

    ns = [configs.Namespace(t) for t in NAMESPACES]
    # without a user namespace: refused up front, saying what is missing
    r = attempt(configs.Config(rootfs=rootfs, namespaces=ns))
    _denied(r, "unprivileged")
    # ... and with that check disabled, the first call the kernel refuses
    r = attempt(configs.Config(rootfs=rootfs, namespaces=ns), "--disable-plugin", "userns")
    _denied(r, "Operation not permitted")
    assert "(" in r.stderr.split("Operation not permitted")[0], "names the failing call"
    # in a user namespace of its own (rootless): a cgroup not delegated to
    # the user is skipped with a one-line warning, a veth pair is refused
    maps = dict(uid_mappings=[configs.IDMap(0, entry.pw_uid, 1)],
                gid_mappings=[configs.IDMap(0, entry.pw_gid, 1)])
    ns = [*ns, configs.Namespace("NEWUSER")]
    path = f"/{unique()}"
    r = attempt(configs.Config(rootfs=rootfs, namespaces=ns, cgroups=configs.Cgroup(
        path=path, resources=configs.Resources(pids_limit=10)), **maps))
    assert r.returncode == 0, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "not delegated" in r.stderr
    assert not any(os.path.exists(f"/sys/fs/cgroup/{c}{path}") for c in ("pids", "memory"))
    r = attempt(configs.Config(rootfs=rootfs, namespaces=ns, networks=[configs.Network(
        type="veth", name="eth0", host_interface_name=ifname(), address="10.254.7.2/24")],
        **maps))
    _denied(r, "networks[0]", "permission denied")
    # the default state root is root's
    r = _as(entry, home, "exec", "--id", unique(), "/bin/true")
    _denied(r)
    r = _as(entry, home, "list")
    assert "Traceback" not in r.stderr


def _denied(r, *needles):
    _one_line(r, *needles)
    assert r.stderr.startswith("nsinit: ")


def test_unprivileged_user_cannot_touch_roots_container(unprivileged, rootfs, driver,
                                                       clean_host):
    """root's containers under a root the user may traverse (0711, as
    /run/libcontainer): one line each, and the container runs on."""
    import pathlib
    entry, home = unprivileged
    where = tempfile.mkdtemp(prefix=f"lct-{TOKEN}-")
    os.chmod(where, 0o755)
    bench = Bench(pathlib.Path(where), rootfs, driver)
    try:
        _detached(bench)
        for args in (["state", bench.cid], ["kill", bench.cid], ["destroy", "-f", bench.cid],
                     ["exec", "--id", bench.cid, "/bin/true"]):
            r = _as(entry, home, "--root", bench.root, *args)
            _one_line(r)
        assert bench.status() == "running"
        assert _nsinit(bench, "destroy", "--force", bench.cid).returncode == 0
        bench.gone()
    finally:
        if os.path.exists(os.path.join(bench.root, bench.cid)):
            _nsinit(bench, "destroy", "--force", bench.cid)
        shutil.rmtree(where, ignore_errors=True)


def test_destroy_force_never_leaves_the_root(tmp_path):
    """An id that is a path (.., ../x) is refused, never removed."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "canary").write_text("alive")
    root = tmp_path / "a" / "state"
    root.mkdir()
    for cid in ("..", "../a", "../../a", "/", ".", "a/../..", ""):
        r = nsinit("destroy", "--force", cid, root=str(root))
        _one_line(r, "invalid container id")
    assert (tmp_path / "a" / "canary").read_text() == "alive" and root.is_dir()


JOIN_THEN_DESTROY = r'''
import os
import sys

import libcontainer
from libcontainer.configs import Config

root, cid, config = sys.argv[1:4]
factory = libcontainer.new(root)
null = os.open(os.devnull, os.O_RDWR)
factory.create(cid, Config.load(config)).start(
    libcontainer.Process(args=["/bin/sleep", "60"], stdin=null, stdout=null, stderr=null))
joined = libcontainer.Process(args=["/bin/sleep", "60"], stdin=null, stdout=null, stderr=null)
factory.load(cid).run(joined)          # not waited for
factory.load(cid).destroy()            # through another Container object
print("destroyed")
'''


def test_destroy_with_a_join_from_another_handle(tmp_path, rootfs, driver, clean_host):
    """The dying init of a PID namespace waits until each of its processes
    is reaped; a joined one is the runtime's child and only it can reap it,
    even when destroy() is called on another Container object."""
    b = Bench(tmp_path, rootfs, driver)
    r = run_cmd([sys.executable, "-c", JOIN_THEN_DESTROY, b.root, b.cid, b.config_path,
                 b.marker], timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "destroyed\n", "")
    b.gone()
