"""A private Kubernetes node for the CRI tests.

containerd with its CRI plugin, started with its own config, root, state and
socket; runtime handlers `pyrunc` (the runc v2 shim with `BinaryName` set to
pyrunc) and `runc`; CNI bridge networking (Debian's containernetworking-
plugins) on a private subnet behind a bridge of the run's unique prefix that
has no address (nothing is routed or forwarded outside the pods); a busybox
image built here, imported with `ctr images import` and used as the pod
sandbox ("pause") image. close() removes everything even after a failure,
killing only processes this node started.
"""
import hashlib
import io
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import tarfile
import time

from conftest import PREFIX, TOKEN, unique

from .client import CRI

NAMESPACE = "k8s.io"
IMAGE = "localhost/lct-pause:1"
CNI_BIN = "/usr/lib/cni"
# the pod sandbox: hold the pod's namespaces until stopped
PAUSE = (b"#!/bin/sh\ntrap 'exit 0' TERM INT\n"
         b"while :; do sleep 3600 & wait $!; done\n")


def mountinfo():
    """[(mount point, fs type, super options)] of this mount namespace."""
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    return [(r[4], r[r.index("-") + 1], r[-1]) for r in rows]


def cgroup_mounts():
    """Mount points of the cgroup hierarchies (by fs type, not by path)."""
    return [mp for mp, fs, _ in mountinfo() if fs in ("cgroup", "cgroup2")]


def cgroup_file(pid, controller, name):
    """(host path of `name` in `pid`'s v1 `controller` cgroup, cgroup path)."""
    with open(f"/proc/{pid}/cgroup") as f:
        paths = dict(line.rstrip("\n").split(":", 2)[1:] for line in f)
    path = next(p for ctrls, p in paths.items() if controller in ctrls.split(","))
    return os.path.join(cgroup_dir(controller, path), name), path


def cgroup_dir(controller, path):
    """The host directory of cgroup `path` in the v1 `controller` hierarchy."""
    mp = next(mp for mp, fs, opts in mountinfo()
              if fs == "cgroup" and controller in opts.split(","))
    return os.path.join(mp, path.lstrip("/"))


