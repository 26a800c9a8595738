"""prctl(2), sethostname(2), setdomainname(2), close_range(2)."""
import ctypes

from .libc import check, fn

PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# int prctl(int option, unsigned long arg2, arg3, arg4, arg5);
_prctl = fn("prctl", ctypes.c_int, ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
            ctypes.c_ulong, ctypes.c_ulong)
# int sethostname(const char *name, size_t len);  (setdomainname alike)
_sethostname = fn("sethostname", ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
_setdomainname = fn("setdomainname", ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
# long syscall(SYS_close_range, unsigned first, unsigned last, unsigned flags);
_syscall3 = fn("syscall", ctypes.c_long, ctypes.c_long, ctypes.c_uint, ctypes.c_uint,
               ctypes.c_uint)
SYS_close_range = 436
CLOSE_RANGE_CLOEXEC = 4


def prctl(option, a2=0, a3=0, a4=0, a5=0):
    return check(_prctl(option, a2, a3, a4, a5), f"prctl({option}, {a2}, {a3}, {a4}, {a5})")


def set_name(name):
    """prctl(PR_SET_NAME): the calling thread's name (comm), up to 15 bytes."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    prctl(PR_SET_NAME, ctypes.addressof(buf))


def sethostname(name):
    raw = name.encode()
    check(_sethostname(raw, len(raw)), f"sethostname({name!r})")


def setdomainname(name):
    raw = name.encode()
    check(_setdomainname(raw, len(raw)), f"setdomainname({name!r})")


def cloexec_from(first):
    """Mark every fd >= first close-on-exec (CVE-2024-21626: no host fd leaks)."""
    check(_syscall3(SYS_close_range, first, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC),
          f"close_range({first}, ~0, CLOSE_RANGE_CLOEXEC)")
