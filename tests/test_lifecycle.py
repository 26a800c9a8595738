"""Living containers: join, tty, detach, signals, state machine, a clean end."""
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

import libcontainer
from libcontainer import configs
from libcontainer.errors import InvalidState

from conftest import BIN, capture, nsinit, read_pty, unique


@pytest.fixture
def running(factory, make_config):
    config = make_config(namespaces=[configs.Namespace(t) for t in
                                     ("NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET", "NEWCGROUP")])
    container = factory.create(unique(), config)
    init = libcontainer.Process(args=["/bin/sh", "-c", "echo init > /dev/shm/mark; exec sleep 60"])
    container.start(init)
    yield container
    container.destroy()


def test_join_sees_the_init_world(running):
    status, out = capture(running, ["/bin/sh", "-c",
                                    "hostname; cat /dev/shm/mark; ps -o pid,comm; "
                                    "for f in 1/ns/mnt self/ns/mnt 1/ns/cgroup self/ns/cgroup; do "
                                    "readlink /proc/$f; done"])
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0] == "testing" and lines[1] == "init"
    assert any(line.split() == ["1", "sleep"] for line in lines)
    mnt1, mnt2, cg1, cg2 = [l for l in lines if ":[" in l]
    assert mnt1 == mnt2 and cg1 == cg2


def test_join_is_waitable_and_counted(running):
    assert capture(running, ["/bin/sh", "-c", "exit 9"])[0] == 9
    p = libcontainer.Process(args=["/bin/sleep", "30"])
    running.run(p)
    assert p.pid in running.processes()
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait() == 137


def test_join_with_user_and_cwd(running):
    status, out = capture(running, ["/bin/sh", "-c", "id -u; id -g; pwd"], user="1000", cwd="/tmp")
    assert out.split() == ["1000", "1000", "/tmp"]


def test_run_refused_when_stopped(factory, make_config):
    container = factory.create(unique(), make_config())
    try:
        with pytest.raises(InvalidState, match=f"container {container.id} is not running"):
            container.run(libcontainer.Process(args=["/bin/true"]))
        container.start(libcontainer.Process(args=["/bin/true"]))
        container.init_process.wait()
        assert container.status() == "stopped"
        with pytest.raises(InvalidState, match="is not running"):
            container.signal(signal.SIGTERM)
        with pytest.raises(InvalidState, match="is not running"):
            container.exec()
    finally:
        container.destroy()


def test_init_reaps_orphans(factory, make_config):
    """A shell as the init, spawning background jobs that get orphaned."""
    container = factory.create(unique(), make_config())
    try:
        status, out = capture(container, ["/bin/sh", "-c",
                                          "for i in 1 2 3 4 5 6; do (sleep 0.1 &) ; done; sleep 1; "
                                          "ps -o stat | grep -c Z"], join=False)
        assert out.split()[-1] == "0"
    finally:
        container.destroy()


def test_signal_all(running):
    p = libcontainer.Process(args=["/bin/sh", "-c", "trap 'exit 3' USR1; while :; do sleep 0.1; done"])
    running.run(p)
    time.sleep(0.3)
    running.signal(signal.SIGUSR1, all=True)
    assert p.wait() == 3


def test_destroy_after_external_sigkill(running, state_root):
    os.kill(running.init_pid, signal.SIGKILL)
    running.init_process.wait()
    assert running.status() == "stopped"
    running.destroy()
    assert not os.path.exists(os.path.join(state_root, running.id))
    running.destroy()


def test_destroy_from_another_process(running, state_root):
    code = ("import libcontainer,sys; libcontainer.new(sys.argv[1]).load(sys.argv[2]).destroy()")
    subprocess.run([sys.executable, "-c", code, state_root, running.id], check=True)
    assert running.init_process.wait() == 137
    assert not os.path.exists(os.path.join(state_root, running.id))


def test_concurrent_create_same_id(state_root, make_config):
    cid = unique()
    config = make_config()
    cfg_file = os.path.join(os.path.dirname(state_root), "c.json")
    config.save(cfg_file)
    code = ("import libcontainer,sys; from libcontainer.configs import Config\n"
            "f=libcontainer.new(sys.argv[1])\n"
            "try:\n c=f.create(sys.argv[2], Config.load(sys.argv[3])); print('won')\n"
            "except libcontainer.ContainerExists: print('lost')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, state_root, cid, cfg_file],
                              stdout=subprocess.PIPE, text=True) for _ in range(10)]
    results = sorted(p.communicate()[0].strip() for p in procs)
    assert results == ["lost"] * 9 + ["won"]
    c = libcontainer.new(state_root).load(cid)
    assert c.status() == "stopped"
    c.destroy()


# -- nsinit -------------------------------------------------------------------

@pytest.fixture
def bundle(tmp_path, rootfs):
    from libcontainer import sample
    config = sample.config_dict(rootfs)
    config["cgroups"] = None
    d = tmp_path / unique("b")
    d.mkdir()
    (d / "container.json").write_text(json.dumps(config))
    return d


def detached(*args, root, cwd):
    """nsinit exec --detach: the container keeps the runtime's stdio, so give
    it files rather than pipes that would stay open."""
    with open(cwd / "detached.out", "w+") as out:
        r = subprocess.run([os.path.join(BIN, "nsinit"), "--root", root, "exec", "--detach", *args],
                           cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60)
        out.seek(0)
        return r.returncode, out.read()


