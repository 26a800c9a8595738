"""Every hook is documented and is called by the lifecycle (datasette-style)."""
import os

import libcontainer
from libcontainer import configs, hookimpl, hookspecs

from conftest import REPO, unique

HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("libcontainer_"))


def test_every_hook_is_documented():
    doc = open(os.path.join(REPO, "docs", "plugins.md")).read()
    missing = [h for h in HOOKS if f"`{h}(" not in doc]
    assert not missing, f"hooks missing from docs/plugins.md: {missing}"


class Recorder:
    """Implements every hook; child-side calls are written to an inherited
    pipe, since the child's memory is not ours."""

    def __init__(self, fd):
        self.fd = fd
        self.calls = []

    def _rec(self, name):
        self.calls.append(name)
        try:
            os.write(self.fd, (name + "\n").encode())
        except OSError:
            # the child closed every fd of ours once the process's stdio were
            # installed: the pipe is its first extra fd then
            os.write(3, (name + "\n").encode())


def _make_impl(name):
    spec_args = {
        "libcontainer_register": "registry",
        "libcontainer_validate_config": "config, registry",
        "libcontainer_check_config": "config, registry",
        "libcontainer_processes": "container",
        "libcontainer_stats": "container, stats",
        "libcontainer_freeze": "container",
        "libcontainer_thaw": "container",
        "libcontainer_update": "container, resources",
        "libcontainer_teardown": "container",
        "libcontainer_post_clone": "container, process, pid",
        "libcontainer_runtime_ready": "container, process, pid",
        "libcontainer_post_start": "container, process, pid",
    }.get(name, "container, process")
    ns = {}
    exec(f"def {name}(self, {spec_args}):\n    self._rec({name!r})\n", ns)
    return hookimpl(ns[name])


for _h in HOOKS:
    setattr(Recorder, _h, _make_impl(_h))


def _has_freezer(pm):
    return bool(pm.hook.libcontainer_freeze.get_hookimpls())


def test_every_hook_is_called(state_root, make_config):
    r, w = os.pipe()
    factory = libcontainer.new(state_root)
    freezer = _has_freezer(factory.plugin_manager)
    recorder = Recorder(w)
    factory.plugin_manager.register(recorder, "recorder")
    config = make_config(namespaces=[configs.Namespace(t) for t in
                                     ("NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET", "NEWCGROUP")])
    if freezer:
        config.cgroups = configs.Cgroup(path=f"/{unique('hooks')}")
    container = factory.create(unique(), config)
    try:
        init = libcontainer.Process(args=["/bin/sleep", "30"], extra_fds=[w])
        container.start(init)
        joined = libcontainer.Process(args=["/bin/true"], extra_fds=[w])
        container.run(joined)
        assert joined.wait() == 0
        container.processes()
        container.stats()
        if freezer:
            container.pause()
            container.resume()
            container.set(configs.Resources(pids_limit=100))
    finally:
        container.destroy()
    # a user namespace adds the id-mapping phase
    maps = [configs.IDMap(0, 200000, 65536)]
    container = factory.create(unique(), make_config(
        namespaces=[configs.Namespace(t) for t in ("NEWUSER", "NEWNS", "NEWIPC", "NEWPID", "NEWNET")],
        hostname="", uid_mappings=maps, gid_mappings=maps))
    try:
        p = libcontainer.Process(args=["/bin/true"], extra_fds=[w])
        container.start(p)
        assert p.wait() == 0
    finally:
        container.destroy()
    os.close(w)
    with os.fdopen(r) as f:
        called = set(f.read().split())
    expected = set(HOOKS)
    if not freezer:     # only a cgroup plugin makes a container really pausable
        expected -= {"libcontainer_freeze", "libcontainer_thaw", "libcontainer_update"}
    assert sorted(expected - called) == []


INIT_ORDER = ["pre_clone", "enter_namespaces", "post_clone", "finish_namespaces",
              "setup_mounts", "setup_devices", "runtime_ready", "rootfs_ready", "enter_rootfs",
              "setup_environment", "setup_limits", "setup_identity", "setup_privileges", "seal",
              "pre_exec", "post_start"]


def test_phases_run_in_order(state_root, make_config):
    """The core's order (core/spawn.py): runtime_ready once every post_clone
    and the mounts are done, and pre_exec after the seal."""
    r, w = os.pipe()
    factory = libcontainer.new(state_root)
    factory.plugin_manager.register(Recorder(w), "recorder")
    container = factory.create(unique(), make_config())
    try:
        p = libcontainer.Process(args=["/bin/true"], extra_fds=[w])
        container.start(p)
        assert p.wait() == 0
    finally:
        container.destroy()
    os.close(w)
    with os.fdopen(r) as f:
        called = [n.removeprefix("libcontainer_") for n in f.read().split()]
    assert [n for n in called if n in INIT_ORDER] == INIT_ORDER
