"""seccomp user notification (SCMP_ACT_NOTIFY): the runtime hands the notify
fd and the container process state to a seccomp agent listening at
``listenerPath``, and the agent answers the container's syscalls."""
import json
import os
import subprocess
import sys
import time

import pytest

import libcontainer
from libcontainer import configs
from libcontainer.errors import ConfigError, SetupError

from conftest import capture, unique

# A seccomp agent: accepts `expected` connections, saves the messages, and
# answers the notified syscalls of each fd -- the first with EMLINK, the
# next ones by letting them run (SECCOMP_USER_NOTIF_FLAG_CONTINUE) -- until
# every fd has hung up (its processes are gone).
AGENT = r"""
import errno, fcntl, json, os, select, socket, struct, sys
path, out, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(4)
open(out + ".ready", "w").close()
NOTIF_RECV, NOTIF_SEND = 0xc0502100, 0xc0182101   # _IOWR('!', 0|1, ...)
messages, answered = [], {}     # notify fd -> syscall numbers answered
poll = select.poll()
poll.register(srv, select.POLLIN)
live = set()
while len(messages) < expected or live:
    events = poll.poll(15000)
    if not events:
        break
    for fd, ev in events:
        if fd == srv.fileno():
            conn, _ = srv.accept()
            msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            conn.close()
            messages.append(json.loads(msg))
            answered[fds[0]] = []
            live.add(fds[0])
            poll.register(fds[0], select.POLLIN)
        elif ev & select.POLLHUP:
            poll.unregister(fd)
            live.discard(fd)
        else:
            buf = bytearray(80)                 # struct seccomp_notif
            try:
                fcntl.ioctl(fd, NOTIF_RECV, buf)
            except OSError:
                continue
            nid, pid, flags, nr = struct.unpack_from("=QIIi", buf)
            if not answered[fd]:
                resp = struct.pack("=QqiI", nid, 0, -errno.EMLINK, 0)
            else:
                resp = struct.pack("=QqiI", nid, 0, 0, 1)        # FLAG_CONTINUE
            answered[fd].append(nr)
            try:
                fcntl.ioctl(fd, NOTIF_SEND, bytearray(resp))
            except OSError:
                pass
with open(out, "w") as f:
    json.dump({"messages": messages, "answered": [answered[fd] for fd in sorted(answered)]}, f)
"""


@pytest.fixture
def agent(tmp_path, request):
    """Start the agent, expecting one connection (or as many as an indirect
    parameter says); agent.result() waits for its report."""
    sock, out = str(tmp_path / "agent.sock"), str(tmp_path / "agent.json")
    proc = subprocess.Popen([sys.executable, "-c", AGENT, sock, out,
                             str(getattr(request, "param", 1))])
    deadline = time.monotonic() + 10
    while not os.path.exists(out + ".ready"):
        assert proc.poll() is None and time.monotonic() < deadline, "agent did not start"
        time.sleep(0.01)

    class Agent:
        path = sock

        @staticmethod
        def result():
            proc.wait(timeout=20)
            with open(out) as f:
                return json.load(f)
    yield Agent
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def profile(path, metadata="", syscalls=("mkdir", "mkdirat")):
    return {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
            "listenerMetadata": metadata,
            "syscalls": [{"names": list(syscalls), "action": "SCMP_ACT_NOTIFY"}]}


@pytest.mark.parametrize("user", ["0", "1000"])     # 1000: no capabilities left
def test_agent_answers_the_containers_syscalls(factory, make_config, agent, user):
    config = make_config(seccomp=profile(agent.path, "MKDIR=answer"),
                         labels={"io.example": "yes"},
                         mounts=configs.default_mounts() + [configs.Mount("tmpfs", "/tmp",
                                                                          "tmpfs")])
    cid = unique()
    container = factory.create(cid, config)
    try:
        r, w = os.pipe()
        p = libcontainer.Process(args=["/bin/sh", "-c", "mkdir /tmp/a; echo a=$?; "
                                       "mkdir /tmp/b; echo b=$?; ls /tmp"],
                                 stdout=w, stderr=w, user=user)
        pid = container.start(p)
        os.close(w)
        out = os.read(r, 65536).decode()
        while True:
            more = os.read(r, 65536).decode()
            if not more:
                break
            out += more
        os.close(r)
        assert p.wait() == 0, out
    finally:
        container.destroy()
    assert "Too many links" in out and "a=1" in out, out      # EMLINK, from the agent
    assert "b=0" in out and out.rstrip().endswith("b"), out  # let through: made
    report = agent.result()
    msg, = report["messages"]
    assert msg["fds"] == ["seccompFd"]
    assert msg["metadata"] == "MKDIR=answer"
    assert msg["pid"] == pid == msg["state"]["pid"]
    assert msg["state"]["id"] == cid
    assert msg["state"]["annotations"] == {"io.example": "yes"}
    assert [len(a) for a in report["answered"]] == [2]


