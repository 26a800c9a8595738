"""OCI config.json -> Config: every section, and errors that name the JSON path."""
import copy

import pytest

from libcontainer import configs, log, specconv
from libcontainer.errors import ConfigError

BUNDLE = "/srv/bundle"


def spec(**changes):
    s = specconv.default_spec()
    s["process"]["terminal"] = False
    for path, value in changes.items():
        obj = s
        keys = path.split("__")
        for k in keys[:-1]:
            obj = obj.setdefault(k, {})
        obj[keys[-1]] = value
    return s


def convert(s, cid="lct-c1", **kw):
    return specconv.to_config(s, BUNDLE, cid, **kw)


def error_of(s, **kw):
    with pytest.raises(ConfigError) as e:
        convert(s, **kw)
    return str(e.value)


def test_default_spec_converts():
    c = convert(spec())
    assert c.rootfs == "/srv/bundle/rootfs"
    assert c.readonlyfs is True
    assert c.hostname == "pyrunc"
    assert [n.type for n in c.namespaces] == ["NEWPID", "NEWNET", "NEWIPC", "NEWUTS", "NEWNS",
                                              "NEWCGROUP"]
    assert c.networks == [configs.Network(type="loopback")]   # a new netns gets lo up
    assert c.capabilities.bounding == ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert c.rlimits == [configs.Rlimit("RLIMIT_NOFILE", 1024, 1024)]
    assert c.no_new_privileges is True
    assert c.mask_paths == configs.DEFAULT_MASK_PATHS
    assert c.readonly_paths == configs.DEFAULT_READONLY_PATHS
    assert c.cgroups.path == "/lct-c1"           # no cgroupsPath: /<id>
    # the deny-all rule comes first, then the defaults every container needs
    rules = c.cgroups.allowed_devices
    assert (rules[0].type, rules[0].allow, rules[0].permissions) == ("a", False, "rwm")
    assert rules[1:] == configs.DEFAULT_ALLOWED_DEVICES
    # the result survives the library's own (de)serialisation
    assert configs.Config.from_dict(c.to_dict()) == c


def test_rootless_default_spec():
    s = specconv.default_spec(rootless=True, uid=1000, gid=1000)
    kinds = [n["type"] for n in s["linux"]["namespaces"]]
    assert "user" in kinds and "network" in kinds     # loopback only, in its own netns
    assert s["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert "resources" not in s["linux"]
    sysfs = next(m for m in s["mounts"] if m["destination"] == "/sys")
    assert "rbind" in sysfs["options"]
    c = convert(s)
    assert c.uid_mappings == [configs.IDMap(0, 1000, 1)]
    assert c.gid_mappings == [configs.IDMap(0, 1000, 1)]


def test_process():
    s = spec(process__args=["sh", "-c", "true"], process__cwd="/tmp",
             process__env=["A=1"], process__user={"uid": 5, "gid": 6, "umask": 0o22,
                                                  "additionalGids": [7, 8]},
             process__oomScoreAdj=100, process__apparmorProfile="prof",
             process__selinuxLabel="system_u:system_r:container_t:s0")
    c = convert(s)
    assert c.env == ["A=1"]
    assert c.oom_score_adj == 100
    assert c.apparmor_profile == "prof"
    assert c.process_label == "system_u:system_r:container_t:s0"
    p = specconv.to_process(s["process"])
    assert p.args == ["sh", "-c", "true"]
    assert p.cwd == "/tmp"
    assert p.user == "5:6"
    assert p.additional_groups == [7, 8]
    assert p.umask == 0o22
    assert p.tty is False and p.console_size is None
    assert specconv.to_process(dict(s["process"], terminal=True,
                                    consoleSize={"height": 30, "width": 100})).console_size \
        == (30, 100)
    assert p.capabilities.effective == ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert p.no_new_privileges is True


@pytest.mark.parametrize("key, value, message", [
    ("args", "sh", 'process.args: expected a list, got "sh"'),
    ("args", [], "process.args: is required and must not be empty"),
    ("args", ["sh", 1], "process.args[1]: expected a string, got 1"),
    ("cwd", "tmp", "process.cwd: 'tmp' is not an absolute path"),
    ("terminal", "yes", 'process.terminal: expected true or false, got "yes"'),
    ("user", {"uid": -1}, "process.user.uid: -1 is out of range"),
    ("user", {"uid": 0, "additionalGids": ["x"]},
     'process.user.additionalGids[0]: expected an integer, got "x"'),
    ("rlimits", [{"type": "RLIMIT_NOFILE", "hard": "many"}],
     'process.rlimits[0].hard: expected an integer, got "many"'),
    ("capabilities", {"bounding": "CAP_KILL"},
     'process.capabilities.bounding: expected a list, got "CAP_KILL"'),
])
def test_process_errors_name_the_json_path(key, value, message):
    s = spec()
    s["process"][key] = value
    with pytest.raises(ConfigError) as e:
        specconv.to_process(s["process"])
        convert(s)
    assert str(e.value) == f"config.json: {message}"


def test_mount_options_split_into_flags_propagation_and_data():
    s = spec(mounts=[
        {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro",
                                                                               "rslave"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "noexec", "size=64k", "mode=1777", "tmpcopyup"]},
        {"destination": "/opt", "type": "none", "source": "/srv/opt", "options": ["bind"]},
        {"destination": "/etc/x", "source": "/srv/x", "options": ["bind", "private"]},
    ])
    m = convert(s).mounts
    assert m[0] == configs.Mount("/srv/bundle/data", "/data", "bind", ["rbind", "ro"], "",
                                 ["rslave"])     # relative source: under the bundle
    assert m[1] == configs.Mount("tmpfs", "/tmp", "tmpfs", ["nosuid", "nodev", "noexec"],
                                 "size=64k,mode=1777", [], tmpcopyup=True)
    assert m[2] == configs.Mount("/srv/opt", "/opt", "bind", ["bind"], "", [])
    assert m[3] == configs.Mount("/srv/x", "/etc/x", "bind", ["bind"], "", ["private"])


