"""A lifeline for what a genrec process starts: when the process dies, even by SIGKILL, the
processes it started (Prefect's temporary API server above all) go with it.

`start()` marks the environment with a token that every child inherits and starts a small watcher
in a session of its own; when the genrec process is gone, the watcher ends every process whose
environment carries the token (SIGTERM, then SIGKILL), then itself. Linux only (it reads /proc);
elsewhere it does nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ENV = "GENREC_LIFELINE"


def start() -> None:
    """Start the watcher for this process (once: children inherit the token and start none)."""
    if os.environ.get(ENV) or not Path("/proc/self/environ").exists():
        return
    token = uuid.uuid4().hex
    os.environ[ENV] = token
    subprocess.Popen([sys.executable, "-m", "genrec.lifeline", str(os.getpid()), token], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


def carrying(token: str) -> list[int]:
    """The processes whose environment carries `token` (this one aside)."""
    marker = f"{ENV}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (this process counts as alive; a zombie does not)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def watch(parent: int, token: str, poll: float = 0.5) -> None:
    while process_alive(parent):
        time.sleep(poll)
    left = carrying(token)
    _signal(left, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [pid for pid in left if process_alive(pid)]
    _signal(left, signal.SIGKILL)


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2])
