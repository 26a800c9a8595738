"""The ``loopback`` type: bring ``lo`` up in the container's network
namespace. The kernel gives it 127.0.0.1/8 (and ::1) as it comes up.

Done by the init itself with one SIOCSIFFLAGS ioctl: no netlink, no pyroute2.
"""
import fcntl
import socket
import struct

from libcontainer.errors import SetupError

from .base import NetworkType

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
# struct ifreq { char ifr_name[16]; union { short ifr_flags; ... } } -- 40 bytes
_IFREQ = "16sH22x"


def set_up(name):
    """ioctl(SIOCSIFFLAGS) the interface `name` up, in this netns."""
    raw = name.encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            got = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack(_IFREQ, raw, 0))
            flags = struct.unpack(_IFREQ, got)[1]
            if not flags & IFF_UP:
                fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack(_IFREQ, raw, flags | IFF_UP))
        except OSError as e:
            raise SetupError(f"ioctl(SIOCSIFFLAGS, {name!r}, IFF_UP): "
                             f"{e.strerror.lower()}") from None


class Loopback(NetworkType):
    def setup_in_child(self, network):
        set_up("lo")
