"""Target for `scripts/bench tasks`: N asyncio tasks (argv[1]) parked three
coroutines deep on one event, the main task asleep. Prints "ready"."""
import asyncio
import sys


async def leaf(ev):
    await ev.wait()


async def middle(ev):
    await leaf(ev)


async def top(ev):
    await middle(ev)


async def main(n):
    ev = asyncio.Event()
    tasks = [asyncio.ensure_future(top(ev)) for _ in range(n)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    print("ready", flush=True)
    await asyncio.sleep(3600)
    del tasks


asyncio.run(main(int(sys.argv[1])))
