"""User namespaces (as root) and rootless containers (as an unprivileged user
created for the test)."""
import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig

import pytest

import libcontainer
from libcontainer import configs
from libcontainer.errors import ConfigError

from conftest import PREFIX, TOKEN, capture, copy_rootfs, unique

NS = ["NEWUSER", "NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"]
SITE = sysconfig.get_paths()["purelib"]
# the venv's interpreter lives under /root (mode 700): an unprivileged user
# runs Debian's python3 of the same minor version with the venv's packages
SYSTEM_PYTHON = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def world_tmp():
    """A directory other uids can traverse (pytest's tmp_path is mode 700)."""
    import tempfile
    path = tempfile.mkdtemp(prefix=unique("tmp") + "-", dir="/tmp")
    os.chmod(path, 0o755)
    yield __import__("pathlib").Path(path)
    shutil.rmtree(path)


def userns_config(rootfs, uid_maps, gid_maps, **kw):
    kw.setdefault("capabilities", None)     # the namespace's root keeps them all
    return configs.Config(rootfs=rootfs, namespaces=[configs.Namespace(t) for t in NS],
                          uid_mappings=uid_maps, gid_mappings=gid_maps, hostname="userns", **kw)


def test_userns_as_root(factory, rootfs, world_tmp):
    shared = world_tmp / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    # the mount point must exist: the rootfs belongs to the host's root, whom
    # the namespace's root is not
    mounts = configs.default_mounts() + [configs.Mount(str(shared), "/home", "bind", ["rbind"])]
    maps = [configs.IDMap(0, 200000, 65536)]
    container = factory.create(unique(), userns_config(rootfs, maps, maps, mounts=mounts))
    try:
        status, out = capture(container, ["/bin/sh", "-c",
                                          "id -u; cat /proc/self/uid_map; touch /home/f; "
                                          "mkdir /home/d; chown 1000 /home/d; echo done"],
                              join=False)
    finally:
        container.destroy()
    assert status == 0, out
    lines = out.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", "200000", "65536"]
    assert lines[-2] == "done"
    # ownership follows the mapping on the host
    assert os.stat(shared / "f").st_uid == 200000
    assert os.stat(shared / "d").st_uid == 201000


def test_userns_join(factory, rootfs):
    maps = [configs.IDMap(0, 200000, 65536)]
    container = factory.create(unique(), userns_config(rootfs, maps, maps))
    try:
        container.start(libcontainer.Process(args=["/bin/sleep", "30"]))
        r, w = os.pipe()
        p = libcontainer.Process(args=["/bin/sh", "-c", "id -u; cat /proc/self/uid_map; ps -o comm"],
                                 stdout=w)
        container.run(p)
        os.close(w)
        assert p.wait() == 0
        out = os.read(r, 4096).decode().split("\n")
        os.close(r)
        assert out[0] == "0" and out[1].split() == ["0", "200000", "65536"]
        assert "sleep" in out
    finally:
        container.destroy()


@pytest.mark.parametrize("maps, message", [
    ([], "uid_mappings: a new user namespace needs uid_mappings"),
    ([configs.IDMap(0, 1000, 10), configs.IDMap(5, 5000, 10)], "container ids overlap"),
    ([configs.IDMap(0, 1000, 10), configs.IDMap(100, 1005, 10)], "host ids overlap"),
    ([configs.IDMap(0, 1000, 0)], "size > 0"),
])
def test_bad_mappings(factory, rootfs, maps, message):
    with pytest.raises(ConfigError, match=message):
        factory.create(unique(), userns_config(rootfs, maps, [configs.IDMap(0, 1000, 1)]))


def test_mappings_without_userns(factory, rootfs):
    config = configs.Config(rootfs=rootfs, namespaces=[configs.Namespace("NEWNS")],
                            uid_mappings=[configs.IDMap(0, 1000, 1)])
    with pytest.raises(ConfigError, match="need a NEWUSER namespace"):
        factory.create(unique(), config)


# -- rootless ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def user(tmp_path_factory):
    if not os.path.exists(SYSTEM_PYTHON) or not shutil.which("newuidmap"):
        pytest.skip(f"needs {SYSTEM_PYTHON} and newuidmap (apt-get install python3 uidmap)")
    name = f"{PREFIX.replace('-', '')}{TOKEN}"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True)
    import tempfile
    home = tempfile.mkdtemp(prefix=unique("home") + "-", dir="/tmp")
    try:
        entry = pwd.getpwnam(name)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        # a subordinate range of our own, so the newuidmap path is tested too
        start = 300000 + entry.pw_uid * 65536 % 1000000
        subprocess.run(["usermod", "--add-subuids", f"{start}-{start + 65535}",
                        "--add-subgids", f"{start}-{start + 65535}", name], check=True)
        yield {"name": name, "uid": entry.pw_uid, "gid": entry.pw_gid, "home": str(home),
               "sub": start}
    finally:
        subprocess.run(["userdel", name], check=False)
        shutil.rmtree(home, ignore_errors=True)


