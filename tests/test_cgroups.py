"""Cgroups: limits, device rules, freezer, stats, updates and clean removal,
on real cgroups.

Tests taking the ``driver`` fixture run once per driver: ``[v1]`` on a host
with v1 controllers (legacy or hybrid), ``[v2]`` on a unified cgroup v2 host
-- here, inside the guest of tests/test_cgroups_v2_vm.py. Every cgroup is an
absolute path named by ``unique()``; after each test nothing with this run's
prefix may remain under /sys/fs/cgroup.
"""
import glob
import json
import os
import signal
import time

import pytest
from conftest import PREFIX, TOKEN, nsinit, unique

import libcontainer
from libcontainer import configs
from libcontainer.errors import ConfigError, LibcontainerError
from libcontainer.plugins.cgroups import common

MODE = common.mode()
V1_HOST = MODE in ("legacy", "hybrid")
V2_HOST = MODE == "unified"
MB = 1 << 20


def residue():
    """Cgroup directories of this test run left anywhere under /sys/fs/cgroup
    (also on the tmpfs itself: a driver must never write there)."""
    found = []
    for pattern in (f"/sys/fs/cgroup/{PREFIX}{TOKEN}*", f"/sys/fs/cgroup/*/{PREFIX}{TOKEN}*",
                    f"/sys/fs/cgroup/*/*/{PREFIX}{TOKEN}*"):
        found += glob.glob(pattern)
    # podman's cgroup parent lives as long as its module-scoped fixture
    return [d for d in found if "-podman-" not in d]


@pytest.fixture(autouse=True)
def no_cgroup_residue():
    yield
    assert residue() == []


@pytest.fixture(params=["v1", "v2"])
def driver(request):
    if request.param == "v1" and not V1_HOST:
        pytest.skip(f"needs cgroup v1 controllers (this host is {MODE})")
    if request.param == "v2" and not V2_HOST:
        pytest.skip("needs the cgroup v2 unified hierarchy (run under cgv2-vm: "
                    "tests/test_cgroups_v2_vm.py)")
    return request.param


def cgroup(driver, devices=None, **resources):
    kw = {} if devices is None else {"allowed_devices": devices}
    return configs.Cgroup(path=f"/{unique('cg')}", driver=driver,
                          resources=configs.Resources(**resources), **kw)


@pytest.fixture
def start(factory, make_config, tmp_path):
    """start(args, cgroups, **config) -> (container, process); the process's
    output goes to tmp_path/out and tmp_path/err. Destroyed afterwards."""
    made = []

    def start(args, cgroups, **kw):
        container = factory.create(unique(), make_config(cgroups=cgroups, **kw))
        made.append(container)
        with open(tmp_path / "out", "wb") as o, open(tmp_path / "err", "wb") as e:
            process = libcontainer.Process(args=args, stdout=o, stderr=e)
            container.start(process)
        return container, process

    yield start
    for container in made:
        container.destroy()


def output(tmp_path):
    return (tmp_path / "out").read_text(), (tmp_path / "err").read_text()