def test_nsinit_detach_join_destroy(bundle):
    root = str(bundle / "state")
    cid = unique()
    code, out = detached("--id", cid, "/bin/sh", "-c", "echo hi > /dev/shm/x; sleep 60",
                         root=root, cwd=bundle)
    assert code == 0, out
    assert json.loads(nsinit("state", cid, root=root).stdout)["status"] == "running"
    # --id joins the running container
    time.sleep(0.2)
    r = nsinit("exec", "--id", cid, "/bin/cat", "/dev/shm/x", root=root, cwd=bundle)
    assert r.returncode == 0 and r.stdout == "hi\n"
    # a loaded container in a new process: signal, run, destroy
    code = ("import libcontainer,sys,os; c=libcontainer.new(sys.argv[1]).load(sys.argv[2]); "
            "p=libcontainer.Process(args=['/bin/sh','-c','exit 4']); c.run(p); print(p.wait())")
    out = subprocess.run([sys.executable, "-c", code, root, cid], capture_output=True, text=True)
    assert out.stdout.strip() == "4", out.stderr
    r = nsinit("destroy", cid, root=root)
    assert r.returncode == 1 and "is running" in r.stderr
    r = nsinit("destroy", "--force", cid, root=root)
    assert r.returncode == 0, r.stderr
    assert os.listdir(root) == []


def test_nsinit_exec_in_directory_joins(bundle):
    root = str(bundle / "state")
    cid = bundle.name
    code, out = detached("sleep", "60", root=root, cwd=bundle)
    assert code == 0, out
    try:
        r = nsinit("exec", "sh", "-c", "ps -o comm | grep -c sleep", root=root, cwd=bundle)
        assert r.stdout.strip() == "1"
    finally:
        nsinit("destroy", "-f", cid, root=root)
    assert os.listdir(root) == []


def test_nsinit_kill_signal_names(bundle):
    root = str(bundle / "state")
    cid = unique()
    assert detached("--id", cid, "/bin/sh", "-c",
                    "trap 'echo got > /dev/shm/sig' USR1; while :; do sleep 0.1; done",
                    root=root, cwd=bundle)[0] == 0
    try:
        time.sleep(0.3)
        assert nsinit("kill", cid, "USR1", root=root).returncode == 0
        time.sleep(0.5)
        r = nsinit("exec", "--id", cid, "cat", "/dev/shm/sig", root=root, cwd=bundle)
        assert r.stdout == "got\n"
        r = nsinit("kill", cid, "NOPE", root=root)
        assert r.returncode == 1 and "invalid signal" in r.stderr
        assert nsinit("kill", cid, "9", root=root).returncode == 0
        time.sleep(0.3)
        r = nsinit("kill", cid, root=root)
        assert r.returncode == 1 and "is not running" in r.stderr
    finally:
        nsinit("destroy", "-f", cid, root=root)


def test_nsinit_tty_session(bundle):
    """An interactive shell driven through a pty: tty, size, SIGWINCH, ^C, exit."""
    root = str(bundle / "state")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen([os.path.join(BIN, "nsinit"), "--root", root, "exec", "--tty",
                             "--id", unique(), "/bin/sh"], cwd=bundle,
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    try:
        assert "# " in read_pty(master, b"# ")
        os.write(master, b"tty; stty size\r")
        out = read_pty(master, b"40 100")
        assert "/dev/pts/0" in out and "40 100" in out
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
        os.kill(proc.pid, signal.SIGWINCH)
        time.sleep(0.3)
        os.write(master, b"stty size\r")
        assert "50 120" in read_pty(master, b"50 120")
        os.write(master, b"sleep 100\r")
        time.sleep(0.5)
        os.write(master, b"\x03")
        os.write(master, b"echo after-$?\r")
        assert "after-130" in read_pty(master, b"after-130")
        os.write(master, b"exit 7\r")
        assert proc.wait(timeout=20) == 7
        assert termios.tcgetattr(slave) == before      # the terminal is restored
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)
    assert os.listdir(root) == []


def test_process_tty_api(factory, make_config):
    container = factory.create(unique(), make_config())
    try:
        p = libcontainer.Process(args=["/bin/sh", "-c", "tty; test -t 0 && echo interactive"],
                                 tty=True)
        container.start(p)
        out = read_pty(p.console_fd, b"interactive")
        assert "/dev/pts/" in out and "interactive" in out
        assert p.wait() == 0
        os.close(p.console_fd)
    finally:
        container.destroy()


# -- the host's devices are never touched ------------------------------------------

def test_joined_user_with_host_dev_null_stdin(running):
    before = os.stat("/dev/null")
    with open("/dev/null") as devnull:
        p = libcontainer.Process(args=["/bin/sh", "-c", "cat; id -u"], user="1000", stdin=devnull)
        running.run(p)
        assert p.wait() == 0
    after = os.stat("/dev/null")
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid,
                                                          before.st_mode)


def test_destroy_with_live_joined_process(factory, make_config):
    """The dying init waits for the joined process, which only we can reap:
    destroy must reap it rather than deadlock."""
    container = factory.create(unique(), make_config())
    container.start(libcontainer.Process(args=["/bin/sleep", "60"]))
    joined = libcontainer.Process(args=["/bin/sleep", "60"])
    container.run(joined)
    container.destroy()
    assert joined.returncode == 137
    assert container.init_process.wait() == 137