def as_user(user, *args, env=None, input=None, prog="nsinit"):
    """Run the nsinit (or pyrunc) CLI as `user` with Debian's python3 and the
    venv's packages."""
    code = ("import site, sys; site.addsitedir(sys.argv[1]); "
            f"from libcontainer.cli.{prog} import cli; sys.argv = ['{prog}'] + sys.argv[2:]; cli()")
    base = {"PATH": "/usr/bin:/bin", "HOME": user["home"], "LANG": "C.UTF-8"}
    cmd = ["setpriv", f"--reuid={user['uid']}", f"--regid={user['gid']}", "--init-groups",
           "--reset-env", "env", *[f"{k}={v}" for k, v in {**base, **(env or {})}.items()],
           SYSTEM_PYTHON, "-c", code, SITE, *args]
    return subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=60,
                          cwd=user["home"])


def rootless_bundle(user, rootfs, uid_maps=None, gid_maps=None, mounts=()):
    from libcontainer import sample
    config = sample.config_dict(rootfs)
    config.update(cgroups=None, networks=[{"type": "loopback"}],
                  namespaces=[{"type": t} for t in NS],
                  uid_mappings=uid_maps or [{"container_id": 0, "host_id": user["uid"], "size": 1}],
                  gid_mappings=gid_maps or [{"container_id": 0, "host_id": user["gid"], "size": 1}])
    config["mounts"] += list(mounts)
    path = os.path.join(user["home"], "container.json")
    with open(path, "w") as f:
        json.dump(config, f)
    os.chown(path, user["uid"], user["gid"])
    return path


def test_rootless_own_id(user, rootfs, world_tmp):
    shared = world_tmp / "rw"
    shared.mkdir()
    os.chown(shared, user["uid"], user["gid"])
    rodir = world_tmp / "root-owned"
    rodir.mkdir(mode=0o755)
    (rodir / "file").write_text("host\n")
    mounts = [{"source": str(shared), "destination": "/home", "device": "bind", "flags": ["rbind"]},
              {"source": str(rodir), "destination": "/var", "device": "bind", "flags": ["rbind"]}]
    rootless_bundle(user, rootfs, mounts=mounts)
    root = os.path.join(user["home"], "state")
    r = as_user(user, "--root", root, "exec", "--id", unique(), "/bin/sh", "-c",
                "id -u; cat /proc/self/uid_map; touch /home/created; "
                "echo x >> /var/file 2>/dev/null && echo wrote || echo denied; "
                "hostname; ip -o link | wc -l")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "0"                                    # root inside
    assert lines[1].split() == ["0", str(user["uid"]), "1"]
    assert lines[2] == "denied"                               # no new rights on the host
    assert lines[4] == "1"                                    # loopback only
    assert os.stat(shared / "created").st_uid == user["uid"]  # nobody outside
    assert (rodir / "file").read_text() == "host\n"
    assert os.listdir(root) == []


def test_rootless_subuid_ranges(user, rootfs):
    sub = user["sub"]
    uid_maps = [{"container_id": 0, "host_id": user["uid"], "size": 1},
                {"container_id": 1, "host_id": sub, "size": 65535}]
    gid_maps = [{"container_id": 0, "host_id": user["gid"], "size": 1},
                {"container_id": 1, "host_id": sub, "size": 65535}]
    rootless_bundle(user, rootfs, uid_maps, gid_maps)
    root = os.path.join(user["home"], "state")
    r = as_user(user, "--root", root, "exec", "--id", unique(), "/bin/sh", "-c",
                "cat /proc/self/uid_map | wc -l; touch /dev/shm/f; chown 1000:1000 /dev/shm/f && "
                "ls -ln /dev/shm/f")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].strip() == "2"
    assert " 1000 " in lines[1]
    assert os.listdir(root) == []


