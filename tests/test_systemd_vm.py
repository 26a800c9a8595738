"""The systemd cgroup driver (and AppArmor) on a real systemd: the ``in_vm``
tests run inside the ``cgv2-vm --systemd`` guest (systemd 252 as PID 1,
D-Bus, cgroup v2, AppArmor), booted once by ``test_systemd_driver_in_vm``
for this file's and tests/test_lsm.py's ``in_vm`` tests together.

On the host the ``in_vm`` tests skip themselves; in the guest the launcher
does. See /work/shared/tools/README-cgv2-vm.md.
"""
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import CGV2_VM, REPO, cgv2_vm_problem, unique
from test_pyrunc import PYRUNC, Runtime

from libcontainer.plugins.cgroups import common

TOOL = CGV2_VM
CG = "/sys/fs/cgroup"
IN_GUEST = os.environ.get("CGV2_VM") == "1"
SYSTEMD_GUEST = IN_GUEST and os.path.isdir("/run/systemd/system") and common.mode() == "unified"
in_vm = pytest.mark.skipif(not SYSTEMD_GUEST, reason="runs in the cgv2-vm --systemd guest "
                           "(test_systemd_driver_in_vm boots it)")
MB = 1 << 20


@pytest.fixture
def rt(tmp_path, rootfs):
    runtime = Runtime(tmp_path, rootfs)
    yield runtime
    assert not runtime.cleanup(), "containers left behind"


def systemd_bundle(rt, cgroups_path, args=("sleep", "1000"), **resources):
    def edit(spec):
        spec["linux"]["cgroupsPath"] = cgroups_path
        spec["root"]["path"] = rt.rootfs       # runc takes no symlink
        spec["linux"]["resources"] = resources
        # no cgroup namespace: /proc/self/cgroup shows the path from the root
        spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                       if n["type"] != "cgroup"]
    return rt.bundle(args, cid=cgroups_path.rsplit(":", 1)[1], edit=edit)


def show(unit, prop):
    return subprocess.run(["systemctl", "show", "-p", prop, "--value", unit],
                          capture_output=True, text=True, check=True).stdout.strip()


def read(path):
    with open(path) as f:
        return f.read().strip()


# -- host ---------------------------------------------------------------------------

@pytest.mark.skipif(common.mode() == "unified", reason="checks the refusal on a v1/hybrid host")
def test_systemd_driver_refused_on_a_cgroup_v1_host(rt):
    cid, bundle = systemd_bundle(rt, f"system.slice:pyrunc:{unique()}")
    r = rt("--systemd-cgroup", "run", "--bundle", bundle, cid)
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0
    assert "systemd cgroup driver needs cgroup v2" in r.stderr
    assert rt("list", "-q").stdout.strip() == ""


@pytest.mark.parametrize("path, why", [
    ("bad--name.slice:p:x", "not a valid slice name"),
    ("system:p:x", "not a slice name"),
])
def test_invalid_slice_is_one_line_naming_it(rt, path, why):
    cid, bundle = rt.bundle(("true",), edit=lambda s: s["linux"].update(cgroupsPath=path))
    r = rt("--systemd-cgroup", "run", "--bundle", bundle, cid)
    assert r.returncode != 0
    if common.mode() == "unified":
        assert why in r.stderr and path.split(":")[0] in r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_no_bus_is_one_line_naming_the_path(monkeypatch):
    from libcontainer.plugins.cgroups.common import CgroupError
    from libcontainer.plugins.cgroups_systemd.systemd import Bus
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    with pytest.raises(CgroupError) as e:
        Bus("cgroups.path /system.slice/x.scope")
    assert str(e.value) == ("cgroups.path /system.slice/x.scope: cannot reach systemd on the "
                            "D-Bus system bus /nonexistent/bus: No such file or directory (is "
                            "systemd running with D-Bus?)")


def _usable():
    if SYSTEMD_GUEST:
        return "this is the guest"
    return cgv2_vm_problem()


