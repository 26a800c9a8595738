"""Thin ctypes wrappers for the Linux syscalls the standard library lacks.

Every wrapper raises ``OSError(errno, strerror, "call(args)")`` so that the
user sees which call failed and with what arguments.
"""
