"""Stop signals that reach only us. `runway-models serve` runs the server (Ray's driver) as a child in its own
session and forwards SIGINT/SIGTERM to it. Without this, a signal to the whole process group (Ctrl-C in a
terminal, `timeout`, systemd) also reaches Ray's own processes: they die first, and `serve.shutdown()` then waits
30 s for a controller that is gone. The child stops gracefully (in-flight requests finish); if it has not ended
within STOP_BUDGET_S, everything in its session is killed, so no stop takes longer than that."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

#: Set in the child's environment: it serves instead of supervising.
CHILD_ENV = "RUNWAY_SERVE_CHILD"
#: Seconds from the first stop signal to the end of every process of the server.
STOP_BUDGET_S = 9.0


def is_child() -> bool:
    return os.environ.get(CHILD_ENV) == "1"


def supervise(argv: list[str]) -> int:
    """Run `runway-models <argv>` as a child in a new session until it ends; forward stop signals to it."""
    child = subprocess.Popen([sys.executable, "-m", "serve.cli", *argv], env={**os.environ, CHILD_ENV: "1"},
                             start_new_session=True)
    stop_asked_at: list[float] = []  # set by the first stop signal

    def forward(signum, _frame):
        if not stop_asked_at:
            stop_asked_at.append(time.monotonic())
            child.send_signal(signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    while child.poll() is None:
        time.sleep(0.1)
        if stop_asked_at and time.monotonic() - stop_asked_at[0] > STOP_BUDGET_S:
            print(f"runway-models: not stopped within {STOP_BUDGET_S:.0f} s; killing the server's processes",
                  file=sys.stderr, flush=True)
            kill_session(child.pid)
            child.wait()
            return 1
    return child.returncode


def kill_session(sid: int) -> None:
    """SIGKILL the child, its descendants and every process left in its session (Ray processes whose parent
    already died are reparented, but keep the session)."""
    try:
        doomed = [psutil.Process(sid), *psutil.Process(sid).children(recursive=True)]
    except psutil.NoSuchProcess:
        doomed = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == sid:
                doomed.append(process)
        except (ProcessLookupError, PermissionError):
            pass
    for process in doomed:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
