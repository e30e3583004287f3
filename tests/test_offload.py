"""apps.runner.Offload: one pure job at a time off the worker; answers under the lock."""

from __future__ import annotations

import threading

from apps.runner import Offload


class RecordingLock:
    """A lock that remembers whether it was held when asked."""

    def __init__(self) -> None:
        self.held = False

    def __enter__(self) -> None:
        self.held = True

    def __exit__(self, *exc: object) -> None:
        self.held = False


def test_one_job_at_a_time_and_its_answer_is_given_under_the_lock() -> None:
    lock = RecordingLock()
    offload = Offload(lock)
    release, answered = threading.Event(), threading.Event()
    answers = []

    def done(answer: object) -> None:
        answers.append((answer, lock.held))
        answered.set()

    assert offload(lambda: release.wait(5) and 42, done)
    assert not offload(lambda: 7, done)  # one is running: refused, not queued
    release.set()
    assert answered.wait(5)
    assert answers == [(42, True)]
    answered.clear()
    for _ in range(100):  # busy until done returned
        if offload(lambda: 8, done):
            break
        threading.Event().wait(0.01)
    assert answered.wait(5) and answers[-1] == (8, True)


def test_a_failing_job_answers_none_and_frees_the_solver() -> None:
    offload = Offload(RecordingLock())
    answered = threading.Event()
    answers = []

    def done(answer: object) -> None:
        answers.append(answer)
        answered.set()

    assert offload(lambda: 1 / 0, done)
    assert answered.wait(5)
    assert answers == [None] and offload.errors == 1
