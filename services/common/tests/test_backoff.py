import random

from switchboard.common.backoff import delay


def test_the_delay_doubles_per_failure_up_to_the_cap() -> None:
    assert [delay(n, 0.2) for n in range(1, 5)] == [0.2, 0.4, 0.8, 1.6]
    assert delay(30, 0.2, cap_s=10.0) == 10.0
    assert delay(10_000, 1.0) > 0  # no overflow however long the outage


def test_jitter_keeps_half_and_spreads_the_rest_up_to_the_cap() -> None:
    rng = random.Random(7)
    delays = [[delay(n, 5, 300, jitter=True, rng=rng) for _ in range(200)] for n in range(1, 9)]
    for n, samples in enumerate(delays, start=1):
        ceiling = min(300, 5 * 2 ** (n - 1))
        assert all(ceiling / 2 <= d <= ceiling for d in samples)
        assert max(samples) - min(samples) > ceiling / 4  # jittered, not one value
    assert max(delays[-1]) <= 300
