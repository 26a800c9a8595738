"""/dev/console of a container whose init has a terminal: the pty slave
bound onto it, as runc does, so that programs writing to the console
(init systems, getty) reach the same terminal as stdio.

The pty is opened here, after pivot_root (from the container's devpts) and
while the init still has CAP_SYS_ADMIN; the core then uses it
(``process.pty``) instead of opening its own.
"""
import fcntl
import os
import stat
import struct

from libcontainer import hookimpl
from libcontainer.linux.mount import MS, mount

TIOCGPTN = 0x80045430       # the pty number of a master


@hookimpl
def libcontainer_setup_environment(container, process):
    if not process.tty:
        return
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    os.set_inheritable(slave, False)
    process.pty = (master, slave)
    (n,) = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))
    try:
        os.close(os.open("/dev/console", os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY
                         | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        # the spec's own node, or a file of the image: never a symlink
        if stat.S_ISLNK(os.lstat("/dev/console").st_mode):
            raise OSError(40, "is a symbolic link", "/dev/console") from None
    mount(f"/dev/pts/{n}", "/dev/console", None, MS.BIND)
