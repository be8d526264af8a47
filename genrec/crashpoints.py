"""Crash points for tests: at a named instruction the process sends itself SIGKILL when the
environment variable `GENREC_TEST_CRASH_AT` names that point, so that a test can kill a real process
exactly where a crash would hurt. Unset (always, outside tests), a crash point does nothing."""

from __future__ import annotations

import os
import signal

ENV = "GENREC_TEST_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
