"""The per-call event pipe: anyio memory-stream semantics, on trio and asyncio."""

from __future__ import annotations

from collections import deque

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm.pipe import PipeReceiver, PipeSender, current_backend, open_pipe

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pipe(capacity: int = 2) -> tuple[PipeSender[int], PipeReceiver[int]]:
    return open_pipe(capacity, current_backend())


async def test_items_come_out_in_order_then_end_of_stream() -> None:
    send, receive = pipe(3)
    for i in range(3):
        send.send_nowait(i)
    with pytest.raises(anyio.WouldBlock):
        send.send_nowait(3)
    send.close()
    assert [await receive.receive() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(anyio.EndOfStream):
        await receive.receive()
    with pytest.raises(anyio.ClosedResourceError):
        send.send_nowait(4)


async def test_a_waiting_reader_is_woken_by_a_send() -> None:
    send, receive = pipe()
    got: list[int] = []

    async def reader() -> None:
        got.append(await receive.receive())

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.wait_all_tasks_blocked()
        assert receive.statistics().reader_waiting
        send.send_nowait(7)
    assert got == [7]
    assert not receive.statistics().reader_waiting


async def test_a_reader_cancelled_while_waiting_loses_nothing() -> None:
    send, receive = pipe()
    with anyio.move_on_after(0.01):
        await receive.receive()
    assert not receive.statistics().reader_waiting
    send.send_nowait(1)  # no reader waits: nothing to wake, nothing lost
    assert await receive.receive() == 1

    # A wake-up racing a cancellation: the item stays for the next receive.
    async with anyio.create_task_group() as tg:

        async def reader() -> None:
            await receive.receive()

        tg.start_soon(reader)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
        send.send_nowait(2)
    assert receive.receive_nowait() == 2


async def test_a_writer_waits_for_room_and_a_closed_reader_fails_it() -> None:
    send, receive = pipe(1)
    send.send_nowait(1)
    sent: list[int] = []

    async def writer(item: int) -> None:
        await send.send(item)
        sent.append(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer, 2)
        await anyio.wait_all_tasks_blocked()
        assert send.statistics().writers_waiting == 1
        assert receive.receive_nowait() == 1  # room: the writer goes on
    assert sent == [2]

    errors: list[BaseException] = []

    async def doomed() -> None:
        try:
            await send.send(3)
        except anyio.BrokenResourceError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(doomed)
        await anyio.wait_all_tasks_blocked()
        receive.close()
    assert len(errors) == 1
    assert receive.statistics().buffered == 0  # dropped with the reader
    with pytest.raises(anyio.BrokenResourceError):
        send.send_nowait(4)
    with pytest.raises(anyio.ClosedResourceError):
        receive.receive_nowait()


async def test_closing_the_writer_wakes_a_waiting_reader_with_end_of_stream() -> None:
    send, receive = pipe()
    ended: list[bool] = []

    async def reader() -> None:
        try:
            await receive.receive()
        except anyio.EndOfStream:
            ended.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.wait_all_tasks_blocked()
        send.close()
    assert ended == [True]


async def test_a_second_concurrent_reader_is_refused() -> None:
    send, receive = pipe()
    async with anyio.create_task_group() as tg:
        tg.start_soon(receive.receive)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(anyio.BusyResourceError):
            await receive.receive()
        send.send_nowait(1)


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        open_pipe(0, "trio")


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=4),
    ops=st.lists(
        st.sampled_from(["send", "batch1", "batch3", "receive", "close_send", "close_receive"]),
        max_size=30,
    ),
)
def test_the_nowait_operations_match_a_bounded_queue(capacity: int, ops: list[str]) -> None:
    send, receive = open_pipe(capacity, "trio")  # no waits: any backend's parker is unused
    model: deque[int | list[int]] = deque()  # entries as sent: items and batches
    send_closed = receive_closed = False

    def held() -> int:  # a batch weighs its length
        return sum(len(e) if isinstance(e, list) else 1 for e in model)

    for n, op in enumerate(ops):
        if op in ("send", "batch1", "batch3"):
            entry: int | list[int] = n if op == "send" else [n] * int(op[-1])

            def put(entry: int | list[int] = entry) -> None:
                if isinstance(entry, list):
                    send.send_batch_nowait(entry)
                else:
                    send.send_nowait(entry)

            if send_closed:
                with pytest.raises(anyio.ClosedResourceError):
                    put()
            elif receive_closed:
                with pytest.raises(anyio.BrokenResourceError):
                    put()
            elif held() >= capacity:  # full: a batch too (at most capacity-1 + one batch)
                with pytest.raises(anyio.WouldBlock):
                    put()
            else:
                put()
                model.append(entry)
        elif op == "receive":
            if receive_closed:
                with pytest.raises(anyio.ClosedResourceError):
                    receive.receive_nowait()
            elif model:
                assert receive.receive_nowait() == model.popleft()  # a batch comes whole
            elif send_closed:
                with pytest.raises(anyio.EndOfStream):
                    receive.receive_nowait()
            else:
                with pytest.raises(anyio.WouldBlock):
                    receive.receive_nowait()
        elif op == "close_send":
            send.close()
            send_closed = True
        else:
            receive.close()
            receive_closed = True
            model.clear()
        assert send.statistics().buffered == held()
        assert held() < capacity + 3  # bounded in items, however they were batched


async def test_a_writer_of_a_batch_waits_until_the_reader_makes_room() -> None:
    send, receive = pipe(4)
    send.send_batch_nowait([1, 2, 3, 4, 5])  # room (0 < 4): one batch may overshoot
    assert receive.statistics().buffered == 5
    done: list[bool] = []

    async def writer() -> None:
        await send.send_batch([6, 7])
        done.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        await anyio.wait_all_tasks_blocked()
        assert not done and send.statistics().writers_waiting == 1
        assert receive.receive_nowait() == [1, 2, 3, 4, 5]
    assert done == [True]
    assert await receive.receive() == [6, 7]
