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
from test_cgroups import (V1_HOST, cgroup, device_results, driver, no_cgroup_residue,  # noqa: F401
                          output, start)

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
                    if common.read(d, name) == "\n":
                        with open(os.path.join(d, name), "w") as f:
                            f.write(common.read(os.path.dirname(d), name).strip())
            with open(os.path.join(top, "child", "cgroup.procs"), "w") as f:
                f.write(str(sleep.pid))
        yield path, sleep
    finally:
        sleep.kill()
        sleep.wait()
        for d in reversed(made):
            os.rmdir(d)


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
