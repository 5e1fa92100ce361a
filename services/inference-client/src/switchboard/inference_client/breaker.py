"""A circuit breaker per target: a target that keeps failing is skipped for a while
instead of making every request wait for it to fail again."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class State(Enum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are skipped until reset_s has passed
    HALF_OPEN = "half_open"  # one trial call decides


class Breaker:
    """Opens after ``failures`` failures in a row; after ``reset_s`` lets one trial call
    through: its success closes the breaker, its failure opens it again."""

    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._state = State.CLOSED
        self._trial = False

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() - self._opened_at >= self._reset_s:
            self._state, self._trial = State.HALF_OPEN, False
        return self._state

    def allow(self) -> bool:
        """May a call go to the target now? (In half-open state, only the first caller.)"""
        state = self.state
        if state is State.CLOSED:
            return True
        if state is State.HALF_OPEN and not self._trial:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self._failures, self._state, self._trial = 0, State.CLOSED, False

    def failure(self) -> None:
        self._failures += 1
        if self._state is State.HALF_OPEN or self._failures >= self._threshold:
            self._state, self._opened_at, self._trial = State.OPEN, self._clock(), False
