"""Resource limits (setrlimit) and the OOM score of the container's processes."""
import os
import resource

from libcontainer import hookimpl, procself
from libcontainer.errors import ConfigError, SetupError

NAMES = {n[len("RLIMIT_"):]: getattr(resource, n) for n in dir(resource)
         if n.startswith("RLIMIT_")}


def rlimit_number(name):
    key = name.upper()
    key = key[len("RLIMIT_"):] if key.startswith("RLIMIT_") else key
    return NAMES.get(key)


def _check(rlimits, where):
    for i, r in enumerate(rlimits):
        if rlimit_number(r.type) is None:
            raise ConfigError(f"{where}[{i}].type: unknown rlimit {r.type!r}")
        for field in ("soft", "hard"):
            value = getattr(r, field)
            if not (value == -1 or 0 <= value < 2 ** 64):
                raise ConfigError(f"{where}[{i}].{field}: {value} is not a valid limit")
        if _order(r.soft) > _order(r.hard):
            raise ConfigError(f"{where}[{i}]: soft limit {r.soft} exceeds hard limit {r.hard}")


def _value(v):
    return resource.RLIM_INFINITY if v in (-1, 2 ** 64 - 1) else v


def _order(v):
    return float("inf") if v in (-1, 2 ** 64 - 1) else v


@hookimpl
def libcontainer_validate_config(config):
    _check(config.rlimits, "rlimits")
    if config.oom_score_adj is not None and not -1000 <= config.oom_score_adj <= 1000:
        raise ConfigError(f"oom_score_adj: {config.oom_score_adj} is not in -1000..1000")


@hookimpl
def libcontainer_validate_process(process):
    if process.rlimits is not None:
        _check(process.rlimits, "process.rlimits")
    if process.oom_score_adj is not None and not -1000 <= process.oom_score_adj <= 1000:
        raise ConfigError(f"process.oom_score_adj: {process.oom_score_adj} is not in "
                          f"-1000..1000")


@hookimpl
def libcontainer_setup_limits(container, process):
    rlimits = process.rlimits if process.rlimits is not None else container.config.rlimits
    adj = process.oom_score_adj if process.oom_score_adj is not None else \
        container.config.oom_score_adj
    if adj is not None:
        # before any privilege is dropped: lowering the score needs CAP_SYS_RESOURCE
        try:
            # our pinned /proc: the container's may be the image's own file
            with open(procself.open_self("oom_score_adj", os.O_WRONLY), "w") as f:
                f.write(str(adj))
        except OSError as e:
            raise SetupError(f"oom_score_adj {adj}: {e.strerror}") from None
    for r in rlimits:
        try:
            resource.setrlimit(rlimit_number(r.type), (_value(r.soft), _value(r.hard)))
        except (ValueError, OSError) as e:
            raise SetupError(f"setrlimit({r.type}, soft={r.soft}, hard={r.hard}): "
                             f"{getattr(e, 'strerror', None) or e}") from None
