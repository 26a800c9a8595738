"""Attacks on the mount and identity setup, each mounted on a real
container: files the image supplies in place of /proc, a /dev bound from the
host, mounts propagating back to the host, a /dev/null that is not one,
--no-pivot's reachable host /proc; and the setups that used to fail (a
read-only /dev, bind sources only the runtime can reach)."""
import os
import re
import shutil
import stat
import subprocess

import pytest

import libcontainer
from libcontainer import configs
from libcontainer.errors import SetupError
from libcontainer.linux import caps

from conftest import capture, unique

NS = ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"]
PYRUNC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv",
                      "bin", "pyrunc")


@pytest.fixture
def rootfs_copy(rootfs, tmp_path):
    path = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", rootfs, str(path)], check=True)
    return str(path)


def config(rootfs, **kw):
    kw.setdefault("namespaces", [configs.Namespace(t) for t in NS])
    return configs.Config(rootfs=rootfs, **kw)


def host_mountpoints(under):
    """The host's mount points at or beneath `under` (other tests mount and
    unmount elsewhere meanwhile)."""
    with open("/proc/self/mountinfo") as f:
        return sorted(p for p in (line.split()[4] for line in f)
                      if p == under or p.startswith(under + "/"))


def status_of(pid):
    with open(f"/proc/{pid}/status") as f:
        return f.read()


def field(text, name):
    return re.search(rf"^{name}:[ \t]*(.*)$", text, re.M).group(1).strip()


@pytest.fixture
def started(factory):
    """started(config, **process keywords) -> (container, process): the
    process is `sleep`, inspected from the host; destroyed afterwards."""
    made = []

    def start(cfg, **kw):
        c = factory.create(unique(), cfg)
        made.append(c)
        p = libcontainer.Process(args=["/bin/sleep", "1000"], **kw)
        c.start(p)
        return c, p
    yield start
    for c in made:
        c.destroy()


# -- issue 15.2: values read from files the image supplies -------------------

def test_image_files_in_place_of_proc_decide_nothing(rootfs_copy, started):
    """Without a procfs at /proc, /proc/sys/kernel/cap_last_cap and
    /proc/self/setgroups are the image's files: "-1" used to skip every
    bounding-set drop, "deny" to skip setgroups (leaking the runtime's
    supplementary groups)."""
    for path, value in (("proc/sys/kernel/cap_last_cap", "-1\n"),
                        ("proc/self/setgroups", "deny\n")):
        os.makedirs(os.path.join(rootfs_copy, os.path.dirname(path)), exist_ok=True)
        with open(os.path.join(rootfs_copy, path), "w") as f:
            f.write(value)
    mounts = [m for m in configs.default_mounts() if m.device != "proc"]
    groups = os.getgroups()
    os.setgroups([4242])            # the runtime's own supplementary group
    try:
        _, p = started(config(rootfs_copy, mounts=mounts, capabilities=["CHOWN"]),
                       user="1000:1000")
        status = status_of(p.pid)
    finally:
        os.setgroups(groups)
    assert int(field(status, "CapBnd"), 16) == 1 << caps.NAMES["CHOWN"]
    assert field(status, "Groups") == ""


# -- issue 15.3: a /dev bound from the host ----------------------------------

def test_bind_mounted_dev_is_left_alone(rootfs, tmp_path, started):
    """With /dev bound from the host (CSI, device plugins), no node there is
    unlinked, created or chowned: a scratch directory stands in for the
    host's /dev (never the real one)."""
    scratch = tmp_path / "dev"
    scratch.mkdir()
    (scratch / "null").write_text("the host's node\n")
    for d in ("pts", "shm", "mqueue"):
        (scratch / d).mkdir()
    before = {n: os.lstat(scratch / n) for n in os.listdir(scratch)}
    mounts = [m if m.destination != "/dev" else
              configs.Mount(str(scratch), "/dev", "bind", ["rbind"])
              for m in configs.default_mounts()]
    devices = [*configs.DEFAULT_AUTO_CREATED_DEVICES,
               configs.Device("c", "/dev/lct-extra", 1, 3, uid=1234, gid=1234)]
    started(config(rootfs, mounts=mounts, devices=devices))
    after = {n: os.lstat(scratch / n) for n in os.listdir(scratch)}
    assert sorted(after) == sorted(before)
    for name, st in before.items():
        assert (after[name].st_ino, after[name].st_mode, after[name].st_uid) == \
            (st.st_ino, st.st_mode, st.st_uid), name
    assert (scratch / "null").read_text() == "the host's node\n"


# -- issue 15.5: rootfs propagation leaking mounts to the host ---------------

@pytest.fixture
def shared_parent(rootfs, tmp_path):
    """The rootfs under a shared mount (as under a shared /run): anything
    mounted beneath it in a peer propagates to the host."""
    parent = tmp_path / "shared"
    parent.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "lct-shared", str(parent)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(parent)], check=True)
        subprocess.run(["cp", "-a", rootfs, str(parent / "rootfs")], check=True)
        yield parent
    finally:
        subprocess.run(["umount", "-R", "-l", str(parent)], check=False)


