"""The state root: trusted only when it is ours alone."""
import os

from .errors import LibcontainerError


def check_root(root, create=False):
    """A state root is trusted only if it is ours and nobody else can write
    to it: another user could plant a container whose state.json names the
    hooks our ``delete`` runs (a /tmp root can be squatted). Made 0700."""
    if create:
        os.makedirs(os.path.dirname(root), exist_ok=True)
        try:
            os.mkdir(root, 0o700)
        except FileExistsError:
            pass
    try:
        link, info = os.lstat(root), os.stat(root)
    except FileNotFoundError:
        return
    uid = os.geteuid()
    if link.st_ino != info.st_ino and link.st_uid not in (uid, 0):   # its owner can swap it
        raise LibcontainerError(f"state root {root} is a symlink owned by uid {link.st_uid}: "
                                f"refusing to use it")
    if info.st_uid != uid or info.st_mode & 0o022:
        raise LibcontainerError(f"state root {root}: owned by uid {info.st_uid} with mode "
                                f"{info.st_mode & 0o7777:o}; it must be owned by uid {uid} and "
                                f"not writable by group or others: refusing to use it")
