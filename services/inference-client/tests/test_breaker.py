from switchboard.inference_client.breaker import Breaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_failures_in_a_row_and_a_success_resets_the_count() -> None:
    breaker = Breaker(failures=3, reset_s=10, clock=Clock())
    breaker.failure()
    breaker.failure()
    breaker.success()
    breaker.failure()
    breaker.failure()
    assert breaker.state is State.CLOSED and breaker.allow()
    breaker.failure()
    assert breaker.state is State.OPEN and not breaker.allow()


def test_half_open_lets_one_trial_through_which_closes_or_reopens_it() -> None:
    clock = Clock()
    breaker = Breaker(failures=1, reset_s=10, clock=clock)
    breaker.failure()
    clock.now = 9.9
    assert not breaker.allow()
    clock.now = 10.0
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.failure()
    assert breaker.state is State.OPEN and not breaker.allow()
    clock.now = 20.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state is State.CLOSED and breaker.allow() and breaker.allow()