def test_held_init_hands_the_fd_over_at_start(tmp_path, rootfs, agent):
    # pyrunc create connects, start loads the filter and sends the fd
    from test_pyrunc import Runtime

    def edit(spec):
        spec["linux"]["seccomp"] = profile(agent.path, "via pyrunc")
        spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    rt = Runtime(tmp_path, rootfs)
    cid, bundle = rt.bundle(("sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?"), edit=edit)
    try:
        r = rt("run", "--bundle", bundle, cid)
    finally:
        rt.cleanup()
    assert r.returncode == 0, r
    assert "Too many links" in r.stdout and "rc=1" in r.stdout, r
    msg, = agent.result()["messages"]
    assert (msg["metadata"], msg["state"]["id"]) == ("via pyrunc", cid)
    assert msg["state"]["bundle"] == bundle


@pytest.mark.parametrize("agent", [2], indirect=True)     # the init's and the exec's
def test_exec_process_gets_its_own_notify_fd(factory, make_config, agent):
    # runc's protocol for `exec`: the process's pid, the container's state
    config = make_config(seccomp=profile(agent.path, "exec"),
                         mounts=configs.default_mounts() + [configs.Mount("tmpfs", "/tmp",
                                                                          "tmpfs")])
    container = factory.create(unique(), config)
    try:
        init = container.start(libcontainer.Process(args=["sleep", "100"]))
        r, w = os.pipe()
        p = libcontainer.Process(args=["/bin/sh", "-c", "mkdir /tmp/e; echo e=$?"],
                                 stdout=w, stderr=w)
        pid = container.run(p)
        os.close(w)
        out = b""
        while chunk := os.read(r, 65536):
            out += chunk
        os.close(r)
        assert p.wait() == 0
    finally:
        container.destroy()
    assert "Too many links" in out.decode() and "e=1" in out.decode(), out
    first, second = agent.result()["messages"]
    assert first["pid"] == first["state"]["pid"] == init
    assert first["state"]["status"] == "creating"
    assert (second["pid"], second["state"]["pid"]) == (pid, init)
    assert second["state"]["status"] == "running" and second["metadata"] == "exec"


@pytest.mark.parametrize("change, message", [
    ({"listenerPath": ""}, "seccomp.listenerPath: is required by SCMP_ACT_NOTIFY"),
    ({"listenerPath": "agent.sock"}, "seccomp.listenerPath: 'agent.sock' is not an absolute"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"},
     "seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
    ({"syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]},
     "seccomp.syscalls[0].names[0]: SCMP_ACT_NOTIFY cannot be used for sendmsg"),
])
def test_bad_notify_profiles_are_refused(factory, make_config, change, message):
    bad = {**profile("/run/agent.sock"), **change}
    with pytest.raises(ConfigError) as e:
        factory.create(unique(), make_config(seccomp=bad))
    assert str(e.value).startswith(message)


def test_no_agent_listening_is_one_line_and_leaves_nothing(factory, make_config, tmp_path,
                                                          state_root):
    config = make_config(seccomp=profile(str(tmp_path / "nobody.sock")))
    container = factory.create(unique(), config)
    try:
        with pytest.raises(SetupError, match=r"^seccomp\.listenerPath: cannot connect to "
                                             r".*nobody\.sock: no such file or directory$"):
            capture(container, ["true"], join=False)
    finally:
        container.destroy()
