"""bpf(2): load an eBPF program and attach it to a cgroup, plus a tiny
assembler for the instructions (no compiler at run time).

Only what the cgroup v2 device filter needs: ``BPF_PROG_LOAD`` and
``BPF_PROG_ATTACH``.
"""
import ctypes
import enum
import os
import struct

from .libc import check, fn

# long syscall(SYS_bpf, int cmd, union bpf_attr *attr, unsigned int size);
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351,
            "riscv64": 280}.get(os.uname().machine, 321)
_syscall = fn("syscall", ctypes.c_long, ctypes.c_long, ctypes.c_int, ctypes.c_void_p,
              ctypes.c_uint)


class CMD(enum.IntEnum):
    PROG_LOAD = 5
    PROG_ATTACH = 8


class PROG_TYPE(enum.IntEnum):
    CGROUP_DEVICE = 15


class ATTACH_TYPE(enum.IntEnum):
    CGROUP_DEVICE = 6


class F(enum.IntFlag):
    ALLOW_OVERRIDE = 1
    ALLOW_MULTI = 2


# struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
# access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*
DEVCG_ACC_MKNOD, DEVCG_ACC_READ, DEVCG_ACC_WRITE = 1, 2, 4
DEVCG_DEV_BLOCK, DEVCG_DEV_CHAR = 1, 2


# -- the union bpf_attr members we use ----------------------------------------

class _ProgLoad(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32),
                ("insns", ctypes.c_uint64), ("license", ctypes.c_uint64),
                ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32),
                ("prog_flags", ctypes.c_uint32), ("prog_name", ctypes.c_char * 16),
                ("prog_ifindex", ctypes.c_uint32), ("expected_attach_type", ctypes.c_uint32)]


class _ProgAttach(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                ("replace_bpf_fd", ctypes.c_uint32)]


def _bpf(cmd, attr, call):
    return check(_syscall(_SYS_BPF, int(cmd), ctypes.addressof(attr), ctypes.sizeof(attr)),
                 call)


def prog_load(prog_type, insns, license="GPL", name=""):
    """Load `insns` (bytes, 8 per instruction); return the program's fd
    (close-on-exec). A verifier rejection raises OSError whose message ends
    with the verifier's last log line."""
    code = ctypes.create_string_buffer(bytes(insns), len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(65536)
    attr = _ProgLoad(prog_type=int(prog_type), insn_cnt=len(insns) // 8,
                     insns=ctypes.addressof(code), license=ctypes.addressof(lic),
                     prog_name=name.encode()[:15])
    call = f"bpf(BPF_PROG_LOAD, {PROG_TYPE(prog_type).name}, {len(insns) // 8} insns)"
    ret = _syscall(_SYS_BPF, int(CMD.PROG_LOAD), ctypes.addressof(attr), ctypes.sizeof(attr))
    if ret != -1:
        return ret
    err = ctypes.get_errno()
    # load again with the verifier log on, to say why
    attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ctypes.addressof(log)
    _syscall(_SYS_BPF, int(CMD.PROG_LOAD), ctypes.addressof(attr), ctypes.sizeof(attr))
    # the reason is the last line before the closing statistics
    lines = [ln for ln in log.value.decode(errors="replace").splitlines()
             if ln.strip() and not ln.startswith(("processed ", "verification time",
                                                  "stack depth"))]
    why = f" (verifier: {lines[-1]})" if lines else ""
    raise OSError(err, os.strerror(err) + why, call)


def prog_attach(target_fd, prog_fd, attach_type, flags=0):
    attr = _ProgAttach(target_fd=target_fd, attach_bpf_fd=prog_fd,
                       attach_type=int(attach_type), attach_flags=int(flags))
    _bpf(CMD.PROG_ATTACH, attr,
         f"bpf(BPF_PROG_ATTACH, fd {target_fd}, {ATTACH_TYPE(attach_type).name}, {F(flags)!r})")


# -- assembling instructions ------------------------------------------------------
# struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; }

# classes
LDX, ALU, JMP, ALU64 = 0x01, 0x04, 0x05, 0x07
# sizes and modes (loads)
W, MEM = 0x00, 0x60
# ALU operations
AND, RSH, MOV = 0x50, 0x70, 0xb0
# jumps
JEQ, JNE, EXIT = 0x10, 0x50, 0x90
# operand source
K, X = 0x00, 0x08

R0, R1, R2, R3, R4, R5 = range(6)


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def ldx_w(dst, src, off):
    """dst = *(u32 *)(src + off)"""
    return insn(LDX | MEM | W, dst, src, off)


def alu32_imm(op, dst, imm):
    return insn(ALU | op | K, dst, imm=imm)


def mov32_reg(dst, src):
    return insn(ALU | MOV | X, dst, src)


def mov64_imm(dst, imm):
    return insn(ALU64 | MOV | K, dst, imm=imm)


def jmp_imm(op, dst, imm, off):
    """if (dst <op> imm) skip `off` instructions"""
    return insn(JMP | op | K, dst, off=off, imm=imm)


def jmp_reg(op, dst, src, off):
    return insn(JMP | op | X, dst, src, off=off)


def exit_():
    return insn(JMP | EXIT)
