"""The Kubernetes node path: containerd's CRI plugin runs pods on pyrunc.

The test plays the kubelet against a private containerd (tests/cri/node.py)
over the CRI v1 gRPC API (tests/cri/client.py): a pod with two containers,
its network from CNI, limits, exec, stats, logs, stop with a grace period,
removal, and then nothing left behind. The same scenario runs with the `runc`
handler as the control; the table of both is printed at the end and kept in
docs/kubernetes.md. `make test-cri` runs just this file.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager

import pytest

from conftest import BIN, TOKEN, unique

grpc = pytest.importorskip("grpc", reason="grpcio not installed: pip install -e '.[test]'")
pytest.importorskip("grpc_tools", reason="grpcio-tools not installed: pip install -e '.[test]'")

from cri.node import IMAGE, Node, cgroup_dir, cgroup_file  # noqa: E402

pytestmark = pytest.mark.cri

PYRUNC = os.path.join(BIN, "pyrunc")
HANDLERS = ["runc", "pyrunc"]
RESULTS = {}            # handler -> {step: "ok" | "FAIL: ..."}

SERVER = ("trap 'exit 42' TERM\n"
          'echo "up: cwd=$(pwd) uid=$(id -u) greeting=$GREETING host=$(hostname)"\n'
          "while :; do nc -l -p 8080 -e /bin/cat /data/msg & wait $!; echo served; done\n")
STUBBORN = "trap '' TERM\nwhile :; do sleep 1; done\n"
# allocates once told to: the OOM must come after StartContainer returned (below)
HOG = ("until [ -e /data/go ]; do sleep 0.05; done\n"
       "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived")
MEMORY = 64 << 20
# what a restricted pod security profile asks for
CONFINED = {"seccomp": {"profile_type": "RuntimeDefault"},
            "capabilities": {"drop_capabilities": ["ALL"]},
            "readonly_rootfs": True, "no_new_privs": True}


@pytest.fixture(scope="module")
def node(tmp_path_factory, rootfs, request):
    missing = [b for b in ("containerd", "ctr", "containerd-shim-runc-v2", "runc")
               if shutil.which(b) is None]
    missing += [p for p in ("bridge", "host-local", "loopback")
                if not os.path.exists(f"/usr/lib/cni/{p}")]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: run 'make test-cri'")
    n = Node(tmp_path_factory.mktemp("cri"), rootfs, PYRUNC)
    try:
        n.start()
        yield n
    finally:
        n.close()
        if RESULTS:
            capture = request.config.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled():
                print("\n" + results_table())


def results_table():
    steps = list(dict.fromkeys(s for rows in RESULTS.values() for s in rows))
    handlers = [h for h in HANDLERS if h in RESULTS]
    lines = ["| step | " + " | ".join(handlers) + " |",
             "|---|" + "---|" * len(handlers)]
    for s in steps:
        lines.append(f"| {s} | " + " | ".join(RESULTS[h].get(s, "not reached")
                                              for h in handlers) + " |")
    return "\n".join(lines)


class Steps:
    """Records each step's outcome for the table; a failed check is kept
    and the scenario goes on, a failed lifecycle call ends it."""

    def __init__(self, handler):
        self.rows = RESULTS.setdefault(handler, {})
        self.failed = []

    @contextmanager
    def __call__(self, name, fatal=False):
        try:
            yield
        except Exception as e:
            self.rows[name] = "FAIL: " + " ".join(str(e).split())[:160]
            self.failed.append(f"{name}: {e}")
            if fatal:
                raise
        else:
            self.rows[name] = "ok"


def wait_for(fn, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
            if value:
                return value
        except Exception:
            if time.monotonic() > deadline:
                raise
        assert time.monotonic() < deadline, \
            f"timed out waiting for {what() if callable(what) else what}"
        time.sleep(0.1)


def container_config(name, args, memory, log, **extra):
    ns = {"network": "POD", "pid": "CONTAINER", "ipc": "POD"}
    config = {"metadata": {"name": name}, "image": {"image": IMAGE},
              "command": ["/bin/sh", "-c"], "args": [args], "log_path": log,
              "linux": {"resources": {"memory_limit_in_bytes": memory},
                        "security_context": {"namespace_options": ns}}}
    for key, value in extra.items():
        if key in ("resources", "security_context"):
            config["linux"][key].update(value)
        else:
            config[key] = value
    return config


@pytest.mark.parametrize("handler", HANDLERS)
def test_pod_lifecycle(node, handler, tmp_path):
    cri, step = node.cri, Steps(handler)
    pod_name = unique("pod")
    logs = tmp_path / "logs"
    logs.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    msg = f"pong-{TOKEN}\n"
    (data / "msg").write_text(msg)
    sandbox = {
        "metadata": {"name": pod_name, "uid": unique(), "namespace": "default"},
        "hostname": pod_name, "log_directory": str(logs),
        "dns_config": {"servers": [f"{node.subnet_prefix}.53"], "searches": ["lct.example"],
                       "options": ["ndots:2"]},
        "labels": {"lct": TOKEN},
        "linux": {"cgroup_parent": node.cgroup_parent,
                  "sysctls": {"net.ipv4.ip_unprivileged_port_start": "80"},
                  "security_context": {"namespace_options": {"network": "POD",
                                                             "pid": "CONTAINER",
                                                             "ipc": "POD"}}}}
    pod = None
    try:
        with step("Version: CRI API v1"):
            assert cri.Version(version="v1").runtime_api_version == "v1"

        with step("RunPodSandbox: cgroup parent, hostname, DNS, CNI network", fatal=True):
            pod = cri.RunPodSandbox(config=sandbox, runtime_handler=handler).pod_sandbox_id

        with step("PodSandboxStatus: ready, IP from the CNI subnet"):
            status = cri.PodSandboxStatus(pod_sandbox_id=pod).status
            assert status.state == 0 and status.runtime_handler == handler, status
            assert status.network.ip.startswith(node.subnet_prefix + "."), status.network

        with step("an init container runs to completion: exited 0, Completed"):
            init = cri.CreateContainer(
                pod_sandbox_id=pod, sandbox_config=sandbox,
                config=container_config("init", "echo init done", 16 << 20, "init.log")
            ).container_id
            cri.StartContainer(container_id=init)
            status = wait_for(lambda: (s := cri.ContainerStatus(container_id=init).status)
                              .state == 2 and s, what="the init container to exit")
            assert (status.exit_code, status.reason) == (0, "Completed"), status
            cri.RemoveContainer(container_id=init)

        server_config = container_config(
            "server", SERVER, MEMORY, "server.log", working_dir="/tmp",
            envs=[{"key": "GREETING", "value": "hello-cri"}],
            mounts=[{"container_path": "/data", "host_path": str(data), "readonly": True}],
            resources={"cpu_period": 100000, "cpu_quota": 50000, "cpu_shares": 512},
            security_context={"run_as_user": {"value": 1000}})
        with step("CreateContainer + StartContainer: args, env, cwd, ro mount, "
                  "run_as_user, memory and cpu limits", fatal=True):
            server = cri.CreateContainer(pod_sandbox_id=pod, config=server_config,
                                         sandbox_config=sandbox).container_id
            cri.StartContainer(container_id=server)
        with step("CreateContainer + StartContainer: a second container in the pod",
                  fatal=True):
            sidecar = cri.CreateContainer(
                pod_sandbox_id=pod, sandbox_config=sandbox,
                config=container_config("sidecar", STUBBORN, 32 << 20, "sidecar.log",
                                        security_context=CONFINED)).container_id
            cri.StartContainer(container_id=sidecar)

        with step("ContainerStatus: running, pid", fatal=True):
            reply = cri.ContainerStatus(container_id=server, verbose=True)
            assert reply.status.state == 1, reply.status
            pid = json.loads(reply.info["info"])["pid"]
        with step("the containers are run by the handler's binary (in its state dir)"):
            state = os.path.join(node.roots[handler], "k8s.io")
            assert {pod, server, sidecar} <= set(os.listdir(state)), os.listdir(state)

        with step("memory and cpu limits in the container's cgroup under the parent"):
            limit, path = cgroup_file(pid, "memory", "memory.limit_in_bytes")
            assert path == f"{node.cgroup_parent}/{server}"
            assert int(open(limit).read()) == MEMORY
            quota, _ = cgroup_file(pid, "cpu", "cpu.cfs_quota_us")
            assert int(open(quota).read()) == 50000
            shares, _ = cgroup_file(pid, "cpu", "cpu.shares")
            assert int(open(shares).read()) == 512

        with step("UpdateContainerResources: a new memory limit in the cgroup"):
            cri.UpdateContainerResources(container_id=server, linux={
                "memory_limit_in_bytes": MEMORY // 2, "cpu_period": 100000,
                "cpu_quota": 50000, "cpu_shares": 512})
            assert int(open(limit).read()) == MEMORY // 2

        log = logs / "server.log"
        with step("the process's cwd, user, env, hostname (in its CRI log); DNS config"):
            line = wait_for(lambda: "up:" in log.read_text() and log.read_text(),
                            what="the server's first line in its log")
            assert (f"stdout F up: cwd=/tmp uid=1000 greeting=hello-cri host={pod_name}\n"
                    in line), line
            r = cri.ExecSync(container_id=server, cmd=["cat", "/etc/resolv.conf"], timeout=10)
            assert f"nameserver {node.subnet_prefix}.53" in r.stdout.decode()
            assert "search lct.example" in r.stdout.decode()

        with step("the pod's sysctl, in the pod's network namespace"):
            r = cri.ExecSync(container_id=sidecar, timeout=10,
                             cmd=["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])
            assert r.stdout == b"80\n", r

        with step("ExecSync: stdout, stderr, exit code, the container's user"):
            r = cri.ExecSync(container_id=sidecar, timeout=10,
                             cmd=["sh", "-c", "echo out; echo err >&2; exit 3"])
            assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 3), r
            r = cri.ExecSync(container_id=server, cmd=["id", "-u"], timeout=10)
            assert (r.stdout, r.exit_code) == (b"1000\n", 0), r

        with step("security context: RuntimeDefault seccomp, no capabilities, no_new_privs, "
                  "read-only rootfs"):
            r = cri.ExecSync(container_id=sidecar, timeout=10, cmd=[
                "sh", "-c", "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
                "touch /lct-x 2>/dev/null && echo rootfs: writable"])
            fields = {k: v.strip() for k, v in
                      (line.split(":", 1) for line in r.stdout.decode().splitlines())}
            assert fields == {"CapEff": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}, \
                r.stdout

        with step("ExecSync timeout: an error, and the command is killed"):
            with pytest.raises(grpc.RpcError) as e:
                cri.ExecSync(container_id=sidecar, cmd=["sleep", "37"], timeout=1)
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value
            wait_for(lambda: "sleep 37" not in cri.ExecSync(
                container_id=sidecar, cmd=["ps", "-o", "args"], timeout=10).stdout.decode(),
                what="the timed-out exec to be gone")

        with step("containers share the pod's network (nc over localhost) and IPC, not PID"):
            def fetch():
                r = cri.ExecSync(container_id=sidecar, cmd=["nc", "127.0.0.1", "8080"],
                                 timeout=10)
                return r.stdout.decode() == msg
            wait_for(fetch, what="the server's reply over localhost")
            ns = ["sh", "-c", "for n in net ipc pid; do readlink /proc/self/ns/$n; done"]
            a = cri.ExecSync(container_id=server, cmd=ns, timeout=10).stdout.split()
            b = cri.ExecSync(container_id=sidecar, cmd=ns, timeout=10).stdout.split()
            assert len(a) == 3 and a[:2] == b[:2] and a[2] != b[2], (a, b)

        with step("the host path mount is read-only"):
            r = cri.ExecSync(container_id=server, cmd=["grep", " /data ", "/proc/mounts"],
                             timeout=10)
            assert r.stdout.decode().split()[3].split(",")[0] == "ro", r.stdout

        with step("ContainerStats: cpu and memory"):
            stats = cri.ContainerStats(container_id=server).stats
            assert stats.attributes.id == server
            assert stats.memory.working_set_bytes.value > 0, stats
            assert stats.cpu.usage_core_nano_seconds.value > 0, stats

        with step("ReopenContainerLog after the log was rotated"):
            os.rename(log, str(log) + ".1")
            cri.ReopenContainerLog(container_id=server)
            cri.ExecSync(container_id=sidecar, cmd=["nc", "127.0.0.1", "8080"], timeout=10)
            wait_for(lambda: "stdout F served" in log.read_text(),
                     what="a new line in the reopened log")

        with step("a container over its memory limit: exited, OOMKilled"):
            job = server    # if its creation fails
            job = cri.CreateContainer(
                pod_sandbox_id=pod, sandbox_config=sandbox,
                config=container_config("hog", HOG, 16 << 20, "hog.log", mounts=[
                    {"container_path": "/data", "host_path": str(data), "readonly": True}])
            ).container_id
            cri.StartContainer(container_id=job)
            # containerd's shim watches for OOM kills once the runtime's `start`
            # has exited: pyrunc's exits 10-200 ms after the exec (docs/kubernetes.md)
            (data / "go").touch()
            seen = []     # containerd may record the OOM event just after the exit

            def oom_killed():
                seen[:] = [cri.ContainerStatus(container_id=job).status]
                return (seen[0].state, seen[0].reason) == (2, "OOMKilled")
            wait_for(oom_killed, what=lambda: "the memory hog to be OOM killed: state {}, "
                     "exit code {}, reason {!r}".format(seen[0].state, seen[0].exit_code,
                                                        seen[0].reason))
            assert seen[0].exit_code == 137, seen[0]

        with step("StopContainer: SIGTERM handled within the grace period (exit 42)"):
            cri.StopContainer(container_id=server, timeout=20)
            status = cri.ContainerStatus(container_id=server).status
            assert (status.state, status.exit_code) == (2, 42), status

        with step("StopContainer: SIGTERM ignored, SIGKILL after the grace period (137)"):
            cri.StopContainer(container_id=sidecar, timeout=1)
            status = cri.ContainerStatus(container_id=sidecar).status
            assert (status.state, status.exit_code) == (2, 137), status

        with step("StopContainer again (the kubelet retries): no error"):
            cri.StopContainer(container_id=sidecar, timeout=1)

        with step("RemoveContainer", fatal=True):
            for c in (server, sidecar, job):
                cri.RemoveContainer(container_id=c)
            assert not cri.ListContainers(filter={"pod_sandbox_id": pod}).containers

        with step("StopPodSandbox (twice) + RemovePodSandbox", fatal=True):
            cri.StopPodSandbox(pod_sandbox_id=pod)
            cri.StopPodSandbox(pod_sandbox_id=pod)      # idempotent, as the kubelet expects
            cri.RemovePodSandbox(pod_sandbox_id=pod)
            pod = None

        with step("nothing left: tasks, runtime state, cgroups, netns, veth, mounts, shims"):
            try:
                wait_for(lambda: not node.leftovers(), timeout=10)
            except AssertionError:
                raise AssertionError(f"left behind: {node.leftovers()}") from None
    finally:
        if pod:
            for call in (cri.StopPodSandbox, cri.RemovePodSandbox):
                try:
                    call(pod_sandbox_id=pod)
                except grpc.RpcError:
                    pass
    assert not step.failed, "\n".join(step.failed)


@pytest.mark.parametrize("handler", HANDLERS)
def test_shared_pid_namespace(node, handler, tmp_path):
    """shareProcessNamespace: the container joins the sandbox's PID namespace
    by path and sees the pause process; stopping it kills only its own."""
    ns = {"network": "POD", "pid": "POD", "ipc": "POD"}
    sandbox = {"metadata": {"name": unique("pod"), "uid": unique(), "namespace": "default"},
               "log_directory": str(tmp_path), "hostname": "shared",
               "linux": {"cgroup_parent": node.cgroup_parent,
                         "security_context": {"namespace_options": ns}}}
    cri = node.cri
    pod = cri.RunPodSandbox(config=sandbox, runtime_handler=handler).pod_sandbox_id
    try:
        config = container_config("c", "sleep 1000 & wait", 32 << 20, "c.log",
                                  security_context={"namespace_options": ns})
        cid = cri.CreateContainer(pod_sandbox_id=pod, config=config,
                                  sandbox_config=sandbox).container_id
        cri.StartContainer(container_id=cid)
        r = cri.ExecSync(container_id=cid, cmd=["ps", "-o", "pid,args"], timeout=10)
        procs = dict(line.split(None, 1) for line in r.stdout.decode().splitlines()[1:])
        assert "/bin/sh /pause" in procs.get("1", ""), procs
        assert "sleep 1000" in procs.values(), procs
        cri.StopContainer(container_id=cid, timeout=0)
        assert cri.ContainerStatus(container_id=cid).status.state == 2
        assert cri.PodSandboxStatus(pod_sandbox_id=pod).status.state == 0   # pause lives on
        cri.RemoveContainer(container_id=cid)
    finally:
        cri.StopPodSandbox(pod_sandbox_id=pod)
        cri.RemovePodSandbox(pod_sandbox_id=pod)
    try:
        wait_for(lambda: not node.leftovers(), timeout=10)
    except AssertionError:
        raise AssertionError(f"left behind: {node.leftovers()}") from None


def runtime(binary, root, *args):
    """(status, output) of a runtime command; output through a file: a
    created container keeps the runtime's stdio."""
    with tempfile.TemporaryFile("w+") as out:
        p = subprocess.run([binary, "--root", root, *args], stdout=out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=60)
        out.seek(0)
        return p.returncode, out.read()


