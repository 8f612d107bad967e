"""`--timeout` of the simulator stops behaviour code that never makes a kernel call.

The scheduler only sees the clock between switches, so these runs would hang for
ever without the watchdog; every test bounds its own wall time so that a
regression fails instead of hanging the suite.
"""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from ksm.cli import main
from ksm.sim.behaviour import behaviours_of, load_module, start
from ksm.sim.kernel import Kernel, Outcome
from ksm.sim.session import run_behaviours
from policy_lang import load

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "models" / "echo"
BOUND = 10.0            # seconds: far above any limit used here, far below "hangs"

SERVER = '''from ksm.sim import Behaviour


class Server(Behaviour):
    process_class = "echo.Server"

    def Ping(self, value):
        return value + 1
'''

SPINNING_CLIENT = SERVER + '''

class Client(Behaviour):
    process_class = "echo.Client"

    def main(self):
        while True:
            pass
'''

SPINNING_HANDLER = '''from ksm.sim import Behaviour


class Server(Behaviour):
    process_class = "echo.Server"

    def Ping(self, value):
        while True:
            try:
                self.wait_for_device()
            except Exception:       # a retry loop swallowing every error must not swallow the limit
                continue

    def wait_for_device(self):
        while True:
            pass


class Client(Behaviour):
    process_class = "echo.Client"

    def main(self):
        self.proxy("server_connection").Ping(1)
'''

SPAWNING_CLIENT = SERVER + '''

class Client(Behaviour):
    process_class = "echo.Client"

    def main(self):
        server = self.proxy("server_connection")
        self.spawn(lambda: self.log("child done"), "child")
        for value in range(4):
            self.log(f"Ping({value}) -> {server.Ping(value)['result']}")
'''


class Hung(BaseException):
    """The test's own limit: the run under test did not stop in time (a
    BaseException, so that the behaviours' ``except Exception`` lets it through)."""