def eventually(predicate, timeout=60.0, what="condition"):
    """Poll until predicate() is true (no timing is asserted: the deadline
    only bounds a hang)."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def cgroup_dirs(container):
    stash = container.stash["cgroups"]
    return sorted(set(stash["dirs"].values())) if "dirs" in stash else \
        [os.path.join(stash["root"], stash["path"].lstrip("/"))]


# --------------------------------------------------------------------------
# joining
# --------------------------------------------------------------------------

# No PID namespace where a joined process (our child) is still alive at
# destroy: the dying init waits in the kernel until that zombie is reaped,
# while container.destroy() waits for the init (see the report on core).
NO_PIDNS = ("NEWNS", "NEWUTS", "NEWIPC", "NEWNET")


def test_init_and_exec_join_cgroup_and_see_root(driver, start, tmp_path):
    ns = [configs.Namespace(t) for t in (*NO_PIDNS, "NEWCGROUP")]
    cg = cgroup(driver)
    container, process = start(["sh", "-c", "cat /proc/self/cgroup; exec sleep 1000"], cg,
                               namespaces=ns)
    eventually(lambda: output(tmp_path)[0], what="the init's output")
    lines = output(tmp_path)[0].split()
    assert lines and all(line.endswith(":/") for line in lines), lines
    with open(f"/proc/{process.pid}/cgroup") as f:
        host_view = f.read()
    # every hierarchy, named (name=systemd) and cgroup2 ones too, as runc
    assert all(line.endswith(f":{cg.path}") for line in host_view.splitlines()), host_view
    for d in cgroup_dirs(container):
        assert os.path.isdir(d)
    # a process run in the container joins the same cgroup (and namespace)
    r, w = os.pipe()
    joined = libcontainer.Process(args=["sh", "-c", "cat /proc/self/cgroup; sleep 1000"],
                                  stdout=w)
    container.run(joined)
    os.close(w)
    with os.fdopen(r) as f:
        assert f.readline().strip().endswith(":/")
    assert {process.pid, joined.pid} <= set(container.processes())
    # the joined shell's `cat` may still be exiting: compare once both agree
    eventually(lambda: sorted(container.processes()) == sorted(
        int(p) for p in open(os.path.join(cgroup_dirs(container)[-1], "cgroup.procs")).read()
        .split()), what="processes() to be the cgroup's")
    container.destroy()
    assert joined.wait() == 128 + signal.SIGKILL


def test_derived_path_from_parent_and_id(driver, factory, make_config):
    parent = f"/{unique('parent')}"
    config = make_config(cgroups=configs.Cgroup(parent=parent, driver=driver))
    container = factory.create(unique(), config)
    try:
        container.start(libcontainer.Process(args=["sleep", "1000"]))
        assert container.stash["cgroups"]["path"] == f"{parent}/{container.id}"
        for d in cgroup_dirs(container):
            assert d.endswith(f"{parent}/{container.id}") and os.path.isdir(d)
    finally:
        container.destroy()
    # the parent was made for this container, and goes with it


def test_no_cgroups_config_means_no_cgroup(factory, make_config):
    container = factory.create(unique(), make_config())
    try:
        container.start(libcontainer.Process(args=["sleep", "1000"]))
        assert "cgroups" not in container.stash
        assert container.stats().get("memory") is None
        with pytest.raises(LibcontainerError, match="has no cgroup"):
            container.pause()
    finally:
        container.destroy()


# --------------------------------------------------------------------------
# limits
# --------------------------------------------------------------------------

def test_memory_limit_oom_kills_hog(driver, start):
    container, process = start(["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"],
                               cgroup(driver, memory=32 * MB))
    assert process.wait() == 137
    stats = container.stats()["memory"]
    assert stats["limit"] == 32 * MB
    assert stats["oom_kills"] >= 1 and stats["oom_events"] >= 1


def test_pids_limit_stops_fork_bomb(driver, start, tmp_path):
    script = "n=0; while [ $n -lt 60 ]; do sleep 1000 & n=$((n+1)); done; echo escaped"
    container, process = start(["sh", "-c", script], cgroup(driver, pids_limit=8),
                               namespaces=[configs.Namespace(t) for t in ("NEWNS", "NEWIPC",
                                                                          "NEWUTS")])
    assert process.wait() != 0
    out, err = output(tmp_path)
    assert "escaped" not in out and "can't fork" in err
    stats = container.stats()["pids"]
    # without a PID namespace the sleeps outlive the shell, inside the cgroup
    assert stats["limit"] == 8 and 1 <= stats["current"] <= 8


def test_cpu_quota_throttles_busy_loop(driver, start):
    container, _ = start(["sh", "-c", "while :; do :; done"],
                         cgroup(driver, cpu_quota=10000, cpu_period=100000, cpu_shares=512))
    eventually(lambda: container.stats()["cpu"]["throttled_periods"] >= 2,
               what="the busy loop to be throttled")
    cpu = container.stats()["cpu"]
    assert cpu["throttled_ns"] > 0 and cpu["periods"] >= cpu["throttled_periods"]
    assert cpu["usage_ns"] > 0


def test_stats_follow_the_work(driver, start):
    container, _ = start(["sleep", "1000"], cgroup(driver, memory=256 * MB, pids_limit=100))
    before = container.stats()
    assert set(before) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    shape = common.empty_stats()
    for key in ("cpu", "memory", "pids", "blkio"):
        assert set(before[key]) == set(shape[key]), key
    for size, entry in before["hugetlb"].items():
        assert set(entry) == {"usage", "max_usage", "failcnt"}, size
    work = libcontainer.Process(args=["sh", "-c", "i=0; while [ $i -lt 20000 ]; do "
                                      "i=$((i+1)); done; "
                                      "dd if=/dev/zero of=/dev/shm/f bs=1M count=16"])
    container.run(work)
    assert work.wait() == 0
    after = container.stats()
    assert after["cpu"]["usage_ns"] > before["cpu"]["usage_ns"]
    assert after["cpu"]["user_ns"] + after["cpu"]["system_ns"] > 0
    # the 16 MiB tmpfs file is charged to the container
    assert after["memory"]["usage"] >= before["memory"]["usage"] + 8 * MB
    assert after["memory"]["max_usage"] is None or after["memory"]["max_usage"] >= \
        after["memory"]["usage"]
    assert after["memory"]["limit"] == 256 * MB
    assert after["pids"] == {"current": 1, "limit": 100}
    json.dumps(after)


def test_bad_value_fails_with_one_line_and_removes_cgroup(driver, factory, make_config):
    cg = cgroup(driver, memory=64 * MB, cpuset_cpus="4000")
    container = factory.create(unique(), make_config(cgroups=cg))
    try:
        with pytest.raises(LibcontainerError) as info:
            container.start(libcontainer.Process(args=["true"]))
        message = str(info.value)
        assert "cgroups.resources.cpuset_cpus" in message and "\n" not in message
        assert residue() == []
        assert "cgroups" not in container.stash
    finally:
        container.destroy()


def test_set_updates_a_running_container(driver, start):
    container, _ = start(["sleep", "1000"], cgroup(driver, memory=64 * MB, pids_limit=20))
    container.set(configs.Resources(memory=128 * MB, pids_limit=30, cpu_quota=50000,
                                    cpu_period=100000))
    stats = container.stats()
    assert stats["memory"]["limit"] == 128 * MB and stats["pids"]["limit"] == 30
    assert container.config.cgroups.resources.memory == 128 * MB
    with pytest.raises(LibcontainerError, match=r"cgroups\.resources\.cpuset_cpus"):
        container.set(configs.Resources(cpuset_cpus="4000"))
    with pytest.raises(ConfigError, match=r"cgroups\.resources\.cpu_shares"):
        container.set(configs.Resources(cpu_shares=1))
    # what the host cannot serve is refused by name on update too
    if "net_cls" not in common.v1_hierarchies():
        with pytest.raises(ConfigError, match=r"^cgroups\.resources\.net_cls_classid: "):
            container.set(configs.Resources(net_cls_classid=7))
    assert container.status() == "running"


# --------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------

# mknod is allowed for every device by the default rules ("c *:* m"); open
# is what the rules decide. 1:42 is no device at all: when the cgroup lets
# the open through, the kernel answers ENXIO instead of EPERM.
DEVICE_SCRIPT = """
mknod /dev/lct-zero c 1 5 && mknod /dev/lct-none c 1 42 || exit 1
for d in zero none; do (exec 3<>/dev/lct-$d) 2>&1 && echo "lct-$d: ok"; done
true
"""


def device_results(tmp_path):
    """{"zero": "ok" | the open's error, "none": ...} from DEVICE_SCRIPT's output."""
    out = output(tmp_path)[0]
    results = {}
    for d in ("zero", "none"):
        line = next((ln for ln in out.splitlines() if f"lct-{d}" in ln), "")
        results[d] = "ok" if line.endswith(": ok") else line.rsplit(": ", 1)[-1]
    return results


def test_device_rules(driver, start, tmp_path):
    container, process = start(["sh", "-c", DEVICE_SCRIPT], cgroup(driver))
    assert process.wait() == 0
    assert device_results(tmp_path) == {"zero": "ok", "none": "Operation not permitted"}


def test_device_rules_allow_and_deny(driver, start, tmp_path):
    rules = list(configs.DEFAULT_ALLOWED_DEVICES) + [
        configs.Device(type="c", major=1, minor=42, permissions="rw"),
        configs.Device(type="c", major=1, minor=5, permissions="rw", allow=False),
    ]
    container, process = start(["sh", "-c", DEVICE_SCRIPT], cgroup(driver, devices=rules))
    assert process.wait() == 0
    assert device_results(tmp_path) == {"zero": "Operation not permitted",
                                        "none": "No such device or address"}


def test_allow_all_devices(driver, start, tmp_path):
    cg = cgroup(driver)
    cg.allow_all_devices = True
    container, process = start(["sh", "-c", DEVICE_SCRIPT], cg)
    assert process.wait() == 0
    assert device_results(tmp_path) == {"zero": "ok", "none": "No such device or address"}


# --------------------------------------------------------------------------
# freezer
# --------------------------------------------------------------------------

COUNTER = ("i=0; while :; do i=$((i+1)); "
           "echo $i > /dev/shm/c.new; mv /dev/shm/c.new /dev/shm/c; done")


def test_freeze_stops_counter_thaw_resumes_destroy_paused(driver, start):
    container, process = start(["sh", "-c", COUNTER], cgroup(driver))
    counter = f"/proc/{process.pid}/root/dev/shm/c"

    def count():
        try:
            with open(counter) as f:
                return int(f.read() or 0)
        except (OSError, ValueError):
            return 0

    eventually(lambda: count() > 0, what="the counter to start")
    container.pause()
    assert container.status() == "paused"
    frozen = count()
    time.sleep(0.3)
    assert count() == frozen
    container.resume()
    assert container.status() == "running"
    eventually(lambda: count() > frozen, what="the counter to move again")
    # a paused container can be destroyed; its cgroup goes too
    container.pause()
    dirs = cgroup_dirs(container)
    container.destroy()
    assert process.wait() == 128 + signal.SIGKILL
    assert not any(os.path.exists(d) for d in dirs)


# --------------------------------------------------------------------------
# the CLI reads the same cgroup back from state.json
# --------------------------------------------------------------------------

def test_cli_ps_stats_pause_resume(driver, start, state_root):
    container, process = start(["sleep", "1000"], cgroup(driver, pids_limit=50),
                               namespaces=[configs.Namespace(t) for t in NO_PIDNS])
    joined = libcontainer.Process(args=["sleep", "1000"])
    container.run(joined)
    ps = nsinit("ps", container.id, root=state_root)
    assert ps.returncode == 0, ps.stderr
    assert {process.pid, joined.pid} <= {int(p) for p in ps.stdout.split()}
    stats = nsinit("stats", "--json", container.id, root=state_root)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["pids"] == {"current": 2, "limit": 50}
    assert nsinit("pause", container.id, root=state_root).returncode == 0
    assert container.status() == "paused"
    assert nsinit("resume", container.id, root=state_root).returncode == 0
    assert container.status() == "running"


# --------------------------------------------------------------------------
# the OCI cgroup mount (v1: the container's own cgroups, bound read-only)
# --------------------------------------------------------------------------

def pyrunc_run(tmp_path, rootfs, args, resources=None, namespaces=None):
    """`pyrunc run` of a bundle from `pyrunc spec` with an absolute lct-
    cgroup path: (exit status, stdout, stderr)."""
    import subprocess
    from libcontainer import specconv
    cid = unique()
    bundle = tmp_path / cid
    bundle.mkdir()
    os.symlink(rootfs, bundle / "rootfs")
    spec = specconv.default_spec()
    spec["process"].update(terminal=False, args=args)
    spec["linux"]["cgroupsPath"] = f"/{cid}"
    if resources:
        spec["linux"]["resources"] = resources
    if namespaces:
        spec["linux"]["namespaces"] = [{"type": t} for t in namespaces]
    (bundle / "config.json").write_text(json.dumps(spec))
    r = subprocess.run([os.path.join(os.path.dirname(os.sys.executable), "pyrunc"), "--root",
                        str(tmp_path / "state"), "run", "--bundle", str(bundle), cid],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.skipif(not V1_HOST, reason="the v1 cgroup mount (v2 mounts cgroup2 itself)")
@pytest.mark.parametrize("cgroupns", [False, True])
def test_v1_cgroup_mount_shows_the_containers_own_cgroups(tmp_path, rootfs, cgroupns):
    ns = ["pid", "ipc", "uts", "mount", "network"] + (["cgroup"] if cgroupns else [])
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
              "ls /sys/fs/cgroup; "
              "echo 1 > /sys/fs/cgroup/pids/pids.max || echo ro; "
              "mkdir /sys/fs/cgroup/x || echo ro")
    status, out, err = pyrunc_run(tmp_path, rootfs, ["sh", "-c", script],
                                  {"memory": {"limit": 64 * MB}, "pids": {"limit": 33}}, ns)
    assert status == 0, err
    lines = out.split()
    assert lines[:2] == [str(64 * MB), "33"]
    names = set(os.path.basename(p) for p in common.v1_mounts().values())
    assert names | {"cpu", "cpuacct"} <= set(lines)
    assert lines[-2:] == ["ro", "ro"]


# --------------------------------------------------------------------------
# configs the host cannot serve, bad values
# --------------------------------------------------------------------------

def test_driver_the_host_lacks_is_refused(factory, make_config, monkeypatch):
    other = "v2" if V1_HOST else "v1"
    config = make_config(cgroups=configs.Cgroup(path=f"/{unique('cg')}", driver=other))
    with pytest.raises(ConfigError, match=f"cgroups.driver: cgroup {other} is not available"):
        factory.create(unique(), config)
    monkeypatch.setenv("LIBCONTAINER_CGROUP_DRIVER", other)
    config.cgroups.driver = ""
    with pytest.raises(ConfigError, match=f"^LIBCONTAINER_CGROUP_DRIVER={other}: cgroup "
                                          f"{other} is not available"):
        factory.create(unique(), config)
    monkeypatch.setenv("LIBCONTAINER_CGROUP_DRIVER", "v3")
    with pytest.raises(ConfigError, match=r"LIBCONTAINER_CGROUP_DRIVER: no cgroup driver "
                                          r"named 'v3' \(available: .*v1, v2\)"):
        factory.create(unique(), config)
    assert not os.path.isdir(factory.root) or os.listdir(factory.root) == []


@pytest.mark.skipif(not V1_HOST or "hugetlb" in common.v1_hierarchies(),
                    reason="needs a v1 host without the hugetlb controller")
def test_controller_the_host_lacks_is_refused(factory, make_config):
    cg = cgroup("v1")
    cg.resources.hugetlb_limit = [configs.HugepageLimit(page_size="2MB", limit=2 * MB)]
    with pytest.raises(ConfigError, match=r"cgroups\.resources\.hugetlb_limit: the hugetlb "
                                          r"cgroup controller is not mounted"):
        factory.create(unique(), make_config(cgroups=cg))


def test_disabled_driver_is_named(state_root, make_config):
    name = "v1" if V1_HOST else "v2"
    factory = libcontainer.new(state_root, disabled=[f"cgroups_{name}"])
    config = make_config(cgroups=configs.Cgroup(path=f"/{unique('cg')}"))
    with pytest.raises(ConfigError, match=f"is the cgroups_{name} plugin disabled"):
        factory.create(unique(), config)


@pytest.mark.parametrize("field, value", [
    ("memory", -5), ("memory_swap", -2), ("cpu_shares", 1), ("cpu_weight", 10001),
    ("cpu_quota", 10), ("cpu_period", 10), ("cpuset_cpus", "0-"), ("cpuset_mems", "a"),
    ("pids_limit", -3), ("blkio_weight", 5), ("freezer", "COLD"),
    ("hugetlb_limit", [configs.HugepageLimit(page_size="2M", limit=1)]),
    ("unified", {"cgroup.procs": "1"}),
])
def test_bad_resource_values_name_the_field(factory, make_config, field, value):
    cg = configs.Cgroup(path=f"/{unique('cg')}",
                        resources=configs.Resources(**{field: value}))
    with pytest.raises(ConfigError, match=rf"^cgroups\.resources\.{field}"):
        factory.create(unique(), make_config(cgroups=cg))


@pytest.mark.parametrize("kw, field", [
    ({"path": "relative"}, "cgroups.path"), ({"path": "/"}, "cgroups.path"),
    ({"path": "/a/../b"}, "cgroups.path"), ({"name": "a/b"}, "cgroups.name"),
    ({"allowed_devices": [configs.Device(type="p")]}, r"cgroups.allowed_devices\[0\].type"),
    ({"allowed_devices": [configs.Device(type="c", permissions="rx")]},
     r"cgroups.allowed_devices\[0\].permissions"),
])
def test_bad_cgroup_fields_are_named(factory, make_config, kw, field):
    with pytest.raises(ConfigError, match="^" + field):
        factory.create(unique(), make_config(cgroups=configs.Cgroup(**kw)))


# --------------------------------------------------------------------------
# pieces without a container
# --------------------------------------------------------------------------

def test_detection_uses_filesystem_types():
    mounts = common.mounts()
    assert all(fstype in ("cgroup", "cgroup2") for fstype, _, _ in mounts.values())
    if V1_HOST:
        assert common.detect() == "v1"
        assert "memory" in common.v1_hierarchies()
    else:
        assert common.detect() == "v2" and mounts["/sys/fs/cgroup"][0] == "cgroup2"


def test_v1_to_v2_conversions():
    assert [common.shares_to_weight(s) for s in (2, 1024, 262144)] == [1, 39, 10000]
    assert [common.blkio_to_io_weight(w) for w in (10, 500, 1000)] == [1, 4950, 10000]
    assert common.swap_to_v2(256 * MB, 64 * MB) == 192 * MB
    assert common.swap_to_v2(-1, 64 * MB) == "max"
    assert common.weight_to_shares(common.shares_to_weight(1024)) in range(980, 1030)


def test_device_filter_program_shape():
    from libcontainer.plugins.cgroups_v2 import devicefilter
    rule = configs.Device(type="c", major=1, minor=3, permissions="rw")
    # prologue 6 + block (type, access 3, major, minor, mov, exit = 8) + default deny 2
    assert len(devicefilter.program([rule])) == (6 + 8 + 2) * 8
    # a rule matching everything ends the program: what precedes it is never reached
    everything = configs.Device(type="a", permissions="rwm")
    assert len(devicefilter.program([rule, everything])) == (6 + 2) * 8


def test_bpf_verifier_rejection_says_why():
    from libcontainer.linux import bpf
    with pytest.raises(OSError) as info:     # exits without setting R0
        bpf.prog_load(bpf.PROG_TYPE.CGROUP_DEVICE, bpf.exit_())
    assert info.value.filename.startswith("bpf(BPF_PROG_LOAD, CGROUP_DEVICE")
    assert "verifier: R0 !read_ok" in info.value.strerror


def _cgroup2_mountpoint():
    for point, (fstype, root, _) in common.mounts().items():
        if fstype == "cgroup2" and root == "/":
            return point
    return None


@pytest.mark.skipif(_cgroup2_mountpoint() is None, reason="no cgroup2 hierarchy mounted")
def test_device_filter_loads_and_enforces_on_any_cgroup2_mount():
    """The eBPF program works wherever a cgroup2 hierarchy is mounted (on a
    hybrid host: /sys/fs/cgroup/unified), even when v1 is the driver."""
    from libcontainer.plugins.cgroups_v2 import devicefilter
    d = os.path.join(_cgroup2_mountpoint(), unique("bpf"))
    os.mkdir(d)
    try:
        rules = list(configs.DEFAULT_ALLOWED_DEVICES) + [
            configs.Device(type="c", major=1, minor=7, permissions="rw", allow=False)]
        devicefilter.load_and_attach(d, rules)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
                results = []
                for path in ("/dev/null", "/dev/full"):
                    try:
                        os.close(os.open(path, os.O_RDWR))
                        results.append("ok")
                    except OSError as e:
                        results.append(e.strerror)
                os.write(w, json.dumps(results).encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r) as f:
            results = json.loads(f.read())
        os.waitpid(pid, 0)
        assert results == ["ok", "Operation not permitted"]
    finally:
        os.rmdir(d)



# --------------------------------------------------------------------------
# exec --cgroup, driver side: a process into a sub-cgroup
# --------------------------------------------------------------------------

def test_join_sub_puts_a_process_in_a_sub_cgroup(driver, start):
    from libcontainer.plugins.cgroups import join_sub
    container, process = start(["sleep", "1000"], cgroup(driver))
    dirs = cgroup_dirs(container)
    for d in dirs:
        os.makedirs(os.path.join(d, "sub", "leaf"))
    pick = "memory" if driver == "v1" else None
    extra = libcontainer.Process(args=["sleep", "1000"])
    container.run(extra)
    join_sub(container, extra.pid, "sub/leaf", [pick] if pick else None)
    with open(f"/proc/{extra.pid}/cgroup") as f:
        lines = dict(line.strip().split(":", 2)[1:] for line in f)
    path = container.stash["cgroups"]["path"]
    if driver == "v1":
        assert lines["memory"] == f"{path}/sub/leaf" and lines["pids"] == path
    else:
        assert lines[""] == f"{path}/sub/leaf"
    assert extra.pid in container.processes()
    for bad, message in (("../x", r"no '\.\.'"), ("/sub/../../x", r"no '\.\.'"),
                         ("nope", "does not exist")):
        with pytest.raises(LibcontainerError, match=message):
            join_sub(container, extra.pid, bad)
    with pytest.raises(LibcontainerError, match="unknown controller 'bogus'"):
        join_sub(container, extra.pid, "sub", ["bogus"])
    container.destroy()      # the sub-cgroups, with a process, go too
    assert not any(os.path.exists(d) for d in dirs)


# --------------------------------------------------------------------------
# issue 13/14: more resources, update ordering, OOM events
# --------------------------------------------------------------------------

def cgroup_file(container, controller, name):
    stash = container.stash["cgroups"]
    d = stash["dirs"][controller] if "dirs" in stash else cgroup_dirs(container)[0]
    return common.read(d, name).strip()


def test_more_resource_fields_reach_their_files(driver, start):
    if driver == "v1":
        r = dict(cpu_quota=50000, cpu_period=100000, cpu_burst=20000, cpu_idle=1,
                 cpu_rt_period=1000000, cpu_rt_runtime=10000, memory_swappiness=17,
                 memory_use_hierarchy=True)
        files = {("cpu", "cpu.cfs_burst_us"): "20000", ("cpu", "cpu.idle"): "1",
                 ("cpu", "cpu.rt_period_us"): "1000000", ("cpu", "cpu.rt_runtime_us"): "10000",
                 ("memory", "memory.swappiness"): "17", ("memory", "memory.use_hierarchy"): "1"}
        for field, _, name in __import__("libcontainer.plugins.cgroups_v1",
                                         fromlist=["_FILES"])._FILES:
            if field in r and not os.path.exists(os.path.join(common.v1_mounts()["cpu" if
                                                 field.startswith("cpu") else "memory"], name)):
                pytest.skip(f"this kernel has no {name}")
    else:
        r = dict(cpu_quota=50000, cpu_period=100000, cpu_burst=20000, cpu_idle=1)
        files = {("cpu", "cpu.max.burst"): "20000", ("cpu", "cpu.idle"): "1"}
    container, _ = start(["sleep", "1000"], cgroup(driver, **r))
    assert {k: cgroup_file(container, *k) for k in files} == files
    # update: lower burst and quota together, whatever the order the kernel needs
    container.set(configs.Resources(cpu_quota=10000, cpu_period=100000, cpu_burst=5000))
    burst = ("cpu", "cpu.cfs_burst_us" if driver == "v1" else "cpu.max.burst")
    assert cgroup_file(container, *burst) == "5000"


@pytest.mark.parametrize("field, value, v1_has, v2_message", [
    ("blkio_leaf_weight", 500, "blkio/blkio.leaf_weight", "cgroup v2 has no leaf weight"),
    ("net_cls_classid", 0x100001, "net_cls", "net_cls"),
    ("net_prio_ifpriomap", {"lo": 3}, "net_prio", "net_prio"),
    ("rdma", {"mlx5_0": {"hcaHandles": 2}}, "rdma", None),
    ("unified", {"memory.high": "max"}, None, None),
    ("memory_swappiness", 10, "memory/memory.swappiness", "no per-cgroup swappiness"),
    ("cpu_rt_runtime", 1000, "cpu/cpu.rt_runtime_us", "no real-time group scheduling"),
])
def test_fields_the_host_cannot_serve_are_refused_by_name(driver, factory, make_config, field,
                                                          value, v1_has, v2_message):
    """One line naming the field, from factory.create: nothing is made."""
    if driver == "v1" and v1_has and os.path.exists(os.path.join(common.ROOT, v1_has)):
        pytest.skip(f"this host has {v1_has}")
    if driver == "v2" and (v2_message is None and field != "rdma" or field == "rdma" and "rdma"
                           in common.read(common.ROOT, "cgroup.controllers")):
        pytest.skip(f"{field} works on cgroup v2 here")
    cg = cgroup(driver, **{field: value})
    with pytest.raises(ConfigError) as info:
        factory.create(unique(), make_config(cgroups=cg))
    message = str(info.value)
    assert message.startswith(f"cgroups.resources.{field}") and "\n" not in message
    if field == "unified":
        assert "invalid configuration" in message
    elif driver == "v2":
        assert v2_message in message


def test_update_memory_unlimited_lifts_swap_and_check_before_update(driver, start):
    swap = driver == "v2" or common.read(common.v1_mounts()["memory"],
                                         "memory.memsw.limit_in_bytes") is not None
    r = dict(memory=64 * MB, memory_swap=128 * MB) if swap else dict(memory=64 * MB)
    container, _ = start(["sh", "-c", "dd if=/dev/zero of=/dev/shm/f bs=1M count=8; "
                          "exec sleep 1000"], cgroup(driver, **r))
    eventually(lambda: container.stats()["memory"]["usage"] >= 8 * MB, what="8 MiB charged")
    with pytest.raises(LibcontainerError, match=r"^cgroups\.resources\.memory_check_before_"
                                                r"update: the new memory limit 4194304 is "
                                                r"below the current usage"):
        container.set(configs.Resources(memory=4 * MB, memory_check_before_update=True))
    container.set(configs.Resources(memory=-1))
    m = container.stats()["memory"]
    assert m["limit"] is None and (m["swap_limit"] is None or not swap)
    if swap and driver == "v1":
        assert common.v1_limit(int(cgroup_file(container, "memory",
                                               "memory.memsw.limit_in_bytes"))) is None


def test_period_shortened_under_a_parent_quota(driver, factory, make_config):
    """The new period alone would exceed the parent's quota with the old
    quota: the kernel needs the quota first."""
    parent = "/" + unique("quota")
    d = os.path.join(common.v1_mounts()["cpu"] if driver == "v1" else common.ROOT,
                     parent.lstrip("/"))
    os.mkdir(d)
    container = None
    try:
        if driver == "v1":
            common.write(d, "cpu.cfs_quota_us", 100000, "test")
        else:
            common.write(d, "cpu.max", "100000 100000", "test")
        cg = configs.Cgroup(path=f"{parent}/c", driver=driver,
                            resources=configs.Resources(cpu_quota=50000, cpu_period=100000))
        container = factory.create(unique(), make_config(cgroups=cg))
        container.start(libcontainer.Process(args=["sleep", "1000"]))
        container.set(configs.Resources(cpu_quota=5000, cpu_period=10000))
        if driver == "v1":
            assert (cgroup_file(container, "cpu", "cpu.cfs_quota_us"),
                    cgroup_file(container, "cpu", "cpu.cfs_period_us")) == ("5000", "10000")
        else:
            assert cgroup_file(container, "cpu", "cpu.max") == "5000 10000"
    finally:
        if container is not None:
            container.destroy()
        os.rmdir(d)


@pytest.mark.skipif(not V1_HOST, reason="pyrunc here runs the v1 driver")
def test_pyrunc_update_rt_burst_idle_and_events_report_oom(tmp_path, rootfs):
    import subprocess
    pyrunc = os.path.join(os.path.dirname(os.sys.executable), "pyrunc")
    root = str(tmp_path / "state")
    cid = unique()
    bundle = tmp_path / cid
    bundle.mkdir()
    os.symlink(rootfs, bundle / "rootfs")
    from libcontainer import specconv
    spec = specconv.default_spec()
    # dd's 64 MiB buffer is OOM-killed under 32 MiB; the shell lives on
    spec["process"].update(terminal=False, args=[
        "sh", "-c", "while :; do dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; "
        "sleep 0.5; done"])
    spec["linux"]["cgroupsPath"] = f"/{cid}"
    spec["linux"]["resources"] = {"memory": {"limit": 32 * MB}}
    (bundle / "config.json").write_text(json.dumps(spec))

    def call(*args):
        return subprocess.run([pyrunc, "--root", root, *args], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    # the detached container keeps the runtime's stdio: no pipes there
    r = subprocess.run([pyrunc, "--root", root, "run", "--detach", "--bundle", str(bundle), cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0
    try:
        r = call("update", "--cpu-rt-period", "1000000", "--cpu-rt-runtime", "20000",
                 "--cpu-burst", "0", "--cpu-idle", "0", "--memory", "-1", cid)
        assert r.returncode == 0, r.stderr
        cpu = os.path.join(common.v1_mounts()["cpu"], cid)
        assert common.read(cpu, "cpu.rt_runtime_us").strip() == "20000"
        mem = os.path.join(common.v1_mounts()["memory"], cid)
        assert common.v1_limit(common.read_int(mem, "memory.limit_in_bytes")) is None
        assert call("update", "--memory", "32M", cid).returncode == 0
        events = subprocess.Popen([pyrunc, "--root", root, "events", "--interval", "1s", cid],
                                  stdout=subprocess.PIPE, text=True)
        try:
            kinds = []
            for line in events.stdout:
                record = json.loads(line)
                kinds.append(record["type"])
                assert record["id"] == cid
                if "oom" in kinds and "stats" in kinds:
                    break
        finally:
            events.kill()
            events.wait()
        assert "oom" in kinds
    finally:
        call("delete", "--force", cid)


from test_pyrunc import podman  # noqa: E402,F401  (the module-scoped fixture)


@pytest.mark.clients
@pytest.mark.skipif(not V1_HOST, reason="the v1 cgroup mount (v2 mounts cgroup2 itself)")
def test_podman_memory_limit_is_visible_inside(podman):  # noqa: F811
    """podman --memory 64m: the container reads its own limit under /sys/fs/cgroup."""
    p = podman("run", "--rm", "--memory", "64m", "lct-busybox", "cat",
           "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(64 * MB)


def test_device_access_strings_are_as_lenient_as_runc():
    from libcontainer import specconv
    spec = specconv.default_spec()
    spec["linux"]["resources"] = {"devices": [
        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "wr"},
        {"type": "c", "major": 1, "minor": 7, "access": ""},     # allow: false, access rwm
    ]}
    rules = specconv.to_config(spec, "/srv/bundle", "c1").cgroups.allowed_devices
    assert (rules[0].permissions, rules[0].allow) == ("wr", True)
    assert (rules[1].permissions, rules[1].allow) == ("rwm", False)


def test_teardown_from_the_stash_saved_before_the_cgroup_was_made(driver):
    """A runtime killed after making the directories but before saving
    again: the first stash already names them, and kills nothing."""
    import importlib
    drv = importlib.import_module(f"libcontainer.plugins.cgroups_{driver}").Driver()
    path = f"/{unique('crash')}/c"
    m = drv.new(path)
    saved = json.loads(json.dumps(m.stash()))
    assert saved["owned"] is False and saved["created"]
    m.claim()
    assert residue()
    drv.load(saved).remove()
    assert residue() == []
