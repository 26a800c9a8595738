"""Attacks through cgroups (issue 15), each on a real container: taking over
a host cgroup and destroying it, signalling processes of a joined PID
namespace, slipping a device open past a partial deny rule.

``[v1]`` runs on this host; ``[v2]`` in the cgroup v2 guest through
tests/test_cgroups_v2_vm.py.
"""
import os
import subprocess

import pytest
from conftest import unique
from test_cgroups import (cgroup, driver, eventually, no_cgroup_residue, output,  # noqa: F401
                          start)

import libcontainer
from libcontainer import configs, specconv
from libcontainer.errors import ConfigError, LibcontainerError
from libcontainer.plugins.cgroups import common


def _hierarchies(driver):
    """The directories a cgroup path lives under, for `driver`."""
    if driver == "v1":
        return sorted(common.mounts())      # every hierarchy, named and cgroup2 ones too
    return [common.ROOT]


def _controller_dir(controller):
    return next(p for p, (_, _, opts) in common.mounts().items()
                if controller in opts.split(","))


@pytest.fixture
def victim(driver):
    """A host cgroup /<prefix>victim with a `sleep` in its sub-cgroup child
    (in every hierarchy): (cgroup path, the sleep)."""
    path = "/" + unique("victim")
    made = []
    sleep = subprocess.Popen(["sleep", "1000"])
    try:
        for h in _hierarchies(driver):
            top = os.path.join(h, path.lstrip("/"))
            for d in (top, os.path.join(top, "child")):
                os.mkdir(d)
                made.append(d)
                for name in ("cpuset.cpus", "cpuset.mems"):     # a v1 cpuset starts empty
                    if driver == "v1" and common.read(d, name) == "\n":
                        with open(os.path.join(d, name), "w") as f:
                            f.write(common.read(os.path.dirname(d), name).strip())
            with open(os.path.join(top, "child", "cgroup.procs"), "w") as f:
                f.write(str(sleep.pid))
        yield path, sleep
    finally:
        sleep.kill()
        sleep.wait()
        for d in reversed(made):
            common.rmdir_tree(d)        # retries EBUSY while the killed sleep exits


def test_existing_host_cgroup_with_processes_below_is_not_taken_over(driver, victim, factory,
                                                                     make_config):
    path, sleep = victim
    container = factory.create(unique(), make_config(cgroups=configs.Cgroup(path=path,
                                                                           driver=driver)))
    try:
        with pytest.raises(LibcontainerError, match="container's cgroup is not empty: 1 "
                                                    "process"):
            container.start(libcontainer.Process(args=["true"]))
    finally:
        container.destroy()
    assert sleep.poll() is None
    for h in _hierarchies(driver):
        child = os.path.join(h, path.lstrip("/"), "child")
        assert common.read_pids(child) == [sleep.pid], child
    if driver == "v1":      # no device rule reached the host cgroup
        devices = os.path.join(_controller_dir("devices"), path.lstrip("/"))
        assert common.read(devices, "devices.list").strip() == "a *:* rwm"


def test_frozen_existing_cgroup_is_refused_before_spawning(driver, factory, make_config):
    path = "/" + unique("frozen")
    d = os.path.join(_controller_dir("freezer") if driver == "v1" else common.ROOT,
                     path.lstrip("/"))
    os.mkdir(d)
    try:
        with open(os.path.join(d, "freezer.state" if driver == "v1" else "cgroup.freeze"),
                  "w") as f:
            f.write("FROZEN" if driver == "v1" else "1")
        container = factory.create(unique(), make_config(cgroups=configs.Cgroup(
            path=path, driver=driver)))
        try:
            with pytest.raises(LibcontainerError, match="unexpectedly frozen"):
                container.start(libcontainer.Process(args=["true"]))
            assert container.init_pid == 0
        finally:
            container.destroy()
        assert os.path.isdir(d)     # not ours: left as it was
    finally:
        with open(os.path.join(d, "freezer.state" if driver == "v1" else "cgroup.freeze"),
                  "w") as f:
            f.write("THAWED" if driver == "v1" else "0")
        os.rmdir(d)


def test_empty_existing_cgroup_is_adopted_and_left_in_place(driver, factory, make_config):
    path = "/" + unique("adopt")
    dirs = [os.path.join(h, path.lstrip("/")) for h in _hierarchies(driver)]
    for d in dirs:
        os.mkdir(d)
    try:
        container = factory.create(unique(), make_config(cgroups=configs.Cgroup(
            path=path, driver=driver, resources=configs.Resources(pids_limit=9))))
        process = libcontainer.Process(args=["sleep", "1000"])
        container.start(process)
        assert container.processes() == [process.pid]
        container.destroy()
        assert process.wait() == 137
        assert all(os.path.isdir(d) and not common.read_pids(d) for d in dirs)
    finally:
        for d in dirs:
            os.rmdir(d)