def test_systemd_driver_in_vm():
    """Boot the systemd guest once; run the in_vm tests of this file and
    of tests/test_lsm.py (AppArmor) there."""
    why = _usable()
    if why:
        pytest.skip(why)
    cmd = [TOOL, "--systemd", "--timeout", "900", "--", sys.executable, "-m", "pytest", "-q",
           "-p", "no:cacheprovider", "tests/test_systemd_vm.py", "tests/test_lsm.py",
           "-k", "in_vm and not test_systemd_driver_in_vm"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1000)
    tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-40:])
    if result.returncode == 125:
        pytest.fail(f"the cgv2-vm guest failed to boot:\n{tail}")
    assert result.returncode == 0, f"the in_vm tests failed in the guest:\n{tail}"
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and "skipped" not in result.stdout, \
        f"every in_vm test must run in the guest:\n{tail}"


# -- in the guest ---------------------------------------------------------------------

@in_vm
def test_scope_lifecycle_in_vm(rt):
    cid = unique()
    unit = f"pyrunc-{cid}.scope"
    scope = f"{CG}/system.slice/{unit}"
    cid, bundle = systemd_bundle(rt, f"system.slice:pyrunc:{cid}",
                                 memory={"limit": 64 * MB},
                                 cpu={"quota": 50000, "period": 100000},
                                 pids={"limit": 100})
    pid_file = os.path.join(bundle, "pid")
    rt.ok("--systemd-cgroup", "create", "--pid-file", pid_file, "--bundle", bundle, cid)
    pid = int(read(pid_file))
    assert read(f"/proc/{pid}/cgroup") == f"0::/system.slice/{unit}"
    assert read(f"{scope}/cgroup.procs") == str(pid)     # the holder is gone
    assert show(unit, "MemoryMax") == str(64 * MB) == read(f"{scope}/memory.max")
    assert show(unit, "TasksMax") == "100" == read(f"{scope}/pids.max")
    assert show(unit, "Delegate") == "yes"
    assert read(f"{scope}/cpu.max") == "50000 100000"
    rt.ok("start", cid)

    rt.ok("update", "--memory", str(32 * MB), cid)
    assert show(unit, "MemoryMax") == str(32 * MB) == read(f"{scope}/memory.max")
    # the limits are systemd's own: a reload re-applies them, unchanged
    files = [read(f"{scope}/{f}") for f in ("memory.max", "cpu.max", "pids.max")]
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    assert [read(f"{scope}/{f}") for f in ("memory.max", "cpu.max", "pids.max")] == files
    stats = json.loads(rt.ok("events", "--stats", cid).stdout)["data"]
    assert stats["memory"]["usage"]["limit"] == 32 * MB
    assert stats["pids"] == {"current": 1, "limit": 100}

    rt.ok("pause", cid)
    assert rt.state(cid)["status"] == "paused"
    assert read(f"{scope}/cgroup.freeze") == "1"
    rt.ok("resume", cid)
    assert read(f"{scope}/cgroup.freeze") == "0"
    assert str(pid) in rt.ok("ps", cid).stdout

    rt.ok("delete", "--force", cid)
    assert show(unit, "LoadState") == "not-found"
    assert not os.path.exists(scope)


@in_vm
def test_same_scope_and_limits_as_runc_in_vm(rt, tmp_path):
    """runc 1.1 (--systemd-cgroup) and pyrunc, same bundle: the same unit
    path, the same values in the files (a quota that systemd rounds), and
    the device rules enforced (the guest's disk node is there, not allowed)."""
    script = ("c=$(cut -d: -f3 /proc/self/cgroup); echo $c; "
              "cat /sys/fs/cgroup$c/memory.max /sys/fs/cgroup$c/cpu.max /sys/fs/cgroup$c/pids.max; "
              "[ -b /dev/vda ] && echo vda-node; "
              "head -c1 /dev/vda >/dev/null 2>&1 && echo vda-read || echo vda-denied")
    seen = {}
    for runtime in ("runc", "pyrunc"):
        cid, bundle = systemd_bundle(rt, f"system.slice:cmp:{unique()}", ("sh", "-c", script),
                                     memory={"limit": 48 * MB},
                                     cpu={"quota": 33333, "period": 100000},
                                     pids={"limit": 77})
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        vda = os.stat("/dev/vda").st_rdev
        spec["linux"]["devices"] = [{"path": "/dev/vda", "type": "b", "major": os.major(vda),
                                     "minor": os.minor(vda)}]
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        cmd = [{"runc": "runc", "pyrunc": PYRUNC}[runtime], "--root", str(tmp_path / runtime), "--systemd-cgroup", "run",
               "--bundle", bundle, cid]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        seen[runtime] = r.stdout.replace(cid, "ID")
        assert show(f"cmp-{cid}.scope", "LoadState") == "not-found"
    assert seen["pyrunc"] == seen["runc"]
    assert seen["pyrunc"].split("\n")[0] == "/system.slice/cmp-ID.scope"
    assert seen["pyrunc"].split("\n")[-3:] == ["vda-node", "vda-denied", ""]


