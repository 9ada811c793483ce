"""Arrays come from Rust without a copy, and no call holds the GIL while the device works."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import phaseflow as pf


def owner(array):
    """The object at the end of an array's base chain: whatever owns its memory."""
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array


def test_states_own_the_engines_buffer(engine):
    r = pf.simulate("lorenz", engine=engine, progress=False, n=500, solver="rk4", tspan=[0, 0.1], dt=0.01)
    for name in ("states", "times", "status"):
        a = getattr(r, name)
        assert not a.flags.owndata, name  # NumPy did not allocate it
        # The memory belongs to the Rust Vec the engine filled, moved into a container.
        assert type(owner(a)).__name__ == "PySliceContainer", name
        assert a.flags.c_contiguous and a.flags.writeable
    # Two results never share memory.
    s = pf.simulate("lorenz", engine=engine, progress=False, n=500, solver="rk4", tspan=[0, 0.1], dt=0.01)
    assert not np.shares_memory(r.states, s.states)


def test_the_gil_is_released_while_a_run_goes(engine):
    """A Python thread keeps counting while the main thread waits on a simulation."""
    count = 0
    stop = threading.Event()

    def counter():
        nonlocal count
        while not stop.is_set():
            count += 1

    t = threading.Thread(target=counter)
    start = time.perf_counter()
    t.start()
    try:
        # About 10^8 steps: long enough (>0.2 s on a CPU's software Vulkan) to watch.
        before = count
        r = pf.simulate("lorenz", engine=engine, progress=False, n=20_000, solver="rk4", tspan=[0, 5], dt=0.001)
        during = count - before
    finally:
        stop.set()
        t.join()
    elapsed = time.perf_counter() - start
    assert r.ok.all()
    # A held GIL would leave the counter near zero for the whole run (the interpreter only
    # switches threads when the holder lets go); released, it counts millions per second.
    assert elapsed > 0.05
    assert during > 10_000, f"the counter advanced {during} times in {elapsed:.2f} s"


def test_jobs_report_progress_and_cancel(engine):
    job = engine.submit("lorenz", n=200_000, solver="rk4", tspan=[0, 100], dt=0.0005)
    p = job.progress()
    assert set(p) >= {"state", "done", "total"} and p["total"] == 200_000
    assert job.wait(timeout=0.0) is False
    job.cancel()
    job.wait()
    assert job.done() and job.state == "cancelled"
    with pytest.raises(pf.CancelledError):
        job.result()


def test_a_result_is_taken_once(engine):
    job = engine.submit("lorenz", n=10, solver="rk4", tspan=[0, 0.1], dt=0.01)
    job.result()
    with pytest.raises(pf.PhaseflowError, match="already taken"):
        job.result()


def test_ctrl_c_cancels_the_run(engine):
    """SIGINT while waiting (Ctrl-C in a terminal, "interrupt" in a notebook) cancels the job
    and raises KeyboardInterrupt within a fraction of a second."""
    # A process started in the background by a shell without job control inherits SIGINT
    # ignored, and Python then keeps it ignored: Ctrl-C would never reach it. Give this
    # test the handler an interactive Python has.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        ctrl_c_while_waiting(engine)
    finally:
        signal.signal(signal.SIGINT, previous)


def ctrl_c_while_waiting(engine):
    job = engine.submit("lorenz", n=200_000, solver="rk4", tspan=[0, 200], dt=0.0005)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    try:
        job.wait()
    except KeyboardInterrupt:
        pass
    else:
        # Say what the job had become (it ran to the end when SIGINT was ignored).
        fired = timer.finished.is_set()
        timer.cancel()  # a late SIGINT would stop the whole session
        state, progress = job.state, job.progress()
        job.cancel()
        pytest.fail(
            f"wait() returned without KeyboardInterrupt after {time.perf_counter() - start:.2f} s: "
            f"job {state!r}, progress {progress}, timer fired: {fired}"
        )
    waited = time.perf_counter() - start
    timer.join()
    assert waited < 5.0  # the run itself takes minutes on a CPU
    job.wait()
    assert job.state == "cancelled"