@pytest.mark.parametrize("path", ["../../kubepods", "/a/../../b", ".."])
def test_cgroups_path_with_dotdot_is_refused_before_normalising(path):
    spec = specconv.default_spec()
    spec["linux"]["cgroupsPath"] = path
    with pytest.raises(ConfigError, match=r"linux\.cgroupsPath: .* may not contain '\.\.'"):
        specconv.to_config(spec, "/srv/bundle", "c1")


@pytest.mark.parametrize("name", [".", ".."])
def test_cgroup_name_dot_is_refused(factory, make_config, name):
    with pytest.raises(ConfigError, match="^cgroups.name: "):
        factory.create(unique(), make_config(cgroups=configs.Cgroup(name=name)))


# --------------------------------------------------------------------------
# v2 device filter: a deny rule covering part of an allowed access
# --------------------------------------------------------------------------

def test_partial_deny_rule_is_enforced(driver, start, tmp_path):
    """``allow c 1:5 rwm`` (a default rule) then ``deny c 1:5 w``: reading
    /dev/zero works, opening it read-write does not -- on v1 (the kernel's
    exception list) and on v2 (the eBPF filter used to skip the deny rule as
    it did not cover the whole access asked)."""
    rules = list(configs.DEFAULT_ALLOWED_DEVICES) + [
        configs.Device(type="c", major=1, minor=5, permissions="w", allow=False)]
    script = ("(exec 3</dev/zero) 2>&1 && echo r: ok; "
              "(exec 3<>/dev/zero) 2>&1 && echo rw: ok; true")
    _, process = start(["sh", "-c", script], cgroup(driver, devices=rules))
    assert process.wait() == 0
    lines = [ln.rsplit(": ", 1)[-1] for ln in output(tmp_path)[0].splitlines()]
    assert lines == ["ok", "Operation not permitted"]


def test_device_rules_emulate_the_v1_exception_list():
    from libcontainer.plugins.cgroups_v2.devicefilter import emulate
    D = configs.Device
    # a later "a" resets everything before it
    assert emulate([D(type="c", major=1, minor=3, permissions="rw"),
                    D(type="a", permissions="rwm")]) == (True, {})
    # allows on one key merge; a deny narrows only the exact key
    default, ex = emulate([D(type="c", major=1, minor=3, permissions="r"),
                           D(type="c", major=1, minor=3, permissions="w"),
                           D(type="c", major=1, minor=-1, permissions="w", allow=False)])
    assert default is False and ex == {("c", 1, 3): 6}
    default, ex = emulate([D(type="c", major=1, minor=3, permissions="w", allow=False)])
    assert ex == {}
    # an allow-all default with deny exceptions
    default, ex = emulate([D(type="a", permissions="rwm"),
                           D(type="b", major=8, minor=-1, permissions="w", allow=False)])
    assert default is True and ex == {("b", 8, -1): 4}


# --------------------------------------------------------------------------
# kill --all / destroy in a joined PID namespace, without a cgroup
# --------------------------------------------------------------------------

def test_kill_all_in_a_joined_pid_namespace_spares_the_others(factory, make_config):
    """B joins A's PID namespace by path and has no cgroup: signalling all
    of B's processes, and destroying B, must leave A's alone."""
    a = factory.create(unique("a"), make_config())
    b = None
    try:
        a_init = libcontainer.Process(args=["sh", "-c", "sleep 1000 & exec sleep 1000"])
        a.start(a_init)
        eventually(lambda: len(a.processes()) == 2, what="A's two sleeps")
        a_pids = a.processes()
        ns = [configs.Namespace("NEWPID", f"/proc/{a_init.pid}/ns/pid"),
              *(configs.Namespace(t) for t in ("NEWNS", "NEWUTS", "NEWIPC"))]
        b = factory.create(unique("b"), make_config(namespaces=ns))
        b_init = libcontainer.Process(args=["sh", "-c", "sleep 1000 & exec sleep 1000"])
        b.start(b_init)
        eventually(lambda: len(b.processes()) >= 2, what="B's two sleeps")
        b_pids = b.processes()
        assert b_init.pid in b_pids and not set(b_pids) & set(a_pids), (a_pids, b_pids)
        b.signal(9, all=True)
        assert b_init.wait() == 137
        b.destroy()
        assert a.status() == "running"
        assert all(os.path.exists(f"/proc/{p}") for p in a_pids)
    finally:
        if b is not None:
            b.destroy()
        a.destroy()
