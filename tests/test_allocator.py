"""The allocator policy (genrec/allocator.py): memory of 64 MiB freed and asked for again is reused
from malloc's heap instead of being mapped afresh and faulted in by the kernel page by page."""

import subprocess
import sys

import pytest

PROBE = """
import ctypes, resource, sys
from genrec.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "kept" else False
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
faults = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(64 << 20)
    ctypes.memset(block, 1, 64 << 20)
    libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(kept, *faults)
"""


def _faults(policy: str) -> tuple[str, list[int]]:
    env = {"PATH": "/usr/bin:/bin"}  # without any MALLOC_* variable of the caller's
    out = subprocess.run([sys.executable, "-c", PROBE, policy], capture_output=True, text=True, check=True, env=env)
    kept, *faults = out.stdout.split()
    return kept, [int(f) for f in faults]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the policy is glibc's, on Linux")
def test_freed_memory_is_reused_not_faulted_in_again():
    kept, faults = _faults("kept")
    if kept != "True":
        pytest.skip("this C library is not glibc: the policy does not apply")
    default_kept, default_faults = _faults("default")
    # 64 MiB is 16,384 pages of 4 KiB: by default each use faults every one of them in again;
    # under the policy the first use does, and the next three reuse them.
    assert default_kept == "False" and min(default_faults) >= 16_000
    assert faults[0] >= 16_000 and max(faults[1:]) < 100
