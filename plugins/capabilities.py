"""The five capability sets of the container's processes.

``config.capabilities`` (or ``process.capabilities``, which wins):

* a list of names (``["CHOWN", "CAP_NET_RAW"]``, the seed's form) -- the
  bounding, effective, permitted and inheritable sets; ambient empty. The
  default is ``[]``: no capabilities, as runc without
  ``process.capabilities``;
* ``configs.Capabilities`` (or a dict of the same shape) -- each set;
* ``None`` -- leave the sets as they are (a root process keeps everything).

A name this runtime does not know is skipped with a warning, as runc does
(profiles list capabilities newer than the host).

Applied after the identity switch (``plugins/user.py`` sets PR_SET_KEEPCAPS
before ``setuid``, so the permitted set survives it). What the program runs
with is then decided by ``execve``: a root program gets bounding | inheritable,
any other user the ambient set (capabilities(7), "Transformation of
capabilities during execve").
"""
from libcontainer import hookimpl, log
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux import caps

SYS_ADMIN = caps.NAMES["SYS_ADMIN"]


def normalise(value, where, unknown=None):
    """None | [names] | Capabilities | dict -> None | {set name: set of numbers}.
    Unknown names are skipped; `unknown`, a list, collects them."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        numbers = _numbers(value, where, unknown)
        return {"bounding": numbers, "effective": numbers, "permitted": numbers,
                "inheritable": numbers, "ambient": set()}
    if isinstance(value, dict):
        unknown = set(value) - set(caps.SETS)
        if unknown:
            raise ConfigError(f"{where}: unknown capability set {sorted(unknown)[0]!r} "
                              f"(known: {', '.join(caps.SETS)})")
        return {s: _numbers(value.get(s) or [], f"{where}.{s}", unknown) for s in caps.SETS}
    if all(hasattr(value, s) for s in caps.SETS):       # configs.Capabilities
        return {s: _numbers(getattr(value, s), f"{where}.{s}", unknown) for s in caps.SETS}
    raise ConfigError(f"{where}: expected a list of names or a Capabilities object")


def _numbers(names, where, unknown=None):
    if not isinstance(names, (list, tuple)):
        raise ConfigError(f"{where}: expected a list of capability names")
    out = set()
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise ConfigError(f"{where}[{i}]: expected a capability name, got {name!r}")
        n = caps.number(name)
        if n is None:
            if unknown is not None:
                unknown.append(f"{where}[{i}]: unknown capability {name!r} skipped")
            continue
        out.add(n)
    return out


def check(sets, where):
    """The rules capset(2) and prctl(2) enforce, as config errors."""
    if sets is None:
        return
    # ambient capabilities outside permitted and inheritable are not errors:
    # the kernel cannot raise them, and runc (whose `runc spec` writes such
    # configs) only warns; apply() skips them the same way
    for s, other in (("effective", "permitted"), ("inheritable", "bounding")):
        extra = sets[s] - sets[other]
        if extra:
            raise ConfigError(f"{where}.{s}: {caps.names(extra)[0]} is not in the "
                              f"{other} set")


@hookimpl
def libcontainer_validate_config(config):
    unknown = []
    sets = normalise(config.capabilities, "capabilities", unknown)
    for message in unknown:
        log.warning(message)
    check(sets, "capabilities")
    if sets is not None:
        newer = set().union(*sets.values()) - set(range(caps.last_cap() + 1))
        if newer:
            log.warning("capabilities: unknown to this kernel, skipped",
                        capabilities=caps.names(newer))
        skipped = sets["ambient"] - (sets["permitted"] & sets["inheritable"])
        if skipped:
            log.warning("capabilities.ambient: not in the permitted and inheritable sets, "
                        "so not raised", capabilities=caps.names(skipped))


@hookimpl
def libcontainer_setup_privileges(container, process):
    where = "process.capabilities" if process.capabilities is not None else "capabilities"
    sets = normalise(process.capabilities if process.capabilities is not None
                     else container.config.capabilities, where)
    if sets is None:
        return
    check(sets, where)
    # the seccomp filter is loaded later (libcontainer_seal): without
    # no_new_privs that needs CAP_SYS_ADMIN, kept in the permitted set until
    # then. execve recomputes the sets from bounding, inheritable and
    # ambient, so it never reaches the program unless configured.
    keep = {SYS_ADMIN} if container.config.seccomp is not None else set()
    apply(sets, keep)


def apply(sets, keep=frozenset()):
    last = caps.last_cap()
    sets = {k: {c for c in v if c <= last} for k, v in sets.items()}   # newer than the kernel
    effective, permitted, inheritable = caps.capget()
    # probed only where it decides: one prctl per wanted capability, not
    # one per capability of the kernel (the others are dropped unread)
    bounding = caps.bounding(sets["bounding"] | (sets["inheritable"] - inheritable))
    missing = (sets["permitted"] - permitted) | (sets["bounding"] - bounding) | \
        (sets["inheritable"] - inheritable - bounding)
    if missing:
        raise SetupError(f"capabilities: {', '.join(caps.names(missing))} "
                         f"{'is' if len(missing) == 1 else 'are'} not available to the "
                         f"runtime itself")
    # after a switch to another user the effective set is empty: raise it
    # again to be allowed to drop from the bounding set
    caps.capset(permitted, permitted, inheritable)
    for c in range(last + 1):
        if c not in sets["bounding"]:
            caps.drop_bounding(c)
    caps.capset(sets["effective"], sets["permitted"] | (keep & permitted), sets["inheritable"])
    # the rest was warned about at validation (no logging here: the child
    # must not import anything after pivot_root)
    caps.set_ambient(sets["ambient"] & sets["permitted"] & sets["inheritable"])