def test_cgroup_mount_never_remounts_host_v1_hierarchies():
    m = convert(spec()).mounts
    cg = next(x for x in m if x.destination == "/sys/fs/cgroup")
    assert cg.device in ("cgroup2", "tmpfs")
    if cg.device == "tmpfs":
        assert "ro" in cg.flags


@pytest.mark.parametrize("mount, message", [
    ({"type": "tmpfs"}, "mounts[0].destination: is required"),
    ({"destination": "/x", "type": "bind"}, "mounts[0].source: a bind mount needs a source"),
    ({"destination": "/x", "type": "tmpfs", "options": "ro"},
     'mounts[0].options: expected a list, got "ro"'),
    ({"destination": "/x", "type": "tmpfs", "options": ["ridmap"]},
     "mounts[0].options[0]: id-mapped mounts must be bind mounts, not 'tmpfs'"),
    ({"destination": "/x", "type": "bind", "source": "/y",
      "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]},
     "mounts[0].gidMappings: an id-mapped mount needs both uidMappings and gidMappings"),
])
def test_mount_errors(mount, message):
    assert error_of(spec(mounts=[mount])) == f"config.json: {message}"


def test_namespaces_with_paths_and_errors():
    s = spec(linux__namespaces=[{"type": "mount"}, {"type": "network",
                                                    "path": "/var/run/netns/x"}])
    c = convert(s)
    assert c.namespaces == [configs.Namespace("NEWNS"), configs.Namespace("NEWNET",
                                                                          "/var/run/netns/x")]
    assert c.networks == []          # a joined netns is left alone
    assert [n.type for n in convert(spec(linux__namespaces=[{"type": "time"}])).namespaces] \
        == ["NEWTIME"]
    assert "unknown namespace type 'bogus'" in error_of(spec(linux__namespaces=[{"type":
                                                                                 "bogus"}]))
    assert error_of(spec(linux__namespaces=[{"type": "ipc"}, {"type": "ipc"}])) == \
        "config.json: linux.namespaces[1].type: namespace 'ipc' is listed twice"


def test_devices_keep_defaults_and_spec_wins_by_path():
    s = spec(linux__devices=[
        {"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 0o20666,
         "uid": 0, "gid": 0},
        {"type": "u", "path": "/dev/null", "major": 1, "minor": 3, "fileMode": 0o600},
    ])
    devs = {d.path: d for d in convert(s).devices}
    assert devs["/dev/fuse"] == configs.Device("c", "/dev/fuse", 10, 229, "rwm", 0o666)
    assert devs["/dev/null"].file_mode == 0o600
    assert "/dev/urandom" in devs
    assert "linux.devices[0].type" in error_of(spec(linux__devices=[{"type": "x",
                                                                     "path": "/dev/x"}]))


def test_resources():
    res = {"memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": -1,
                      "disableOOMKiller": True},
           "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
           "pids": {"limit": 50},
           "blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                       "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
           "unified": {"memory.high": "100000000"},
           "devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 10, "minor": 229,
                        "access": "rw"}]}
    cg = convert(spec(linux__resources=res, linux__cgroupsPath="/lct-x/y")).cgroups
    r = cg.resources
    assert cg.path == "/lct-x/y"
    assert (r.memory, r.memory_reservation, r.memory_swap, r.oom_kill_disable) == \
        (64 << 20, 32 << 20, -1, True)
    assert (r.cpu_shares, r.cpu_quota, r.cpu_period, r.cpuset_cpus, r.cpuset_mems) == \
        (512, 50000, 100000, "0", "0")
    assert r.pids_limit == 50
    assert r.blkio_weight == 300
    assert r.blkio_weight_device == [configs.WeightDevice(8, 0, 200)]
    assert r.blkio_throttle_read_bps_device == [configs.ThrottleDevice(8, 0, 1000)]
    assert r.hugetlb_limit == [configs.HugepageLimit("2MB", 0)]
    assert r.unified == {"memory.high": "100000000"}
    assert cg.allowed_devices[1] == configs.Device("c", "", 10, 229, "rw", allow=True)
    assert error_of(spec(linux__resources={"memory": {"limit": "1G"}})) == \
        'config.json: linux.resources.memory.limit: expected an integer, got "1G"'
    assert "linux.resources.devices[0].access" in error_of(
        spec(linux__resources={"devices": [{"allow": True, "access": "rwx"}]}))


