"""The cgroup v2 device filter: device rules compiled to a
BPF_PROG_TYPE_CGROUP_DEVICE program, assembled here instruction by
instruction (no compiler at run time).

The program sees ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major;
u32 minor;}`` in R1 and returns 1 (allow) or 0 (deny). Rules are checked
last first, so the last matching rule wins, as when v1's devices.allow and
devices.deny are written in order; nothing matching means deny::

    R2 = type (access_type & 0xffff)   R3 = access (access_type >> 16)
    R4 = major                         R5 = minor
    for each rule, last first:
        if R2 != rule.type: next                   (unless type "a")
        if R3 & rule.access != R3: next            (unless access "rwm")
        if R4 != rule.major: next                  (unless major -1)
        if R5 != rule.minor: next                  (unless minor -1)
        return rule.allow
    return 0

A rule matching everything ends the program: the verifier rejects
unreachable instructions, and the rules before it could never decide.
"""
import os

from libcontainer.linux import bpf
from libcontainer.linux.bpf import AND, JNE, R0, R1, R2, R3, R4, R5, RSH

_TYPES = {"c": bpf.DEVCG_DEV_CHAR, "b": bpf.DEVCG_DEV_BLOCK}
_ACCESS = {"m": bpf.DEVCG_ACC_MKNOD, "r": bpf.DEVCG_ACC_READ, "w": bpf.DEVCG_ACC_WRITE}
_ALL_ACCESS = bpf.DEVCG_ACC_MKNOD | bpf.DEVCG_ACC_READ | bpf.DEVCG_ACC_WRITE


def _block(rule):
    """The instructions of one rule, and whether it matches everything."""
    conds = []      # (instructions before the jump, the jump as (fn, args)); jumps skip the block
    if rule.type != "a":
        conds.append(([], bpf.jmp_imm, (JNE, R2, _TYPES[rule.type])))
    access = 0
    for ch in rule.permissions:
        access |= _ACCESS[ch]
    if access != _ALL_ACCESS:
        conds.append(([bpf.mov32_reg(R1, R3), bpf.alu32_imm(AND, R1, access)],
                      bpf.jmp_reg, (JNE, R1, R3)))
    if rule.major != -1:
        conds.append(([], bpf.jmp_imm, (JNE, R4, rule.major)))
    if rule.minor != -1:
        conds.append(([], bpf.jmp_imm, (JNE, R5, rule.minor)))
    tail = [bpf.mov64_imm(R0, 1 if rule.allow else 0), bpf.exit_()]
    size = sum(len(pre) + 1 for pre, _, _ in conds) + len(tail)
    out = []
    for pre, jump, args in conds:
        out.extend(pre)
        out.append(jump(*args, size - len(out) - 1))    # offset from the next instruction
    out.extend(tail)
    return out, not conds


def program(rules):
    """The device filter for `rules` (configs.Device list) as bytes."""
    insns = [
        bpf.ldx_w(R2, R1, 0), bpf.alu32_imm(AND, R2, 0xFFFF),
        bpf.ldx_w(R3, R1, 0), bpf.alu32_imm(RSH, R3, 16),
        bpf.ldx_w(R4, R1, 4), bpf.ldx_w(R5, R1, 8),
    ]
    for rule in reversed(rules):
        block, catch_all = _block(rule)
        insns.extend(block)
        if catch_all:
            break
    else:
        insns += [bpf.mov64_imm(R0, 0), bpf.exit_()]
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

