"""`genrec serve` for a benchmark: started on a free port, waited for until it answers /ping,
stopped afterwards."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Iterator

GENREC = str(Path(sys.executable).parent / "genrec")


@contextlib.contextmanager
def genrec_serve(env: dict[str, str], args: list[str], stderr: IO | int = subprocess.DEVNULL
                 ) -> Iterator[tuple[subprocess.Popen, str]]:
    """The server process and its base URL; up to 120 s to start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([GENREC, "serve", "--port", str(port), *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/ping", timeout=2)
                break
            except OSError:
                time.sleep(1)
        yield server, base
    finally:
        server.terminate()
        server.wait(timeout=30)
