"""libseccomp (Debian's libseccomp2) through ctypes: check an OCI
``linux.seccomp`` profile, compile it and load it into the calling thread.

The library is opened when this module is imported -- in the parent, before
any fork -- so that a container's process can still use it after
``pivot_root`` has hidden the host's /usr/lib.

    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"],
                             "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]}
    filt = parse(profile)       # raises ProfileError naming the field
    load(filt)
"""
import ctypes
import errno
import os

from ..record import dataclass, field


class ProfileError(ValueError):
    """A profile value is invalid; str() is '<field path>: <what is wrong>'."""


def _open_library():
    try:
        return ctypes.CDLL("libseccomp.so.2", use_errno=True), None
    except OSError as e:
        return None, f"libseccomp is not installed ({e}; Debian: apt-get install libseccomp2)"


_lib, LOAD_ERROR = _open_library()


class _ArgCmp(ctypes.Structure):
    # struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op;
    #                       scmp_datum_t datum_a; scmp_datum_t datum_b; };
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def _fn(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype, f.argtypes = restype, argtypes
    return f


if _lib is not None:
    # scmp_filter_ctx seccomp_init(uint32_t def_action);
    _init = _fn("seccomp_init", ctypes.c_void_p, ctypes.c_uint32)
    # void seccomp_release(scmp_filter_ctx ctx);
    _release = _fn("seccomp_release", None, ctypes.c_void_p)
    # int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value);
    _attr_set = _fn("seccomp_attr_set", ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                    ctypes.c_uint32)
    # uint32_t seccomp_arch_resolve_name(const char *arch_name);
    _arch_resolve = _fn("seccomp_arch_resolve_name", ctypes.c_uint32, ctypes.c_char_p)
    # int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
    _arch_add = _fn("seccomp_arch_add", ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32)
    # int seccomp_syscall_resolve_name(const char *name);
    _resolve = _fn("seccomp_syscall_resolve_name", ctypes.c_int, ctypes.c_char_p)
    # int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
    #                            unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);
    _rule_add = _fn("seccomp_rule_add_array", ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32,
                    ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp))
    # int seccomp_load(const scmp_filter_ctx ctx);
    _load = _fn("seccomp_load", ctypes.c_int, ctypes.c_void_p)
    # int seccomp_notify_fd(const scmp_filter_ctx ctx);
    _notify_fd = _fn("seccomp_notify_fd", ctypes.c_int, ctypes.c_void_p)

# enum scmp_filter_attr
ATTR_CTL_NNP = 3
ATTR_CTL_TSYNC = 4
ATTR_CTL_LOG = 6
ATTR_CTL_SSB = 7

# OCI action name -> (action value without errno, takes errnoRet)
ACTIONS = {
    "SCMP_ACT_KILL": (0x00000000, False),
    "SCMP_ACT_KILL_THREAD": (0x00000000, False),
    "SCMP_ACT_KILL_PROCESS": (0x80000000, False),
    "SCMP_ACT_TRAP": (0x00030000, False),
    "SCMP_ACT_ERRNO": (0x00050000, True),
    "SCMP_ACT_TRACE": (0x7FF00000, True),
    "SCMP_ACT_LOG": (0x7FFC0000, False),
    "SCMP_ACT_NOTIFY": (0x7FC00000, False),     # the agent at listenerPath answers
    "SCMP_ACT_ALLOW": (0x7FFF0000, False),
}
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
       "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": ATTR_CTL_TSYNC,
         "SECCOMP_FILTER_FLAG_LOG": ATTR_CTL_LOG,
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW": ATTR_CTL_SSB}
_MAX_ARGS = 6
NOTIFY = ACTIONS["SCMP_ACT_NOTIFY"][0]
# what the runtime itself calls between loading the filter and execve: a
# notified one would wait for an agent that has not got the fd yet
RUNTIME_SYSCALLS = frozenset({"sendmsg"})