@pytest.mark.parametrize("handler", ["runc", "pyrunc"])
def test_kill_all_after_the_init_died_in_a_shared_pid_namespace(node, handler, tmp_path):
    """What containerd's shim runs when the init of a container sharing the
    pod's PID namespace exits: `kill --all ID KILL` must kill the processes
    left in the container's cgroup (reparented to the pod's init). Without
    it they hold the container's stdio, and the stop waits for containerd's
    I/O timeout (2 s) and the `delete` that follows."""
    binary, root = node.binaries[handler], str(tmp_path / "state")
    ids, cgroups = [], []

    def bundle(args, edit=lambda spec: None):
        cid = unique("kill")
        path = tmp_path / cid
        path.mkdir()
        assert runtime(PYRUNC, root, "spec", "--bundle", str(path))[0] == 0
        spec = json.loads((path / "config.json").read_text())
        spec["process"].update(terminal=False, args=args)
        spec["root"] = {"path": node.rootfs, "readonly": True}
        spec["linux"]["cgroupsPath"] = f"{node.cgroup_parent}/{cid}"
        edit(spec)
        (path / "config.json").write_text(json.dumps(spec))
        status, out = runtime(binary, root, "create", "--bundle", str(path),
                              "--pid-file", str(path / "pid"), cid)
        assert status == 0, out
        ids.append(cid)
        cgroups.append(f"{node.cgroup_parent}/{cid}")
        assert runtime(binary, root, "start", cid)[0] == 0
        return cid, int((path / "pid").read_text())

    def join_pid_ns(spec):
        spec["linux"]["namespaces"] = [
            dict(ns, path=f"/proc/{pod_init}/ns/pid") if ns["type"] == "pid" else ns
            for ns in spec["linux"]["namespaces"]]

    try:
        _, pod_init = bundle(["sleep", "1000"])
        cid, init = bundle(["sh", "-c", "sleep 1001 & sleep 1002; true"], join_pid_ns)
        procs = os.path.join(cgroup_dir("memory", cgroups[1]), "cgroup.procs")
        wait_for(lambda: len(open(procs).read().split()) == 3, what="the container's 3 processes")
        os.kill(init, signal.SIGKILL)
        wait_for(lambda: runtime(binary, root, "state", cid)[1].count('"stopped"'),
                 what="the container to be stopped")
        status, out = runtime(binary, root, "kill", "--all", cid, "KILL")
        assert status == 0, out
        wait_for(lambda: not open(procs).read().split(), timeout=5,
                 what="kill --all to kill what is left in the container's cgroup")
    finally:
        for cid in reversed(ids):
            runtime(binary, root, "delete", "--force", cid)