@pytest.mark.parametrize("propagation", ["private", "rprivate", "slave", "rslave", "shared",
                                         "rshared", "unbindable", "runbindable"])
def test_no_mount_propagates_to_the_host(shared_parent, tmp_path, started, propagation):
    volume = tmp_path / "volume"
    volume.mkdir()
    mounts = configs.default_mounts() + [
        configs.Mount(str(volume), "/mnt", "bind", ["rbind"]),
        configs.Mount("tmpfs", "/tmp", "tmpfs")]
    before = host_mountpoints(str(tmp_path))
    c, p = started(config(str(shared_parent / "rootfs"), mounts=mounts,
                          rootfs_propagation=propagation))
    assert host_mountpoints(str(tmp_path)) == before == [str(shared_parent)]
    # and the container has its mounts
    status, out = capture(c, ["grep", "-c", " /mnt ", "/proc/self/mountinfo"])
    assert (status, out.strip()) == (0, "1")


def test_bidirectional_volume_still_propagates(rootfs, tmp_path, factory):
    """What rshared is for (containerd's Bidirectional mounts): a mount the
    container makes in the volume reaches the host, and nothing else does.
    (The old root used to be made a slave through the new root's fd.)"""
    volume = tmp_path / "volume"
    volume.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "lct-volume", str(volume)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(volume)], check=True)
        (volume / "x").mkdir()
        mounts = configs.default_mounts() + [
            configs.Mount(str(volume), "/mnt", "bind", ["rbind"], propagation=["rshared"])]
        c = factory.create(unique(), config(rootfs, mounts=mounts, capabilities=None,
                                            rootfs_propagation="rshared"))
        try:
            status, out = capture(c, ["mount", "-t", "tmpfs", "inner", "/mnt/x"], join=False)
        finally:
            c.destroy()
        assert status == 0, out
        assert host_mountpoints(str(tmp_path)) == [str(volume), str(volume / "x")]
        assert host_mountpoints(rootfs) == []
    finally:
        subprocess.run(["umount", "-R", "-l", str(volume)], check=False)


def test_default_root_propagation_is_rslave_as_runc():
    assert configs.Config(rootfs="/").rootfs_propagation == "rslave"


# -- issue 15.13: masking with whatever /dev/null resolves to ----------------

def test_masking_refuses_a_dev_null_that_is_not_one(rootfs_copy, factory):
    """CVE-2025-31133: the container's /dev/null a symlink to a procfs file:
    masking /proc/kcore would bind that file, writable, over it."""
    null = os.path.join(rootfs_copy, "dev/null")
    if os.path.lexists(null):
        os.unlink(null)
    os.symlink("/proc/sys/kernel/ostype", null)
    mounts = [m for m in configs.default_mounts() if not m.destination.startswith("/dev")]
    c = factory.create(unique(), config(rootfs_copy, mounts=mounts, devices=[],
                                        mask_paths=["/proc/kcore"]))
    try:
        with pytest.raises(SetupError, match="/dev/null.* not the character device 1:3"):
            capture(c, ["cat", "/proc/kcore"], join=False)
    finally:
        c.destroy()


def test_masked_paths_must_be_on_procfs(rootfs_copy, factory):
    """A masked path under /proc that is not on procfs is the image's own
    file, not what the config meant to hide: refused, as a symlink is."""
    os.symlink("/etc/passwd", os.path.join(rootfs_copy, "proc/kcore"))
    mounts = [m for m in configs.default_mounts() if m.device != "proc"]
    c = factory.create(unique(), config(rootfs_copy, mounts=mounts,
                                        mask_paths=["/proc/kcore"]))
    try:
        with pytest.raises(SetupError, match="refusing to mask /proc/kcore"):
            capture(c, ["true"], join=False)
    finally:
        c.destroy()
    with open(os.path.join(rootfs_copy, "etc/passwd")) as f:
        assert "root" in f.read()


# -- issue 13.7: mounts ------------------------------------------------------

def test_read_only_dev_tmpfs(rootfs, started):
    """A read-only /dev is set up first (nodes, /dev/pts) and made
    read-only afterwards."""
    mounts = [m if m.destination != "/dev" else
              configs.Mount("tmpfs", "/dev", "tmpfs", ["nosuid", "ro"], "mode=755")
              for m in configs.default_mounts()]
    c, _ = started(config(rootfs, mounts=mounts, capabilities=None))
    status, out = capture(c, ["/bin/sh", "-c", "echo x > /dev/null && echo null-ok; "
                                               "test -d /dev/pts && echo pts-ok; "
                                               "touch /dev/x || echo ro-ok"])
    assert out.split()[:2] == ["null-ok", "pts-ok"], out
    assert "ro-ok" in out and "Read-only file system" in out