@dataclass
class Filter:
    """A checked profile: numbers only, ready for :func:`load`."""
    default_action: int
    arches: list = field(default_factory=list)         # arch tokens
    attrs: list = field(default_factory=list)          # [(attr, value)]
    rules: list = field(default_factory=list)          # [(name, nr, action, [(i, op, a, b)])]
    listener_path: str = ""     # where the seccomp agent listens (SCMP_ACT_NOTIFY)
    metadata: str = ""          # listenerMetadata, passed on to the agent
    unknown: list = field(default_factory=list)        # names libseccomp does not know

    @property
    def notify(self):
        return any(rule[2] == NOTIFY for rule in self.rules)


def available():
    return _lib is not None


def syscall_number(name):
    """The native number of a syscall name (a negative pseudo number for a
    syscall of another architecture), or None if libseccomp does not know it."""
    nr = _resolve(name.encode())
    return None if nr == -1 else nr


def arch_token(name):
    """'SCMP_ARCH_X86_64' -> libseccomp's token, or None."""
    short = name[len("SCMP_ARCH_"):] if name.startswith("SCMP_ARCH_") else name
    return _arch_resolve(short.lower().encode()) or None


def _action(name, errno_ret, where, where_errno, default_errno=errno.EPERM):
    if name not in ACTIONS:
        raise ProfileError(f"{where}: unknown action {name!r} "
                           f"(known: {', '.join(ACTIONS)})")
    value, takes_errno = ACTIONS[name]
    if errno_ret is not None:
        if not takes_errno:
            raise ProfileError(f"{where_errno}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE "
                               f"take an errno, not {name}")
        if not isinstance(errno_ret, int) or isinstance(errno_ret, bool) \
                or not 0 <= errno_ret <= 0xFFFF:
            raise ProfileError(f"{where_errno}: {errno_ret!r} is not an errno number")
    if takes_errno:
        value |= (errno_ret if errno_ret is not None else default_errno) & 0xFFFF
    return value


def _uint64(value, where):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
        raise ProfileError(f"{where}: {value!r} is not an unsigned 64-bit integer")
    return value


def parse(profile, where="seccomp"):
    """Check an OCI seccomp profile (a dict) and turn it into a Filter.
    Raises ProfileError naming the field; RuntimeError if libseccomp is
    missing."""
    if _lib is None:
        raise ProfileError(f"{where}: {LOAD_ERROR}")
    if not isinstance(profile, dict):
        raise ProfileError(f"{where}: expected an object")
    default_errno = profile.get("defaultErrnoRet")
    if "defaultAction" not in profile:
        raise ProfileError(f"{where}.defaultAction: required field is missing")
    default = _action(profile["defaultAction"], default_errno, f"{where}.defaultAction",
                      f"{where}.defaultErrnoRet")
    if default == NOTIFY:
        raise ProfileError(f"{where}.defaultAction: SCMP_ACT_NOTIFY cannot be the default "
                           f"action (the runtime's own syscalls would wait for the agent)")
    filt = Filter(default)
    for key, attr in (("listenerPath", "listener_path"), ("listenerMetadata", "metadata")):
        value = profile.get(key) or ""
        if not isinstance(value, str) or "\0" in value:
            raise ProfileError(f"{where}.{key}: expected a string")
        setattr(filt, attr, value)
    if filt.listener_path and not filt.listener_path.startswith("/"):
        raise ProfileError(f"{where}.listenerPath: {filt.listener_path!r} is not an "
                           f"absolute path")
    for i, arch in enumerate(profile.get("architectures") or []):
        token = arch_token(arch) if isinstance(arch, str) else None
        if token is None:
            raise ProfileError(f"{where}.architectures[{i}]: unknown architecture {arch!r}")
        filt.arches.append(token)
    for i, flag in enumerate(profile.get("flags") or []):
        if flag not in FLAGS:
            raise ProfileError(f"{where}.flags[{i}]: unsupported flag {flag!r} "
                               f"(supported: {', '.join(FLAGS)})")
        filt.attrs.append((FLAGS[flag], 1))
    syscalls = profile.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise ProfileError(f"{where}.syscalls: expected a list")
    for i, sc in enumerate(syscalls):
        w = f"{where}.syscalls[{i}]"
        if not isinstance(sc, dict):
            raise ProfileError(f"{w}: expected an object")
        names = sc.get("names") or ([sc["name"]] if sc.get("name") else [])
        if not names or not isinstance(names, list):
            raise ProfileError(f"{w}.names: expected a non-empty list of syscall names")
        if "action" not in sc:
            raise ProfileError(f"{w}.action: required field is missing")
        action = _action(sc["action"], sc.get("errnoRet"), f"{w}.action", f"{w}.errnoRet")
        args = []
        for j, arg in enumerate(sc.get("args") or []):
            wa = f"{w}.args[{j}]"
            if not isinstance(arg, dict):
                raise ProfileError(f"{wa}: expected an object")
            index = arg.get("index")
            if not isinstance(index, int) or isinstance(index, bool) \
                    or not 0 <= index < _MAX_ARGS:
                raise ProfileError(f"{wa}.index: {index!r} is not an argument index (0-5)")
            if arg.get("op") not in OPS:
                raise ProfileError(f"{wa}.op: unknown operator {arg.get('op')!r} "
                                   f"(known: {', '.join(OPS)})")
            args.append((index, OPS[arg["op"]], _uint64(arg.get("value", 0), f"{wa}.value"),
                         _uint64(arg.get("valueTwo", 0), f"{wa}.valueTwo")))
        if len(args) > _MAX_ARGS:
            raise ProfileError(f"{w}.args: more than {_MAX_ARGS} conditions")
        for j, name in enumerate(names):
            if not isinstance(name, str) or not (name.isascii() and name.isidentifier()):
                raise ProfileError(f"{w}.names[{j}]: {name!r} is not a syscall name")
            nr = syscall_number(name)
            if nr is None:
                # newer than this libseccomp (engines' profiles list them):
                # skipped, as runc does
                filt.unknown.append(name)
                continue
            if action == NOTIFY and name in RUNTIME_SYSCALLS:
                raise ProfileError(f"{w}.names[{j}]: SCMP_ACT_NOTIFY cannot be used for "
                                   f"{name}: the runtime needs it to hand the agent its fd")
            if action == default:
                continue        # libseccomp refuses rules that repeat the default
            filt.rules.append((name, nr, action, args))
    if filt.notify and not filt.listener_path:
        raise ProfileError(f"{where}.listenerPath: is required by SCMP_ACT_NOTIFY")
    return filt


