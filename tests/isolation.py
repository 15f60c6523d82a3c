"""Run a piece of a test in a forked child, so that a crash fails the test.

A segfault or an abort in compiled code would otherwise take the whole test
process down. ``run_isolated(func)`` forks; the child runs ``func`` and sends
back what it returned or raised; the parent fails the test if the child died
from a signal or hung.
"""

import os
import pickle
import select
import signal
import time

import pytest

_TIMEOUT = 120.0


def run_isolated(func, *args, **kwargs):
    """('returned', value) or ('raised', exception) of func(*args, **kwargs)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        try:
            try:
                outcome = ("returned", func(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                outcome = ("raised", exc)
            try:
                payload = pickle.dumps(outcome)
            except Exception:  # unpicklable result: report its repr
                payload = pickle.dumps((outcome[0], RuntimeError(repr(outcome[1]))))
            with os.fdopen(write_end, "wb") as f:
                f.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + _TIMEOUT
    chunks = []
    with os.fdopen(read_end, "rb", buffering=0) as f:
        while True:
            ready, _, _ = select.select([f], [], [], 0.5)
            if ready:
                chunk = f.read(1 << 16)
                if not chunk:  # the child closed its end: done or dead
                    break
                chunks.append(chunk)
            elif time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"{func.__name__} hung for more than {_TIMEOUT} s")
    payload = b"".join(chunks)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        pytest.fail(
            f"{func.__name__} crashed the process: signal "
            f"{signal.Signals(os.WTERMSIG(status)).name}"
        )
    return pickle.loads(payload)


def assert_raises_isolated(exception, match, func, *args, **kwargs):
    """func raises ``exception`` with a message matching ``match``, no crash."""
    kind, value = run_isolated(func, *args, **kwargs)
    assert kind == "raised", f"expected {exception.__name__}, {func.__name__} returned {value!r}"
    assert isinstance(value, exception), f"expected {exception.__name__}, got {value!r}"
    if match is not None:
        import re

        assert re.search(match, str(value)), f"{str(value)!r} does not match {match!r}"
    return value