@in_vm
def test_nested_kubepods_slice_in_vm(rt):
    pod = unique().replace("-", "_")
    slice_ = f"kubepods-burstable-pod{pod}.slice"
    cid, bundle = systemd_bundle(rt, f"{slice_}:cri-containerd:{unique()}",
                                 args=("cat", "/proc/self/cgroup"))
    try:
        r = rt.ok("--systemd-cgroup", "run", "--bundle", bundle, cid)
        path = f"/kubepods.slice/kubepods-burstable.slice/{slice_}/cri-containerd-{cid}.scope"
        assert r.stdout.strip() == f"0::{path}"
        assert not os.path.exists(CG + path)
        assert show(f"cri-containerd-{cid}.scope", "LoadState") == "not-found"
    finally:
        subprocess.run(["systemctl", "stop", slice_], capture_output=True)


@in_vm
def test_existing_unit_is_refused_and_left_alone_in_vm(rt):
    path = f"system.slice:pyrunc:{unique()}"
    first, bundle = systemd_bundle(rt, path)
    pid_file = os.path.join(bundle, "pid")
    rt.ok("--systemd-cgroup", "run", "--detach", "--pid-file", pid_file, "--bundle", bundle,
          first)
    other = unique()
    r = rt("--systemd-cgroup", "run", "--bundle", bundle, other)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0
    assert "already exists" in r.stderr and path.rsplit(":", 1)[1] in r.stderr
    # the first container's scope and init are untouched
    assert read(f"{CG}/system.slice/pyrunc-{first}.scope/cgroup.procs") == read(pid_file)
    assert not os.path.exists(os.path.join(rt.root, other))
    rt.ok("delete", "--force", first)


@in_vm
def test_oom_killed_scope_is_forgotten_in_vm(rt):
    """An OOM kill can leave the scope "failed" (still loaded): delete
    resets it, so the name can be used again."""
    cid, bundle = systemd_bundle(rt, f"system.slice:pyrunc:{unique()}",
                                 ("dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"),
                                 memory={"limit": 16 * MB})
    assert rt("--systemd-cgroup", "run", "--bundle", bundle, cid).returncode == 137
    assert show(f"pyrunc-{cid}.scope", "LoadState") == "not-found"
    assert not os.path.exists(f"{CG}/system.slice/pyrunc-{cid}.scope")


@in_vm
def test_no_bus_leaves_nothing_in_vm(rt, monkeypatch):
    cid, bundle = systemd_bundle(rt, f"system.slice:pyrunc:{unique()}")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    r = rt("--systemd-cgroup", "run", "--bundle", bundle, cid)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0
    assert f"/system.slice/pyrunc-{cid}.scope: cannot reach systemd" in r.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert not os.path.exists(f"{CG}/system.slice/pyrunc-{cid}.scope")


@in_vm
def test_library_driver_in_vm(rt, factory, make_config):
    """The library: cgroups.driver "systemd" with a parent slice."""
    from libcontainer import configs
    from conftest import capture
    name = unique()
    config = make_config(cgroups=configs.Cgroup(driver="systemd", parent="system.slice",
                                                name=name,
                                                resources=configs.Resources(pids_limit=50)))
    container = factory.create(name, config)
    try:
        status, out = capture(container, ["cat", "/proc/self/cgroup"], join=False)
        assert status == 0 and out.strip() == f"0::/system.slice/{name}.scope"
    finally:
        container.destroy()
    assert show(f"{name}.scope", "LoadState") == "not-found"
