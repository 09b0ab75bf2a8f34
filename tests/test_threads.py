"""The main thread serving the agent's thread (``kernel/threads.py``), in this process."""

from __future__ import annotations

import concurrent.futures
import threading
import time

from jupyter_codexmax.kernel.threads import Interrupted, MainThread


def test_work_queued_when_serving_ends_early_still_runs() -> None:
    """The user's second interrupt: serving goes on a little, so the agent's calls (its
    save, its last events) are not stranded."""
    main = MainThread(None)
    done: concurrent.futures.Future[None] = concurrent.futures.Future()

    def interrupted() -> None:
        raise KeyboardInterrupt

    with main.hold():
        first = main.submit(interrupted)
        second = main.submit(lambda: "saved")
    finished = main.serve(done, on_interrupt=lambda: False, give_up_after=0.3)
    assert not finished
    assert isinstance(first.exception(), Interrupted)
    assert second.result(timeout=0) == "saved"


def test_a_job_an_interrupt_kept_from_running_runs_later() -> None:
    """An interrupt between taking a job from the queue and running it: the job goes back
    in the queue (the agent awaits it), and the interrupt is handled."""
    from jupyter_codexmax.kernel import threads

    main = MainThread(None)
    done: concurrent.futures.Future[None] = concurrent.futures.Future()
    ran: list[str] = []
    interrupts: list[int] = []

    class Late(threads._Job):
        """Interrupted once, before its callable ever started."""

        tries = 0

        def __call__(self) -> None:
            Late.tries += 1
            if Late.tries == 1:
                raise KeyboardInterrupt
            super().__call__()

    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    main._queue.put(Late(lambda: ran.append("ran"), future))
    threading.Timer(0.3, lambda: done.set_result(None)).start()

    def on_interrupt() -> bool:
        interrupts.append(1)
        return True

    main.serve(done, on_interrupt=on_interrupt)
    assert future.done() and ran == ["ran"] and interrupts == [1]


def test_while_held_work_waits_for_the_cell() -> None:
    """Work submitted before serving starts (the turn's first events) is served in the cell,
    not scheduled on the kernel's loop for after it."""
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        main = MainThread(loop)
        with main.hold():
            early = main.submit(lambda: "early")
            done: concurrent.futures.Future[None] = concurrent.futures.Future()
            threading.Timer(0.2, lambda: done.set_result(None)).start()
            started = time.monotonic()
            main.serve(done, on_interrupt=lambda: True)
        assert early.result(timeout=0) == "early" and time.monotonic() - started < 5
        later = main.submit(lambda: "later")  # not held, not serving: the kernel's loop
        assert not later.done()
        loop.run_until_complete(asyncio.sleep(0.05))
        assert later.result(timeout=0) == "later"
    finally:
        loop.close()


def test_no_interrupt_escapes_serving() -> None:
    """An interrupt that comes between two polls of the queue (at the loop's jump back, not
    inside a call) is the agent's to handle too, never a KeyboardInterrupt out of the cell
    (seen in JupyterLab: the stop button's interrupt came out as a traceback and the turn
    went on)."""
    import signal

    main = MainThread(None)
    done: concurrent.futures.Future[None] = concurrent.futures.Future()
    handled: list[int] = []
    ident = threading.get_ident()
    stop = threading.Event()
    serving = threading.Event()

    def pester() -> None:
        """One interrupt at a time (each handled before the next, as a person's clicks
        are), at random points of the serving loop."""
        serving.wait(10)
        for number in range(1, 801):
            if stop.is_set():
                return
            signal.pthread_kill(ident, signal.SIGINT)
            deadline = time.monotonic() + 5
            while len(handled) < number and time.monotonic() < deadline:
                time.sleep(0.0001)
            if len(handled) < number:
                # The serving loop stopped polling (once: a SimpleQueue's get(timeout)
                # blocking for good after a signal): fail now, not after 800 of these.
                done.set_exception(AssertionError(f"interrupt {number} was never handled"))
                main.submit(lambda: None)  # wakes a loop stuck waiting for work
                return
            time.sleep(0.0002 * (number % 7))
        done.set_result(None)

    def on_interrupt() -> bool:
        handled.append(1)
        return True

    thread = threading.Thread(target=pester)
    thread.start()
    main.submit(serving.set)  # the first job serve runs: the interrupts start then
    try:
        main.serve(done, on_interrupt=on_interrupt, poll=0.0005)
    finally:
        stop.set()
        thread.join()
    done.result(timeout=0)  # every interrupt was handled
    assert len(handled) == 800
