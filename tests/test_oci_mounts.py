"""OCI mount options beyond mount(2) flags: every option runc knows, tmpfs
copy-up, recursive attributes (mount_setattr AT_RECURSIVE) and id-mapped
bind mounts -- in real containers."""
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from libcontainer import configs, specconv
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux.mount import MNT_DETACH, mount, umount2

from conftest import capture, copy_rootfs, unique

NS = ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"]


def oci_mount(**m):
    s = specconv.default_spec()
    s["mounts"] = [m]
    return specconv.to_config(s, "/srv/b", "lct-c").mounts[0]


def mount_options(out, point):
    """(per-mount options, super options) of `point` in a mountinfo text."""
    for line in out.splitlines():
        fields, _, rest = line.partition(" - ")
        if fields.split()[4:5] == [point]:
            return set(fields.split()[5].split(",")), set(rest.split()[2].split(","))
    raise AssertionError(f"{point} is not mounted:\n{out}")


@pytest.fixture
def sh(factory, make_config):
    """sh(script, mounts, config keywords) -> (status, output) of an init."""
    def sh(script, mounts=(), **kw):
        config = make_config(mounts=configs.default_mounts() + list(mounts), **kw)
        container = factory.create(unique(), config)
        try:
            return capture(container, ["/bin/sh", "-c", script], join=False)
        finally:
            container.destroy()
    return sh


# --------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------

def test_every_option_runc_knows_is_a_flag_not_data():
    m = oci_mount(destination="/x", type="tmpfs", source="tmpfs",
                  options=["iversion", "lazytime", "nolazytime", "symfollow", "nosymfollow",
                           "strictatime", "norelatime", "silent", "loud", "acl", "noacl",
                           "defaults", "size=1m", "rro", "rnosuid", "tmpcopyup"])
    assert m.data == "size=1m"
    assert m.recursive == ["rro", "rnosuid"]
    assert m.tmpcopyup
    b = oci_mount(destination="/x", type="bind", source="/y", options=["rbind", "ridmap"],
                  uidMappings=[{"containerID": 0, "hostID": 1000, "size": 10}],
                  gidMappings=[{"containerID": 0, "hostID": 1000, "size": 10}])
    assert (b.idmap, b.uid_mappings) == ("ridmap", [configs.IDMap(0, 1000, 10)])
    # mappings alone make an id-mapped mount; tmpcopyup is for tmpfs only
    b = oci_mount(destination="/x", type="bind", source="/y", options=["tmpcopyup"],
                  uidMappings=[{"containerID": 0, "hostID": 1, "size": 1}],
                  gidMappings=[{"containerID": 0, "hostID": 1, "size": 1}])
    assert (b.idmap, b.tmpcopyup) == ("idmap", False)
    assert {"iversion", "rro", "ridmap", "tmpcopyup"} <= (
        specconv.MOUNT_FLAGS | specconv.RECURSIVE_OPTIONS | specconv.EXTENSIONS)


def test_flags_reach_tmpfs_and_bind_mounts(sh, tmp_path, no_mount_residue):
    # as data, "iversion" would make tmpfs fail and "symfollow" be lost on a bind
    tmpfs = configs.Mount("tmpfs", "/tmp", "tmpfs",
                          ["nosymfollow", "strictatime", "lazytime", "sync", "nodev", "iversion"],
                          "size=1m")
    bind = configs.Mount(str(tmp_path), "/mnt", "bind",
                         ["bind", "rw", "ro", "nosymfollow", "noatime", "nosuid", "noexec",
                          "symfollow"])
    status, out = sh("cat /proc/self/mountinfo", [tmpfs, bind])
    assert status == 0, out
    per_mount, sb = mount_options(out, "/tmp")
    assert {"nosymfollow", "nodev"} <= per_mount and "relatime" not in per_mount
    assert {"lazytime", "sync"} <= sb
    per_mount, _ = mount_options(out, "/mnt")
    assert {"ro", "noatime", "nosuid", "noexec"} <= per_mount
    assert "nosymfollow" not in per_mount       # the last of two contrary ones wins


