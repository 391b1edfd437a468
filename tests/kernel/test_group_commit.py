"""GroupCommit (towntip/kernel/group_commit.py): requests waiting while a batch is served go together in the next;
each caller gets its own result, a failed batch fails each of its callers and no other, and a caller that gives
up does not cancel the batch the others wait for."""

from __future__ import annotations

import asyncio

import pytest

from towntip.kernel.group_commit import GroupCommit


async def test_waiting_requests_go_together_in_order_and_each_gets_its_own_result() -> None:
    seen: list[list[int]] = []
    gate = asyncio.Event()

    async def serve(items: list[int]) -> list[int | BaseException]:
        seen.append(list(items))
        if len(seen) == 1:
            await gate.wait()  # the first batch is "writing" while the others arrive
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    gc: GroupCommit[int, int] = GroupCommit("test", serve)
    first = asyncio.ensure_future(gc.submit(0))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(gc.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 0
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert seen == [[0], [1, 2, 3, 4, 5]]
    assert [r if isinstance(r, int) else str(r) for r in results] == ["odd 1", 20, "odd 3", 40, "odd 5"]
    assert (gc.batches, gc.items) == (2, 6)


async def test_a_failed_batch_fails_its_callers_only_and_the_next_batch_is_served() -> None:
    calls = 0

    async def serve(items: list[str]) -> list[str | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is locked")
        return [s.upper() for s in items]

    gc: GroupCommit[str, str] = GroupCommit("test", serve, max_batch=2)
    results = await asyncio.gather(*(gc.submit(s) for s in "abcd"), return_exceptions=True)
    assert [str(r) for r in results] == ["database is locked", "database is locked", "C", "D"]
    assert (gc.batches, gc.items) == (1, 2)  # only the served batch counts


async def test_a_caller_that_gives_up_leaves_the_batch_to_the_others() -> None:
    gate = asyncio.Event()

    async def serve(items: list[int]) -> list[int | BaseException]:
        await gate.wait()
        return list(items)

    gc: GroupCommit[int, int] = GroupCommit("test", serve)
    impatient = asyncio.ensure_future(gc.submit(1))
    patient = asyncio.ensure_future(gc.submit(2))
    await asyncio.sleep(0)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    gate.set()
    assert await patient == 2
    assert (gc.batches, gc.items) == (1, 2)  # the cancelled caller's request was still served (and written)


async def test_up_to_concurrency_batches_are_served_at_once_each_with_what_waits() -> None:
    seen: list[list[int]] = []
    gate = asyncio.Event()
    running = peak = 0

    async def serve(items: list[int]) -> list[int | BaseException]:
        nonlocal running, peak
        seen.append(list(items))
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return list(items)

    async def settle() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    gc: GroupCommit[int, int] = GroupCommit("test", serve, concurrency=2)
    first = asyncio.ensure_future(gc.submit(0))
    await settle()
    second = asyncio.ensure_future(gc.submit(1))
    await settle()
    later = [asyncio.ensure_future(gc.submit(i)) for i in (2, 3)]
    await settle()
    assert seen == [[0], [1]]  # two batches at once; the third waits for one of them
    gate.set()
    assert await asyncio.gather(first, second, *later) == [0, 1, 2, 3]
    assert seen == [[0], [1], [2, 3]] and peak == 2 and (gc.batches, gc.items) == (3, 4)
    await settle()
    assert await gc.submit(4) == 4  # the drainers that finished are gone: a new request starts one
