import asyncio
import signal
import subprocess
import sys
import textwrap
import time

from switchboard.common.lifecycle import sleep_until_woken, until_stopped

# A minimal service: works in a loop until stopped, then drains (finishes the item in
# flight) and reports how it ended.
SERVICE = textwrap.dedent(
    """
    import asyncio, sys
    from switchboard.common import lifecycle

    async def serve(stop):
        done = 0
        async def work():
            nonlocal done
            while not stop.is_set():
                await asyncio.sleep(0.05)
                done += 1
        task = asyncio.create_task(work())
        print("ready", flush=True)
        await stop.wait()
        drained = await lifecycle.drain(task, timeout_s=5)
        print(f"drained={drained} done>0={done > 0}", flush=True)

    sys.exit(lifecycle.run(serve))
    """
)


def test_sigterm_drains_and_exits_cleanly() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "drained=True done>0=True" in out


async def test_sleep_until_woken_ends_at_a_wake_a_stop_or_the_timeout() -> None:
    stop, wake = asyncio.Event(), asyncio.Event()
    started = time.perf_counter()
    await sleep_until_woken(stop, wake, 0.05)
    assert time.perf_counter() - started >= 0.05  # nothing came: the whole nap
    asyncio.get_running_loop().call_later(0.01, wake.set)
    started = time.perf_counter()
    await sleep_until_woken(stop, wake, 10)
    assert time.perf_counter() - started < 5 and not wake.is_set()  # woken, and the wake consumed
    stop.set()
    await asyncio.wait_for(sleep_until_woken(stop, wake, 10), 5)


async def test_until_stopped_returns_what_finished_or_nothing_when_stopped_first() -> None:
    stop = asyncio.Event()
    quick = asyncio.ensure_future(asyncio.sleep(0, result="done"))
    slow = asyncio.ensure_future(asyncio.sleep(60))
    assert await until_stopped(stop, quick, slow) == {quick}
    stop.set()
    assert await until_stopped(stop, slow) == set()
    assert not slow.done()  # left to the caller
    slow.cancel()
