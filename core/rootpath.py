"""Resolving a container path inside its rootfs without escaping it.

A rootfs may hold symlinks like ``/etc -> /`` or ``x -> ../../..``; mounting
onto ``rootfs + "/etc/..."`` naively would follow them onto the host
(CVE-2021-30465). Each component is resolved here as the kernel would with
``/`` being the rootfs: absolute link targets restart at the rootfs, ``..``
stops at it.
"""
import errno
import os
import stat


def resolve_in_root(root, path, max_links=40):
    """The host path of `path` seen from inside `root`. Components that do not
    exist yet are appended literally."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    parts.reverse()
    current = []
    links = 0
    while parts:
        part = parts.pop()
        if part == "..":
            if current:
                current.pop()
            continue
        full = os.path.join(root, *current, part)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            current.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > max_links:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), f"resolve {path!r}")
            target = os.readlink(full)
            if target.startswith("/"):
                current = []
            parts.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
            continue
        current.append(part)
    return os.path.join(root, *current)
