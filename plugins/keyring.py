"""A session keyring per container, as runc: the init and every joined
process join ``_ses.<container id>`` instead of inheriting the runtime's
session keyring (and the keys in it). ``config.no_new_keyring`` (pyrunc's
``--no-new-keyring``) keeps the inherited one.

Joined in ``finish_namespaces``, as root of the container's user namespace,
before the identity switch; the keyring is made searchable by the
container's user (or by anyone, with a user namespace) so that a joined
process running as another uid finds it again. A kernel without keyrings
(ENOSYS) is no error, as in runc.
"""
import errno

from libcontainer import hookimpl
from libcontainer.errors import SetupError
from libcontainer.linux import procattr

KEY_USR_SEARCH = 0x00080000
KEY_OTH_SEARCH = 0x00000008


@hookimpl
def libcontainer_finish_namespaces(container, process):
    config = container.config
    if config.no_new_keyring:
        return
    try:
        serial = procattr.join_session_keyring(f"_ses.{container.id}")
        if process.init:
            extra = KEY_OTH_SEARCH if config.has_namespace("NEWUSER") else KEY_USR_SEARCH
            procattr.keyring_setperm(serial, procattr.keyring_perm(serial) | extra)
    except OSError as e:
        if e.errno == errno.ENOSYS:
            return
        raise SetupError(f"session keyring: {e.filename}: {e.strerror}") from None
