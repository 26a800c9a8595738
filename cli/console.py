"""Relaying a container's pty to the caller's terminal.

The host terminal goes to raw mode (so ^C travels as a byte to the
container's line discipline, which signals the container's foreground
process group), its window size is copied to the pty at start and on every
SIGWINCH, and its settings are restored on exit whatever happens.
"""
import errno
import fcntl
import os
import select
import signal
import struct
import termios
import tty


def terminal_size(fd=0):
    """(rows, columns) of the terminal on `fd`, or None."""
    try:
        rows, cols, _, _ = struct.unpack(
            "HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0)))
    except OSError:
        return None
    return (rows, cols) if rows and cols else None


def copy_winsize(src_fd, dst_fd):
    try:
        size = fcntl.ioctl(src_fd, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(dst_fd, termios.TIOCSWINSZ, size)
    except OSError:
        pass    # not a terminal: keep the pty's default size


def relay(master, process, stdin=0, stdout=1):
    """Copy stdin -> master and master -> stdout until the process's side
    closes; return the process's exit status."""
    import gc
    gc.enable()     # the launchers turn it off for start-up; a session may last days
    saved = None
    if os.isatty(stdin):
        saved = termios.tcgetattr(stdin)
        tty.setraw(stdin)
        copy_winsize(stdin, master)
        signal.signal(signal.SIGWINCH, lambda *_: copy_winsize(stdin, master))
    readers = [master, stdin]
    try:
        while True:
            try:
                ready, _, _ = select.select(readers, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    data = b""      # EIO: every slave fd is closed
                if not data:
                    break
                _write_all(stdout, data)
            if stdin in ready:
                data = os.read(stdin, 65536)
                if data:
                    _write_all(master, data)
                else:
                    readers.remove(stdin)   # EOF on stdin: send ^D, keep reading
                    _write_all(master, b"\x04")
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        os.close(master)
    return process.wait()


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]
