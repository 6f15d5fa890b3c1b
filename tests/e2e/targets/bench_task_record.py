"""Target for `scripts/bench tasks-record`: N asyncio tasks (argv[1]) for
SECONDS (argv[2], default 10): 10 of them compute in turn (about 1 ms of
work, then `await asyncio.sleep(0)`), the others wait three coroutines deep
on one event. Exits when the time is up."""
import asyncio
import sys
import time

COMPUTING = 10


def work():
    x = 0
    for i in range(20000):
        x += i * i
    return x


async def compute(stop):
    while time.monotonic() < stop:
        work()
        await asyncio.sleep(0)


async def leaf(ev):
    await ev.wait()


async def middle(ev):
    await leaf(ev)


async def top(ev):
    await middle(ev)


async def main(n, seconds):
    ev = asyncio.Event()
    waiting = [asyncio.ensure_future(top(ev)) for _ in range(max(n - COMPUTING, 0))]
    stop = time.monotonic() + seconds
    await asyncio.gather(*(compute(stop) for _ in range(min(n, COMPUTING))))
    ev.set()
    await asyncio.gather(*waiting)


args = int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
if sys.version_info >= (3, 7):
    asyncio.run(main(*args))
else:  # 3.6: no asyncio.run
    asyncio.get_event_loop().run_until_complete(main(*args))
