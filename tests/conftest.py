"""Fixtures for tests that run real containers (as root).

Everything a test creates on the host is named with PREFIX and a per-run
token, and removed afterwards.
"""
import os
import subprocess
import sys
import uuid

import pytest

import libcontainer
from libcontainer import configs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "lct-"
TOKEN = uuid.uuid4().hex[:6]
BIN = os.path.dirname(sys.executable)


def unique(name=""):
    """A host-unique name: lct-<run token>-<name>-<random>."""
    return f"{PREFIX}{TOKEN}-{name + '-' if name else ''}{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory):
    built = os.path.join(REPO, "build", "rootfs")
    if not os.path.exists(os.path.join(built, "bin", "busybox")):
        built = str(tmp_path_factory.mktemp("rootfs") / "rootfs")
        subprocess.run([os.path.join(REPO, "tools", "mkrootfs"), built], check=True)
    yield built
    # the image is shared by every test: a runtime that made device nodes in
    # it (instead of in the container's /dev) changed an image it must not
    made = [n for n in os.listdir(os.path.join(built, "dev")) if _special(built, "dev", n)]
    assert not made, f"device nodes left in the shared rootfs's /dev: {made}"


def _special(*path):
    """A device node, fifo or socket: what a copy must not read."""
    import stat
    return not stat.S_ISREG(os.lstat(os.path.join(*path)).st_mode) and \
        not stat.S_ISDIR(os.lstat(os.path.join(*path)).st_mode) and \
        not os.path.islink(os.path.join(*path))


def copy_rootfs(src, dst):
    """A private copy of an image, without device nodes, fifos or sockets
    (copying /dev/zero would fill the disk)."""
    import shutil
    shutil.copytree(src, dst, symlinks=True,
                    ignore=lambda d, names: [n for n in names if _special(d, n)])
    return dst


# CI clones the repo beside shared/: the tool is found relative to the repo's parent
CGV2_VM = os.path.join(os.path.dirname(REPO), "shared", "tools", "cgv2-vm")


def cgv2_vm_problem():
    """None, or why the cgv2-vm guest cannot boot here (its first run
    installs qemu and the guest kernel, cached; no KVM is fine: TCG)."""
    if not os.access(CGV2_VM, os.X_OK):
        return f"cgv2-vm not found at {CGV2_VM} (shared/ must sit beside the checkout)"
    if os.geteuid() != 0:
        return "cgv2-vm needs root"
    setup = subprocess.run([CGV2_VM, "--setup"], capture_output=True, text=True, timeout=600)
    if setup.returncode != 0:
        last = (setup.stderr.strip().splitlines() or ["no output"])[-1]
        return f"cgv2-vm cannot run on this machine: {last}"
    return None


def gone(pid):
    """The process exited (a zombie nobody reaped yet counts)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] in "ZX"
    except FileNotFoundError:
        return True


@pytest.fixture
def state_root(tmp_path):
    root = tmp_path / "state"
    yield str(root)
    leftovers = os.listdir(root) if root.exists() else []
    assert not leftovers, f"state dirs left behind: {leftovers}"


@pytest.fixture
def factory(state_root):
    return libcontainer.new(state_root)


NAMESPACES = ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"]


@pytest.fixture
def make_config(rootfs):
    def make(**kw):
        kw.setdefault("namespaces", [configs.Namespace(t) for t in NAMESPACES])
        kw.setdefault("hostname", "testing")
        # the tests of other features run as a root keeping every capability
        # (the library's default is none, as runc's)
        kw.setdefault("capabilities", None)
        return configs.Config(rootfs=rootfs, **kw)
    return make


@pytest.fixture
def run(factory, make_config, tmp_path):
    """run(args, config=None, **process_kw) -> (exit status, stdout, stderr):
    create, start, wait, destroy."""
    def run(args, config=None, stdin=None, **kw):
        config = config or make_config()
        container = factory.create(unique(), config)
        out, err = tmp_path / "out", tmp_path / "err"
        try:
            with open(out, "wb") as o, open(err, "wb") as e:
                process = libcontainer.Process(args=args, stdin=stdin, stdout=o, stderr=e, **kw)
                container.start(process)
                status = process.wait()
        finally:
            container.destroy()
        return status, out.read_text(), err.read_text()
    return run


def nsinit(*args, root=None, input=None, cwd=None, env=None, timeout=60):
    """Run the nsinit CLI; returns CompletedProcess with text output."""
    cmd = [os.path.join(BIN, "nsinit")]
    if root:
        cmd += ["--root", root]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, input=input,
                          cwd=cwd, env=env, timeout=timeout)


def host_mounts(*under):
    with open("/proc/self/mountinfo") as f:
        points = sorted(line.split()[4] for line in f)
    return [p for p in points if not under or p.startswith(under)]


@pytest.fixture
def no_mount_residue(rootfs, tmp_path):
    """No mount made for the container shows up on the host: under the
    rootfs, the test's files, or the repository."""
    where = (rootfs, str(tmp_path), REPO)
    before = host_mounts(*where)
    yield
    assert host_mounts(*where) == before


HOST_DEVICES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]


def _device_owners():
    return {d: (os.stat(d).st_uid, os.stat(d).st_gid, os.stat(d).st_mode) for d in HOST_DEVICES}


@pytest.fixture(scope="session", autouse=True)
def host_devices_untouched():
    """A runtime must never chown or chmod the host's device nodes."""
    before = _device_owners()
    yield
    assert _device_owners() == before, "the host's device nodes were changed"


def read_all(fd):
    """Everything until EOF on `fd`, decoded."""
    chunks = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            return b"".join(chunks).decode()
        chunks.append(data)


def capture(container, args, join=True, **kw):
    """(status, stdout+stderr) of a process joined into `container` (or
    started as its init with join=False)."""
    r, w = os.pipe()
    p = libcontainer.Process(args=args, stdout=w, stderr=w, **kw)
    try:
        (container.run if join else container.start)(p)
    finally:
        os.close(w)
    out = read_all(r)
    os.close(r)
    return p.wait(), out


def read_pty(fd, until=None, timeout=15):
    """What `fd` (a pty master) gives until `until` (bytes) shows up, EOF
    (EIO once the other side is closed), or `timeout` seconds."""
    import select
    import time
    out = b""
    deadline = time.monotonic() + timeout
    while (until is None or until not in out) and time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.1)[0]:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    return out.decode(errors="replace")