@pytest.fixture(autouse=True)
def hang_guard():
    """Turn a regression that would hang into a failure.

    SIGALRM interrupts the main thread between bytecodes, independently of the
    code under test; the exception lands in the spinning behaviour, which the
    kernel reports as a crash, so the test's assertions on the outcome fail.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise Hung(f"still running after {BOUND} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, BOUND)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def echo():
    return load(ECHO)


def behaviours(tmp_path: Path, source: str, name: str = "behaviours.py") -> Path:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ksm-sim-watchdog"]


def test_a_client_spinning_without_kernel_calls_times_out_and_is_named(echo, tmp_path):
    path = behaviours(tmp_path, SPINNING_CLIENT)
    t0 = time.monotonic()
    rep = run_behaviours(echo, path, timeout=1.0)
    elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < BOUND
    o = rep.outcome
    assert o.status == "timeout" and not rep.ok
    assert o.running == "echo.Client/main"
    assert o.detail.startswith("timeout after 1.0 s while echo.Client (thread main) was running behaviour code at ")
    assert o.detail.endswith(f"{path.name}:{line_of(path, 'while True')}")
    text = rep.render()
    assert o.detail in text and text.endswith("FAILED")
    assert not o.errors                        # interrupted, not crashed
    assert not watchdogs()


def test_a_handler_looping_for_ever_times_out_even_through_except_exception(echo, tmp_path):
    path = behaviours(tmp_path, SPINNING_HANDLER)
    t0 = time.monotonic()
    rep = run_behaviours(echo, path, timeout=0.5)
    assert time.monotonic() - t0 < BOUND
    o = rep.outcome
    assert o.status == "timeout" and o.running == "echo.Server/server0"
    assert "while echo.Server (thread server0) was running behaviour code" in o.detail
    assert o.detail.endswith(f"{path.name}:{line_of(path, 'def wait_for_device') + 1}")   # the innermost loop
    assert "echo.Client/main" in o.blocked              # still waiting for its reply
    assert rep.to_json()["outcome"]["running"] == "echo.Server/server0"


def test_the_command_exits_1_with_a_report_and_no_traceback(tmp_path, capsys):
    path = behaviours(tmp_path, SPINNING_CLIENT)
    t0 = time.monotonic()
    code = main(["simulate", str(ECHO), "--behaviours", str(path), "--timeout", "0.5", "-q"])
    assert time.monotonic() - t0 < BOUND
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in err and "internal error" not in err
    assert "outcome: timeout" in out and "echo.Client (thread main)" in out


def test_a_run_after_a_timed_out_one_is_not_hit_by_a_stray_interrupt(echo, tmp_path):
    run_behaviours(echo, behaviours(tmp_path, SPINNING_CLIENT), timeout=0.5)
    # A shot left pending would be delivered at the next bytecode: spin past the
    # watchdog's retry interval in Python code, then run normally.
    end = time.monotonic() + 0.7
    while time.monotonic() < end:
        pass
    rep = run_behaviours(echo, None)
    assert rep.ok and rep.outcome.status == "finished" and rep.outcome.detail == ""
    notes = [r["detail"] for r in rep.kernel.records if r["op"] == "note"]
    assert notes[-1] == "Ping(5000) refused: rcSecurityDisallow"


def test_run_in_a_worker_thread_times_out_too(echo, tmp_path):
    """A signal could only interrupt the main thread; the kernel is built here and
    run in another thread, as an embedding might."""
    kernel = Kernel(echo)
    start(kernel, behaviours_of(load_module(behaviours(tmp_path, SPINNING_CLIENT)), echo.classes))
    got: list[Outcome | BaseException] = []

    def worker() -> None:
        try:
            got.append(kernel.run(timeout=0.5))
        except BaseException as exc:           # anything escaping run() fails the test below
            got.append(exc)

    th = threading.Thread(target=worker, daemon=True)      # a hung run must not keep pytest alive
    t0 = time.monotonic()
    th.start()
    th.join(BOUND)
    assert not th.is_alive(), "Kernel.run in a worker thread did not stop"
    assert time.monotonic() - t0 < BOUND
    (outcome,) = got
    assert isinstance(outcome, Outcome), outcome
    assert outcome.status == "timeout" and outcome.running == "echo.Client/main"


def test_limits_and_normal_runs_are_unchanged_with_a_timeout(echo, tmp_path):
    fine = run_behaviours(echo, None, timeout=5)
    assert fine.ok and fine.outcome.status == "finished"
    looping = behaviours(tmp_path, SERVER + '''

class Client(Behaviour):
    process_class = "echo.Client"

    def main(self):
        server = self.proxy("server_connection")
        while True:
            server.Ping(1)
''')
    capped = run_behaviours(echo, looping, steps=40, timeout=5)
    assert capped.outcome.status == "step-limit" and capped.outcome.steps == 40
    assert not watchdogs()


def test_without_a_timeout_no_watchdog_runs(echo, monkeypatch):
    seen: list[int] = []
    real = Kernel._schedule

    def spy(self, *args, **kw):
        seen.append(len(watchdogs()))
        return real(self, *args, **kw)

    monkeypatch.setattr(Kernel, "_schedule", spy)
    assert run_behaviours(echo, None).ok
    assert run_behaviours(echo, None, timeout=5).ok
    assert seen == [0, 1]


def test_a_thread_spawned_while_running_ends_back_in_the_scheduler(echo, tmp_path):
    """It used to return to the thread that spawned it, resuming that one in the
    middle of its kernel call (and a timeout would have been raised there)."""
    rep = run_behaviours(echo, behaviours(tmp_path, SPAWNING_CLIENT), seed=3)
    assert rep.ok, rep.render(False)
    notes = [r["detail"] for r in rep.kernel.records if r["op"] == "note"]
    assert sorted(notes) == sorted(["child done"] + [f"Ping({v}) -> {v + 1}" for v in range(4)])