def test_rootless_errors(user, rootfs, world_tmp):
    root = os.path.join(user["home"], "state")
    # a range /etc/subuid does not grant
    rootless_bundle(user, rootfs, [{"container_id": 0, "host_id": 5000000, "size": 100}])
    r = as_user(user, "--root", root, "exec", "--id", unique(), "/bin/true")
    assert r.returncode == 1 and "exceed what /etc/subuid grants" in r.stderr
    assert len(r.stderr.splitlines()) == 1
    # newuidmap missing from PATH
    sub = user["sub"]
    rootless_bundle(user, rootfs, [{"container_id": 0, "host_id": sub, "size": 10}],
                    [{"container_id": 0, "host_id": sub, "size": 10}])
    r = as_user(user, "--root", root, "exec", "--id", unique(), "/bin/true",
                env={"PATH": "/nonexistent"})
    assert r.returncode == 1 and "needs newuidmap (apt-get install uidmap)" in r.stderr
    # no user namespace at all
    rootless_bundle(user, rootfs)
    cfg = json.load(open(os.path.join(user["home"], "container.json")))
    cfg["namespaces"] = [{"type": "NEWNS"}]
    cfg["uid_mappings"] = cfg["gid_mappings"] = []
    cfg["networks"] = []
    with open(os.path.join(user["home"], "container.json"), "w") as f:
        json.dump(cfg, f)
    r = as_user(user, "--root", root, "exec", "--id", unique(), "/bin/true")
    assert r.returncode == 1 and "needs a NEWUSER namespace" in r.stderr
    # a rootfs the user cannot read
    private = world_tmp / "private"
    copy_rootfs(rootfs, private)
    os.chmod(private, 0o700)
    rootless_bundle(user, str(private))
    r = as_user(user, "--root", root, "exec", "--id", unique(), "/bin/true")
    assert r.returncode == 1 and "is not readable by uid" in r.stderr
    assert not os.path.exists(root) or os.listdir(root) == []


def test_rootless_default_state_root(user, rootfs):
    rootless_bundle(user, rootfs)
    r = as_user(user, "exec", "--id", unique(), "/bin/true")
    assert r.returncode == 0, r.stderr
    assert os.path.isdir(f"/tmp/libcontainer-{user['uid']}")
    shutil.rmtree(f"/tmp/libcontainer-{user['uid']}")


def test_rootless_pyrunc_spec_and_run(user, rootfs):
    """`pyrunc spec --rootless` writes a config that works for the calling
    user; a cgroup that is not delegated to it is skipped with a warning."""
    bundle = os.path.join(user["home"], unique("bundle"))
    os.mkdir(bundle)
    os.chown(bundle, user["uid"], user["gid"])
    os.symlink(rootfs, os.path.join(bundle, "rootfs"))
    r = as_user(user, "spec", "--rootless", "--bundle", bundle, prog="pyrunc")
    assert r.returncode == 0, r.stderr
    path = os.path.join(bundle, "config.json")
    spec = json.load(open(path))
    spec["process"].update(terminal=False, args=["sh", "-c", "id -u; ip -o link | wc -l; "
                                                 "cat /proc/self/uid_map"])
    spec["linux"]["cgroupsPath"] = f"/{unique('rl')}"
    with open(path, "w") as f:
        json.dump(spec, f)
    root = os.path.join(user["home"], "pyrunc-state")
    r = as_user(user, "--root", root, "run", "--bundle", bundle, unique(), prog="pyrunc")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "0" and lines[1].strip() == "1"
    assert lines[2].split() == ["0", str(user["uid"]), "1"]
    assert "not delegated" in r.stderr
    assert os.listdir(root) == []


def _v1_hierarchies():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f
                if line.split(" - ")[1].split()[0] == "cgroup"]


def test_rootless_uses_a_delegated_cgroup(user, rootfs):
    """A cgroup subtree the user owns (delegated by root) is used."""
    hierarchies = _v1_hierarchies()
    if not hierarchies:
        pytest.skip("needs cgroup v1 hierarchies (the v2 delegation path is the same check)")
    top = unique("deleg")
    made = []
    try:
        for h in hierarchies:
            d = os.path.join(h, top)
            os.mkdir(d)
            made.append(d)
            for name in [d] + [os.path.join(d, f) for f in os.listdir(d)]:
                os.chown(name, user["uid"], user["gid"])
            if os.path.exists(os.path.join(h, "cpuset.cpus")):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(h, f)) as src, open(os.path.join(d, f), "w") as dst:
                        dst.write(src.read())
        path = rootless_bundle(user, rootfs)
        cfg = json.load(open(path))
        cfg["namespaces"] = [n for n in cfg["namespaces"] if n["type"] != "NEWCGROUP"]
        cfg["cgroups"] = {"path": f"/{top}/c1", "resources": {"pids_limit": 20}}
        with open(path, "w") as f:
            json.dump(cfg, f)
        root = os.path.join(user["home"], "state")
        r = as_user(user, "--root", root, "exec", "--id", unique(), "/bin/sh", "-c",
                    "grep pids /proc/self/cgroup")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().endswith(f":pids:/{top}/c1")
        assert "not delegated" not in r.stderr
        assert not os.path.exists(os.path.join(made[0], "c1"))       # removed with it
    finally:
        for d in made:
            os.rmdir(d)
