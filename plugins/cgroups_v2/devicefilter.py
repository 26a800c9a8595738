"""The cgroup v2 device filter: device rules compiled to a
BPF_PROG_TYPE_CGROUP_DEVICE program, assembled here instruction by
instruction (no compiler at run time).

The rules first go through the same state machine as the kernel's v1
devices controller (``emulate``), so that v1 and v2 decide alike: a default
(allow or deny) and exceptions keyed by exact (type, major, minor). ``a``
resets the default and drops the exceptions; a rule against the default
adds or widens an exception, one with the default narrows (by exact key) an
exception. An access is then decided as v1 does: with a deny default it
needs one exception holding every requested bit; with an allow default any
exception sharing a bit denies it. So ``allow c 1:3 rwm`` then ``deny c 1:3
w`` denies an O_RDWR open, as on v1.

The program sees ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major;
u32 minor;}`` in R1 and returns 1 (allow) or 0 (deny)::

    R2 = type (access_type & 0xffff)   R3 = access (access_type >> 16)
    R4 = major                         R5 = minor
    for each exception:
        if R2 != ex.type: next
        deny default:  if R3 & ~ex.access != 0: next     (unless ex.access is rwm)
        allow default: if R3 & ex.access == 0: next      (unless ex.access is rwm)
        if R4 != ex.major: next                          (unless major -1)
        if R5 != ex.minor: next                          (unless minor -1)
        return !default
    return default
"""
import os

from libcontainer.linux import bpf
from libcontainer.linux.bpf import AND, JEQ, JNE, R0, R1, R2, R3, R4, R5, RSH

_TYPES = {"c": bpf.DEVCG_DEV_CHAR, "b": bpf.DEVCG_DEV_BLOCK}
_ACCESS = {"m": bpf.DEVCG_ACC_MKNOD, "r": bpf.DEVCG_ACC_READ, "w": bpf.DEVCG_ACC_WRITE}
_ALL_ACCESS = bpf.DEVCG_ACC_MKNOD | bpf.DEVCG_ACC_READ | bpf.DEVCG_ACC_WRITE


def _access(permissions):
    bits = 0
    for ch in permissions:
        bits |= _ACCESS[ch]
    return bits


def emulate(rules):
    """(allow by default, {(type, major, minor): access bits}) after writing
    `rules` in order to a v1 devices cgroup, starting from "deny a"."""
    default_allow, exceptions = False, {}
    for rule in rules:
        if rule.type == "a":
            default_allow, exceptions = rule.allow, {}
            continue
        key, bits = (rule.type, rule.major, rule.minor), _access(rule.permissions)
        if rule.allow != default_allow:
            exceptions[key] = exceptions.get(key, 0) | bits
        elif key in exceptions:
            exceptions[key] &= ~bits
            if not exceptions[key]:
                del exceptions[key]
    return default_allow, exceptions


def _block(key, access, default_allow):
    """The instructions of one exception."""
    type_, major, minor = key
    conds = [([], bpf.jmp_imm, (JNE, R2, _TYPES[type_]))]
    if access != _ALL_ACCESS:
        if default_allow:       # any shared bit: R3 & access == 0 -> next
            conds.append(([bpf.mov32_reg(R1, R3), bpf.alu32_imm(AND, R1, access)],
                          bpf.jmp_imm, (JEQ, R1, 0)))
        else:                   # every bit: R3 & ~access != 0 -> next
            conds.append(([bpf.mov32_reg(R1, R3), bpf.alu32_imm(AND, R1, ~access & 0xFFFF)],
                          bpf.jmp_imm, (JNE, R1, 0)))
    if major != -1:
        conds.append(([], bpf.jmp_imm, (JNE, R4, major)))
    if minor != -1:
        conds.append(([], bpf.jmp_imm, (JNE, R5, minor)))
    tail = [bpf.mov64_imm(R0, 0 if default_allow else 1), bpf.exit_()]
    size = sum(len(pre) + 1 for pre, _, _ in conds) + len(tail)
    out = []
    for pre, jump, args in conds:
        out.extend(pre)
        out.append(jump(*args, size - len(out) - 1))    # offset from the next instruction
    out.extend(tail)
    return out


def program(rules):
    """The device filter for `rules` (configs.Device list) as bytes."""
    default_allow, exceptions = emulate(rules)
    insns = [
        bpf.ldx_w(R2, R1, 0), bpf.alu32_imm(AND, R2, 0xFFFF),
        bpf.ldx_w(R3, R1, 0), bpf.alu32_imm(RSH, R3, 16),
        bpf.ldx_w(R4, R1, 4), bpf.ldx_w(R5, R1, 8),
    ]
    for key, access in exceptions.items():
        insns.extend(_block(key, access, default_allow))
    insns += [bpf.mov64_imm(R0, 1 if default_allow else 0), bpf.exit_()]
    return b"".join(insns)


def load_and_attach(cgroup_dir, rules):
    """Load the filter and attach it to the cgroup (BPF_F_ALLOW_MULTI, so
    the filters of the ancestors still apply). The attachment keeps the
    program alive as long as the cgroup exists."""
    prog = bpf.prog_load(bpf.PROG_TYPE.CGROUP_DEVICE, program(rules), name="lc_devices")
    try:
        dfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            bpf.prog_attach(dfd, prog, bpf.ATTACH_TYPE.CGROUP_DEVICE, bpf.F.ALLOW_MULTI)
        finally:
            os.close(dfd)
    finally:
        os.close(prog)