def test_read_only_dev_as_runc(rootfs, tmp_path):
    from libcontainer import specconv
    spec = specconv.default_spec()
    spec["root"] = {"path": rootfs, "readonly": True}
    spec["process"].update(terminal=False, args=[
        "sh", "-c", "ls /dev; touch /dev/x; grep -o ' /dev [^ ]*' /proc/self/mountinfo"])
    spec["linux"].pop("resources")
    for m in spec["mounts"]:
        if m["destination"] == "/dev":
            m["options"].append("ro")
    (tmp_path / "config.json").write_text(__import__("json").dumps(spec))
    outputs = []
    for runtime in (PYRUNC, "/usr/sbin/runc"):
        cid = unique()
        r = subprocess.run([runtime, "--root", str(tmp_path / f"state-{len(outputs)}"), "run",
                            "--bundle", str(tmp_path), cid], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        outputs.append((r.stdout, [line for line in r.stderr.splitlines()
                                   if "level=warning" not in line]))
    assert outputs[0] == outputs[1]
    assert " /dev ro,nosuid" in outputs[0][0] and "null" in outputs[0][0].split()


@pytest.mark.parametrize("userns", [False, True])
def test_no_pivot_leaves_no_full_proc_to_mount(rootfs, factory, userns):
    """With --no-pivot the host's /proc stayed in the container's mount
    namespace (outside the chroot), so a user namespace made inside could
    mount a fresh, unmasked procfs. (In a user namespace the host's /proc
    cannot be unmounted: it is covered.)"""
    script = "unshare -mrpf sh -c 'mount -t proc none /proc && echo MOUNTED'; echo rc=$?"
    maps = [configs.IDMap(0, 200000, 65536)] if userns else []
    ns = [configs.Namespace(t) for t in (["NEWUSER"] if userns else []) + NS]
    results = {}
    for no_pivot in (False, True):
        c = factory.create(unique(), config(rootfs, no_pivot_root=no_pivot, capabilities=None,
                                            namespaces=ns, uid_mappings=maps, gid_mappings=maps,
                                            mask_paths=list(configs.DEFAULT_MASK_PATHS),
                                            readonly_paths=list(configs.DEFAULT_READONLY_PATHS)))
        try:
            results[no_pivot] = capture(c, ["/bin/sh", "-c", script], join=False)
        finally:
            c.destroy()
    for no_pivot, (status, out) in results.items():
        assert "MOUNTED" not in out and "rc=0" not in out, (no_pivot, out)
        assert "ermission denied" in out or "not permitted" in out, (no_pivot, out)


@pytest.fixture
def root_only_dir():
    """A directory only the host's root may enter (mode 700), holding data
    a user-namespaced container binds."""
    import tempfile
    path = tempfile.mkdtemp(prefix=unique("secret") + "-", dir="/tmp")
    os.chmod(path, 0o700)
    os.mkdir(os.path.join(path, "data"), 0o755)
    with open(os.path.join(path, "data", "file"), "w") as f:
        f.write("reached\n")
    os.chmod(os.path.join(path, "data", "file"), 0o644)
    yield path
    shutil.rmtree(path)


def test_userns_bind_source_only_the_runtime_can_reach(rootfs, factory, root_only_dir):
    """runc opens bind sources before entering the user namespace: the
    mapped root could not traverse a mode-700 directory of the host's root."""
    maps = [configs.IDMap(0, 200000, 65536)]
    mounts = configs.default_mounts() + [
        configs.Mount(os.path.join(root_only_dir, "data"), "/mnt", "bind", ["rbind", "ro"])]
    c = factory.create(unique(), config(rootfs, namespaces=[
        configs.Namespace(t) for t in ["NEWUSER", *NS]], uid_mappings=maps, gid_mappings=maps,
        mounts=mounts, capabilities=None))
    try:
        status, out = capture(c, ["cat", "/mnt/file"], join=False)
    finally:
        c.destroy()
    assert (status, out) == (0, "reached\n")
    assert stat.S_IMODE(os.stat(root_only_dir).st_mode) == 0o700


# -- the image's /etc/passwd and /etc/group ---------------------------------

def test_user_database_that_never_ends_is_ignored(rootfs_copy, tmp_path):
    """An image's /etc/group as a FIFO (or a symlink to /dev/zero) used to
    hang the init reading it; only regular files are read."""
    from libcontainer import specconv
    os.unlink(os.path.join(rootfs_copy, "etc/group"))
    os.mkfifo(os.path.join(rootfs_copy, "etc/group"))
    os.unlink(os.path.join(rootfs_copy, "etc/passwd"))
    os.symlink("/dev/zero", os.path.join(rootfs_copy, "etc/passwd"))
    spec = specconv.default_spec()
    spec["root"] = {"path": rootfs_copy}
    spec["process"].update(terminal=False, args=["grep", "-E", "^(Uid|Gid|Groups)",
                                                 "/proc/self/status"],
                           user={"uid": 1000, "gid": 1000})
    spec["linux"].pop("resources")
    (tmp_path / "config.json").write_text(__import__("json").dumps(spec))
    root, cid = str(tmp_path / "state"), unique()
    try:
        r = subprocess.run([PYRUNC, "--root", root, "run", "--bundle", str(tmp_path), cid],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    finally:
        subprocess.run([PYRUNC, "--root", root, "delete", "--force", cid], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Uid:", *["1000"] * 4, "Gid:", *["1000"] * 4, "Groups:"]