def test_update_merges_onto_current_resources():
    base = configs.Resources(memory=100, pids_limit=10, cpu_shares=2)
    new = specconv.to_resources({"memory": {"limit": 200}, "pids": {}}, base=base,
                                source="resources", path="resources")
    assert (new.memory, new.pids_limit, new.cpu_shares) == (200, 10, 2)
    assert base.memory == 100        # not modified in place
    with pytest.raises(ConfigError) as e:
        specconv.to_resources({"cpu": {"shares": "x"}}, base=base, source="resources",
                              path="resources")
    assert str(e.value) == 'resources: resources.cpu.shares: expected an integer, got "x"'


def test_cgroups_path_forms():
    assert convert(spec(linux__cgroupsPath="relative/x")).cgroups.path == "/relative/x"
    assert error_of(spec(linux__cgroupsPath="system.slice:docker:abc")) == (
        "config.json: linux.cgroupsPath: 'system.slice:docker:abc' is in the systemd form "
        "slice:prefix:name: run with --systemd-cgroup")
    cg = convert(spec(linux__cgroupsPath="machine.slice:libpod:abc"), systemd_cgroup=True).cgroups
    assert (cg.driver, cg.parent, cg.name) == ("systemd", "machine.slice", "libpod-abc.scope")
    assert "is not in the systemd form" in error_of(spec(linux__cgroupsPath="/abs"),
                                                    systemd_cgroup=True)


def test_sysctl_seccomp_propagation_annotations_labels():
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]}
    c = convert(spec(linux__sysctl={"net.ipv4.ip_forward": "1"}, linux__seccomp=seccomp,
                     linux__rootfsPropagation="rslave", linux__mountLabel="lbl",
                     annotations={"org.example/a": "b"}, domainname="example.org"))
    assert c.sysctl == {"net.ipv4.ip_forward": "1"}
    assert c.seccomp == seccomp
    assert c.rootfs_propagation == "rslave"
    assert c.mount_label == "lbl"
    assert c.labels == {"org.example/a": "b"}
    assert c.domainname == "example.org"
    assert error_of(spec(linux__sysctl={"a": 1})) == \
        "config.json: linux.sysctl.a: expected a string, got 1"
    assert "unknown propagation 'sideways'" in error_of(spec(linux__rootfsPropagation="sideways"))


def test_hooks():
    hooks = {"prestart": [{"path": "/bin/a", "args": ["a", "x"], "env": ["K=V"], "timeout": 3}],
             "poststop": [{"path": "/bin/b"}], "someFutureHook": [{"path": "/bin/c"}]}
    c = convert(spec(hooks=hooks))
    assert c.hooks == {"prestart": [configs.Hook("/bin/a", ["a", "x"], ["K=V"], 3)],
                       "poststop": [configs.Hook("/bin/b")]}
    assert error_of(spec(hooks={"poststart": [{"args": []}]})) == \
        "config.json: hooks.poststart[0].path: is required"
    assert error_of(spec(hooks={"poststart": [{"path": "/x", "timeout": 0}]})) == \
        "config.json: hooks.poststart[0].timeout: 0 is not a positive number"


def test_unknown_fields_are_ignored_with_a_warning(capsys):
    log.configure()         # a fresh logger writes to the captured stderr
    s = spec()
    s["vm"] = {"hypervisor": {}}                  # another platform's: silently
    s["linux"]["resources"]["rdma"] = {}          # empty: nothing to ignore
    s["linux"]["bogus"] = 1
    s["process"]["user"]["shoeSize"] = 44
    base = convert(spec())
    assert capsys.readouterr().err == ""
    assert convert(s) == base
    err = capsys.readouterr().err
    assert "linux.bogus: unknown field ignored" in err
    assert "process.user.shoeSize: unknown field ignored" in err
    assert "vm" not in err


def test_top_level_errors():
    s = spec()
    del s["root"]
    assert error_of(s) == "config.json: root: is required"
    s = spec(root={"path": 7})
    assert error_of(s) == "config.json: root.path: expected a string, got 7"
    s = spec(hostname=["x"])
    assert error_of(s) == 'config.json: hostname: expected a string, got ["x"]'
    s = copy.deepcopy(spec())
    s["linux"] = "linux"
    assert error_of(s) == 'config.json: linux: expected an object, got "linux"'