def image_tarball(rootfs, path, name):
    """A docker-archive image: one layer (the rootfs plus /pause), made here
    from the busybox rootfs -- no registry."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        # no device node a test may have left in the rootfs: /dev is the runtime's
        t.add(rootfs, arcname=".", filter=lambda m: None if m.isdev() else m)
        info = tarfile.TarInfo("pause")
        info.mode, info.size = 0o755, len(PAUSE)
        t.addfile(info, io.BytesIO(PAUSE))
    layer = layer.getvalue()
    diff = hashlib.sha256(layer).hexdigest()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Entrypoint": ["/pause"],
                   "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff}"]}}).encode()
    config_id = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{config_id}.json", "RepoTags": [name],
                            "Layers": [f"{diff}/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as t:
        for member, data in (("manifest.json", manifest), (f"{config_id}.json", config),
                             (f"{diff}/layer.tar", layer)):
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))


class Node:
    def __init__(self, tmp, rootfs, pyrunc):
        self.dir = str(tmp)
        self.rootfs = rootfs
        self.sock = os.path.join(self.dir, "containerd.sock")
        self.binaries = {"pyrunc": pyrunc, "runc": shutil.which("runc")}
        self.roots = {h: os.path.join(self.dir, f"{h}-root") for h in self.binaries}
        self.bridge = f"{PREFIX}{TOKEN}br"          # an interface name: <= 15 chars
        self.network = unique("net")
        self.subnet_prefix = f"10.99.{random.randrange(1, 250)}"
        self.cgroup_parent = "/" + unique("cri")
        self.netns_dir = os.path.join(self.dir, "state", "io.containerd.grpc.v1.cri", "netns")
        # made by the shims (sockets) and libcni (result cache) whatever the config says
        self.made = [d for d in ("/run/containerd", "/var/lib/cni") if not os.path.exists(d)]
        self.proc = self.cri = self.log = None

    # -- start ---------------------------------------------------------------

    def start(self):
        self._write_cni()
        config = os.path.join(self.dir, "config.toml")
        with open(config, "w") as f:
            f.write(self._config())
        self.log = open(os.path.join(self.dir, "containerd.log"), "w")
        self.proc = subprocess.Popen(["containerd", "--config", config], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait(lambda: os.path.exists(self.sock), "containerd's socket")
        self.cri = CRI(self.sock)

        def ready():
            conditions = self.cri.Status().status.conditions
            return conditions and all(c.status for c in conditions)
        self._wait(ready, "CRI RuntimeReady and NetworkReady")
        tarball = os.path.join(self.dir, "image.tar")
        image_tarball(self.rootfs, tarball, IMAGE)
        p = self.ctr("images", "import", "--snapshotter", "overlayfs", tarball)
        assert p.returncode == 0, p.stderr
        os.unlink(tarball)
        self._wait(lambda: self.cri.ImageStatus(image={"image": IMAGE}).image.id,
                   "the imported image in the CRI image store")

    def _wait(self, done, what, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"containerd exited:\n{self.tail()}"
            try:
                if done():
                    return
            except Exception:       # not up yet
                pass
            assert time.monotonic() < deadline, f"waited for {what}:\n{self.tail()}"
            time.sleep(0.05)

    def tail(self, n=3000):
        with open(os.path.join(self.dir, "containerd.log")) as f:
            return f.read()[-n:]

    def _write_cni(self):
        conf_dir = os.path.join(self.dir, "cni")
        os.makedirs(conf_dir)
        bridge = {"type": "bridge", "bridge": self.bridge, "isGateway": False, "ipMasq": False,
                  "ipam": {"type": "host-local",
                           "ranges": [[{"subnet": f"{self.subnet_prefix}.0/24"}]],
                           "dataDir": os.path.join(self.dir, "cni-ipam")}}
        with open(os.path.join(conf_dir, "10-lct.conflist"), "w") as f:
            json.dump({"cniVersion": "0.4.0", "name": self.network, "plugins": [bridge]}, f)

    def _config(self):
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        runtimes = "".join(
            f'[{cri}.containerd.runtimes.{h}]\n  runtime_type = "io.containerd.runc.v2"\n'
            f'[{cri}.containerd.runtimes.{h}.options]\n'
            f'  BinaryName = "{binary}"\n  Root = "{self.roots[h]}"\n  SystemdCgroup = false\n'
            for h, binary in self.binaries.items())
        return (
            "version = 2\n"
            f'root = "{self.dir}/root"\nstate = "{self.dir}/state"\n'
            'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", '
            '"io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", '
            '"io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt", '
            '"io.containerd.tracing.processor.v1.otlp"]\n'
            f'[grpc]\n  address = "{self.sock}"\n'
            f'[ttrpc]\n  address = "{self.sock}.ttrpc"\n'
            '[debug]\n  address = ""\n[metrics]\n  address = ""\n'
            f"[{cri}]\n"
            f'  sandbox_image = "{IMAGE}"\n'
            "  disable_apparmor = true\n"
            # no CAP_SYS_RESOURCE here: never below containerd's own oom_score_adj
            "  restrict_oom_score_adj = true\n"
            "  netns_mounts_under_state_dir = true\n"
            f"[{cri}.containerd]\n"
            '  snapshotter = "overlayfs"\n  default_runtime_name = "runc"\n'
            + runtimes +
            f"[{cri}.cni]\n"
            f'  bin_dir = "{CNI_BIN}"\n  conf_dir = "{self.dir}/cni"\n  max_conf_num = 1\n')

    def ctr(self, *args, timeout=60):
        return subprocess.run(["ctr", "--address", self.sock, "-n", NAMESPACE, *args],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=timeout)

    # -- what is left --------------------------------------------------------

    def shims(self):
        """Pids of the shims this node's containerd started."""
        pids = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"containerd-shim-runc-v2") and self.sock.encode() in argv:
                pids.append(int(pid))
        return pids

    def leftovers(self):
        """Everything a removed pod must not leave behind, by kind."""
        left = {}
        if self.proc and self.proc.poll() is None:
            left["tasks"] = self.ctr("tasks", "ls", "-q").stdout.split()
            left["containers"] = self.ctr("containers", "ls", "-q").stdout.split()
        left["runtime state"] = [f"{h}: {c}" for h, root in self.roots.items()
                                 for c in _listdir(os.path.join(root, NAMESPACE))]
        left["cgroups"] = [os.path.join(dirpath, d) for mp in cgroup_mounts()
                           for dirpath, dirs, _ in os.walk(
                               os.path.join(mp, self.cgroup_parent.lstrip("/")))
                           for d in dirs]
        left["netns"] = _listdir(self.netns_dir)
        left["veth"] = subprocess.run(["ip", "-o", "link", "show", "master", self.bridge],
                                      capture_output=True, text=True).stdout.splitlines()
        left["mounts"] = [mp for mp, *_ in mountinfo() if mp.startswith(self.dir + "/")]
        left["shims"] = self.shims()
        return {k: v for k, v in left.items() if v}

    # -- teardown ------------------------------------------------------------

    def close(self):
        if self.cri and self.proc.poll() is None:
            try:
                for pod in self.cri.ListPodSandbox().items:
                    self.cri.StopPodSandbox(pod_sandbox_id=pod.id)
                    self.cri.RemovePodSandbox(pod_sandbox_id=pod.id)
            except Exception:
                pass
            for task in self.ctr("tasks", "ls", "-q").stdout.split():
                self.ctr("tasks", "kill", "-s", "SIGKILL", task)
                self.ctr("tasks", "rm", "-f", task)
            for c in self.ctr("containers", "ls", "-q").stdout.split():
                self.ctr("containers", "rm", c)
        if self.cri:
            self.cri.close()
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
        # the shims' sockets, outside our state dir (containerd 1.6 puts them in
        # /run/containerd/s); removed by the shims themselves unless killed
        tasks = os.path.join(self.dir, "state", "io.containerd.runtime.v2.task", NAMESPACE)
        sockets = [open(os.path.join(tasks, t, "address")).read().split("unix://")[-1]
                   for t in _listdir(tasks) if os.path.exists(os.path.join(tasks, t, "address"))]
        for handler, root in self.roots.items():
            for cid in _listdir(os.path.join(root, NAMESPACE)):
                subprocess.run([self.binaries[handler], "--root", os.path.join(root, NAMESPACE),
                                "delete", "--force", cid], capture_output=True, timeout=60)
        for pid in self.shims():
            os.kill(pid, signal.SIGKILL)
        for path in sockets:
            if os.path.exists(path):
                os.unlink(path)
        for mp in sorted((mp for mp, *_ in mountinfo() if mp.startswith(self.dir + "/")),
                         key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        for name in _listdir(self.netns_dir):       # unmounted: the netns is freed
            os.unlink(os.path.join(self.netns_dir, name))
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        for mp in cgroup_mounts():
            top = os.path.join(mp, self.cgroup_parent.lstrip("/"))
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
        # libcni's cache of a pod it did not tear down names its netns, in our dir
        results = "/var/lib/cni/results"
        for name in _listdir(results):
            with open(os.path.join(results, name)) as f:
                if self.dir + "/" in f.read():
                    os.unlink(os.path.join(results, name))
        for top in self.made:           # only if we made them, and only what is empty
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
