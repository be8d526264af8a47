"""The C allocator's policy in genrec's processes: freed memory kept for reuse rather than handed
back to the system at once.

glibc's malloc serves an allocation above its mmap threshold (which it raises to at most 32 MiB)
with pages fresh from the kernel and unmaps them on free, and trims the top of its heap as soon as
128 KiB there are free. So a tensor of a training step that is larger than that (a step's logits
over Online Retail's catalogue are 64 MiB) is zero-filled by the kernel page by page, every step:
an epoch of the sequence family took 2.2M page faults and 8.7 s, and 0.2M and 6.2 s with freed
memory kept (docs/results.md, "Sequential"). `keep_freed_memory` asks malloc to serve every size
from its heap and to give back only what lies free above `keep` bytes at the heap's top. The
arithmetic is unchanged; a process's resident memory stays nearer its peak.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
KEEP = 1 << 30
"""Free memory at the top of the heap that is kept rather than trimmed (1 GiB)."""

_kept = False


def keep_freed_memory(keep: int = KEEP) -> bool:
    """Set the policy once per process (glibc on Linux; elsewhere, or where the environment sets
    any MALLOC_* variable of its own, nothing changes). Whether it is in force."""
    global _kept
    if _kept:
        return True
    if not sys.platform.startswith("linux") or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc's alone: musl's mallopt does nothing
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _kept = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, keep) == 1
    if not _kept:
        log.debug("glibc's mallopt refused the allocator policy; malloc keeps its defaults")
    return _kept