def test_tmpcopyup_fills_the_tmpfs_with_what_it_covers(sh, rootfs, tmp_path, no_mount_residue):
    # /etc of the image is copied, with modes, owners and symlinks; writes
    # stay in the tmpfs
    tmpfs = configs.Mount("tmpfs", "/etc", "tmpfs", ["nosuid"], "size=1m", tmpcopyup=True)
    before = sorted(os.listdir(os.path.join(rootfs, "etc")))
    st = os.stat(os.path.join(rootfs, "etc", "passwd"))
    status, out = sh("ls /etc; stat -c '%a %u' /etc/passwd; echo x > /etc/new && echo wrote; "
                     "grep ' /etc ' /proc/self/mountinfo", [tmpfs])
    assert status == 0, out
    lines = out.split("\n")
    assert lines[:len(before)] == before
    assert f"{st.st_mode & 0o7777:o} {st.st_uid}" in out
    assert "wrote" in out and "- tmpfs " in out
    assert sorted(os.listdir(os.path.join(rootfs, "etc"))) == before


def test_tmpcopyup_keeps_owners_and_links(factory, make_config, tmp_path, no_mount_residue):
    root = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", make_config().rootfs, str(root)], check=True)
    data = root / "srv"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "f").write_text("hello")
    os.chown(data / "sub", 1234, 4321)
    os.chmod(data / "sub", 0o750)
    os.symlink("/etc/passwd", data / "link")
    config = make_config(mounts=configs.default_mounts() + [
        configs.Mount("tmpfs", "/srv", "tmpfs", ["ro"], tmpcopyup=True)])
    config.rootfs = str(root)
    container = factory.create(unique(), config)
    try:
        status, out = capture(container, ["/bin/sh", "-c",
                                          "stat -c '%a %u %g' /srv/sub; cat /srv/sub/f; echo; "
                                          "readlink /srv/link; touch /srv/x"], join=False)
    finally:
        container.destroy()
    assert out.split("\n")[:3] == ["750 1234 4321", "hello", "/etc/passwd"], out
    assert "Read-only file system" in out       # read-only once filled


# --------------------------------------------------------------------------
# recursive attributes
# --------------------------------------------------------------------------