def _call(ret, call):
    """libseccomp returns -errno."""
    if ret < 0:
        raise OSError(-ret, os.strerror(-ret), call)
    return ret


def load(filt, set_no_new_privs=False):
    """Compile `filt` and install it in the calling thread. Without
    `set_no_new_privs` the caller needs no_new_privs already set or
    CAP_SYS_ADMIN in its effective set. Returns the notify fd of a filter
    with SCMP_ACT_NOTIFY rules (libseccomp loads it with
    SECCOMP_FILTER_FLAG_NEW_LISTENER), else None."""
    ctx = _init(filt.default_action)
    if not ctx:
        raise OSError(errno.EINVAL, "cannot initialise a filter",
                      f"seccomp_init({filt.default_action:#x})")
    try:
        _call(_attr_set(ctx, ATTR_CTL_NNP, int(set_no_new_privs)), "seccomp_attr_set(CTL_NNP)")
        for attr, value in filt.attrs:
            _call(_attr_set(ctx, attr, value), f"seccomp_attr_set({attr}, {value})")
        for token in filt.arches:
            ret = _arch_add(ctx, token)
            if ret != -errno.EEXIST:
                _call(ret, f"seccomp_arch_add({token:#x})")
        for name, nr, action, args in filt.rules:
            # several conditions on one argument cannot be ANDed by
            # libseccomp: they become one rule each (OR), as runc does
            indexes = [a[0] for a in args]
            groups = [[a] for a in args] if len(set(indexes)) < len(indexes) else [args]
            for group in groups:
                arr = (_ArgCmp * max(len(group), 1))(*[_ArgCmp(*a) for a in group])
                _call(_rule_add(ctx, action, nr, len(group), arr),
                      f"seccomp_rule_add({name}, {action:#x}, {group})")
        _call(_load(ctx), "seccomp_load()")
        if filt.notify:
            # ours, whatever libseccomp does with its copy on release
            return os.dup(_call(_notify_fd(ctx), "seccomp_notify_fd()"))
        return None
    finally:
        _release(ctx)
