"""The tasks mode of rhythm.py (which see): N asyncio tasks take turns on
one loop, each busy to the end of its slot. 3.7+."""
import asyncio

from rhythm import NTASKS, SECONDS, clock, slot_end, thread_time, tick


def tasks_mode():
    cpu = {}

    async def turn(name, until):
        used = 0.0
        while clock() < until:
            c0 = thread_time()
            tick(slot_end())
            used += thread_time() - c0
            await asyncio.sleep(0)
        cpu[name] = used

    async def main():
        until = clock() + SECONDS
        tasks = []
        for k in range(NTASKS):
            t = asyncio.ensure_future(turn("turn-%d" % k, until))
            t.set_name("turn-%d" % k)
            tasks.append(t)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return cpu