@pytest.fixture
def tree_with_submount(tmp_path):
    """A host directory with a tmpfs mounted in it (removed afterwards)."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    mount("tmpfs", str(src / "sub"), "tmpfs", 0, "size=1m")
    try:
        yield src
    finally:
        umount2(str(src / "sub"), MNT_DETACH)


def test_recursive_read_only_bind(sh, tree_with_submount):
    # "ro" leaves the submount writable; "rro" (Kubernetes recursiveReadOnly)
    # makes the whole tree read-only, with rnosuid for every mount too
    script = "touch /mnt/sub/f && echo sub-writable; grep ' /mnt' /proc/self/mountinfo"
    plain = configs.Mount(str(tree_with_submount), "/mnt", "bind", ["rbind", "ro"])
    status, out = sh(script, [plain])
    assert "sub-writable" in out, out
    rec = configs.Mount(str(tree_with_submount), "/mnt", "bind", ["rbind"],
                        recursive=["rro", "rnosuid", "rnoatime"])
    status, out = sh(script, [rec])
    assert "sub-writable" not in out and "Read-only file system" in out, out
    for point in ("/mnt", "/mnt/sub"):
        assert {"ro", "nosuid", "noatime"} <= mount_options(out, point)[0]


def test_recursive_attributes_through_pyrunc_options(sh, tree_with_submount):
    m = oci_mount(destination="/mnt", type="bind", source=str(tree_with_submount),
                  options=["rbind", "rro", "rrw", "rnodev", "rstrictatime"])
    status, out = sh("touch /mnt/sub/f && echo ok; grep ' /mnt' /proc/self/mountinfo", [m])
    assert "ok" in out, out       # rrw after rro: the last one wins
    opts = mount_options(out, "/mnt/sub")[0]
    assert "nodev" in opts and "relatime" not in opts and "noatime" not in opts


def test_unknown_recursive_attribute_is_refused(factory, make_config):
    config = make_config(mounts=[configs.Mount("/tmp", "/mnt", "bind", ["bind"],
                                               recursive=["rbogus"])])
    with pytest.raises(ConfigError, match=r"mounts\[0\]\.recursive: unknown recursive mount "
                                          r"attribute 'rbogus'"):
        factory.create(unique(), config)


# --------------------------------------------------------------------------
# id-mapped mounts
# --------------------------------------------------------------------------

@pytest.fixture
def shared_dir():
    """A directory other uids can reach (pytest's tmp_path is mode 700)."""
    path = tempfile.mkdtemp(prefix=unique("idmap") + "-", dir="/tmp")
    os.chmod(path, 0o755)
    (pathlib.Path(path) / "old").write_text("")
    os.chown(os.path.join(path, "old"), 1234, 1234)
    yield pathlib.Path(path)
    shutil.rmtree(path)


def test_idmapped_bind_without_a_user_namespace(sh, shared_dir, no_mount_residue):
    # container uid 0 is host uid 1234 through this mount, both ways
    maps = [configs.IDMap(1234, 0, 1)]
    os.chown(shared_dir, 1234, 1234)
    m = configs.Mount(str(shared_dir), "/mnt", "bind", ["bind"], idmap="idmap",
                      uid_mappings=maps, gid_mappings=maps)
    status, out = sh("stat -c '%u:%g' /mnt/old; touch /mnt/new && echo made", [m])
    assert status == 0, out
    assert out.split("\n")[:2] == ["0:0", "made"]
    st = os.stat(shared_dir / "new")
    assert (st.st_uid, st.st_gid) == (1234, 1234)


def test_idmapped_bind_with_the_user_namespaces_mappings(factory, rootfs, shared_dir,
                                                         no_mount_residue):
    # Kubernetes user-namespace pods: "idmap" without mappings of its own
    # uses the container's; its root then writes files the host's root owns
    os.chown(shared_dir / "old", 0, 0)
    maps = [configs.IDMap(0, 300000, 65536)]
    mounts = configs.default_mounts() + [
        configs.Mount(str(shared_dir), "/home", "bind", ["rbind"], idmap="idmap"),
        configs.Mount(str(shared_dir), "/mnt", "bind", ["rbind"])]
    config = configs.Config(rootfs=rootfs, hostname="idmap", capabilities=None,
                            namespaces=[configs.Namespace(t) for t in ["NEWUSER", *NS]],
                            uid_mappings=maps, gid_mappings=maps, mounts=mounts)
    container = factory.create(unique(), config)
    try:
        status, out = capture(container, ["/bin/sh", "-c",
                                          "stat -c %u /home/old /mnt/old; touch /home/a"],
                              join=False)
    finally:
        container.destroy()
    assert status == 0, out
    assert out.split("\n")[:2] == ["0", "65534"]     # unmapped without the idmap
    assert os.stat(shared_dir / "a").st_uid == 0      # not 300000


@pytest.mark.parametrize("kind, sub_owner", [("idmap", "0"), ("ridmap", "1234")])
def test_ridmap_maps_the_submounts_too(sh, tree_with_submount, kind, sub_owner):
    maps = [configs.IDMap(0, 1234, 1)]      # what the disk says is 0 shows as 1234
    m = configs.Mount(str(tree_with_submount), "/mnt", "bind", ["rbind"], idmap=kind,
                      uid_mappings=maps, gid_mappings=maps)
    status, out = sh("stat -c %u /mnt /mnt/sub", [m])
    assert status == 0, out
    assert out.split("\n")[:2] == ["1234", sub_owner]


def test_idmapped_mount_errors_name_the_field(factory, make_config, shared_dir):
    m = configs.Mount(str(shared_dir), "/mnt", "bind", ["bind"], idmap="idmap")
    with pytest.raises(ConfigError, match=r"mounts\[0\]\.idmap: no uid/gid mappings of its "
                                          r"own, and no user namespace"):
        factory.create(unique(), make_config(mounts=[m]))
    m.uid_mappings = m.gid_mappings = [configs.IDMap(0, 1000, 0)]
    with pytest.raises(ConfigError, match=r"mounts\[0\]\.uid_mappings\[0\]\.size: must be "
                                          r"positive"):
        factory.create(unique(), make_config(mounts=[m]))


def test_idmap_on_a_filesystem_without_support(factory, make_config, state_root,
                                               no_mount_residue):
    # procfs cannot be id-mapped: a one-line error naming the mount, nothing left
    maps = [configs.IDMap(0, 1000, 1)]
    m = configs.Mount("/proc/sys", "/mnt", "bind", ["bind"], idmap="idmap",
                      uid_mappings=maps, gid_mappings=maps)
    container = factory.create(unique(), make_config(mounts=configs.default_mounts() + [m]))
    try:
        with pytest.raises(SetupError, match=r"mounts\[6\]\.idmap: /proc/sys is on a proc "
                                             r"filesystem, which does not support id-mapped"):
            capture(container, ["true"], join=False)
    finally:
        container.destroy()


# --------------------------------------------------------------------------
# a real client
# --------------------------------------------------------------------------

from test_pyrunc import podman  # noqa: E402,F401  (the module-scoped fixture)


@pytest.mark.clients
def test_podman_tmpfs_comes_up_with_the_images_content(podman):  # noqa: F811
    # podman's --tmpfs asks for tmpcopyup: the image's /etc is there, writable
    p = podman("run", "--rm", "--tmpfs", "/etc", "lct-busybox", "sh", "-c",
               "head -n1 /etc/passwd; touch /etc/x && grep ' /etc ' /proc/self/mountinfo")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("root:") and "- tmpfs " in p.stdout, p.stdout


@pytest.mark.clients
def test_podman_idmap_volume(podman, shared_dir):  # noqa: F811
    # a user-namespaced container writes through an :idmap volume as the
    # host's root, where a plain volume would show its files unmapped
    p = podman("run", "--rm", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536",
               "-v", f"{shared_dir}:/mnt:idmap", "lct-busybox", "sh", "-c",
               "touch /mnt/new; stat -c %u /mnt /mnt/new")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "0"]
    assert os.stat(shared_dir / "new").st_uid == 0


def test_mounts_after_a_mount_onto_the_root_land_on_it(factory, make_config, rootfs, tmp_path):
    """The rootfs is opened once for the lookups of all mounts
    (core/rootpath.py held()): after a mount onto "/" itself, the next
    mounts must go onto that new root, not beneath it where the container
    never sees them. A private copy: missed, /dev's nodes land in the image."""
    image = copy_rootfs(rootfs, str(tmp_path / "image"))
    mounts = [configs.Mount(image, "/", "bind", ["rbind", "ro"]),
              configs.Mount("tmpfs", "/tmp", "tmpfs", ["nosuid"], "size=1m")]
    config = make_config(mounts=mounts + configs.default_mounts())
    config.rootfs = image
    container = factory.create(unique(), config)
    try:
        status, out = capture(container, ["/bin/cat", "/proc/self/mountinfo"], join=False)
    finally:
        container.destroy()
    assert status == 0, out
    line = next(l for l in out.splitlines() if l.split()[4] == "/tmp")
    assert line.partition(" - ")[2].split()[0] == "tmpfs", out
