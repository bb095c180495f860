"""streams.broker: the encode-once event, the bounded subscription queue and the in-process fan-out."""

from __future__ import annotations

import anyio
import pytest

from streams.broker import Event, LocalFanout, MemoryBroker, Subscription, SubscriptionClosed, broker_for_url
from streams.endings import Ending

pytestmark = pytest.mark.anyio


def event(user_id: int, event_id: int, event_type: str = "product_added") -> Event:
    payload = b'{"id":%d,"type":"%s","data":{},"timestamp":0,"user_id":%d}' % (event_id, event_type.encode(), user_id)
    return Event(user_id=user_id, id=event_id, type=event_type, payload=payload)


def test_the_sse_frame_is_id_event_data_and_a_blank_line() -> None:
    one = event(7, 42, "order_created")
    assert one.sse_frame == b"id: 42\nevent: order_created\ndata: " + one.payload + b"\n\n"


def test_frames_are_encoded_once_and_shared() -> None:
    one = event(7, 42)
    assert one.sse_frame is one.sse_frame
    assert one.text is one.text
    assert one.text == one.payload.decode()


def test_the_ws_text_keeps_non_ascii() -> None:
    payload = '{"id":1,"type":"product_added","data":{"name":"Crème brûlée ✓"}}'.encode()
    one = Event(user_id=1, id=1, type="product_added", payload=payload)
    assert one.text == payload.decode()
    assert one.sse_frame.endswith(payload + b"\n\n")


async def test_a_batch_is_everything_queued_in_order() -> None:
    subscription = Subscription(user_id=1, maxsize=10)
    for event_id in (1, 2, 3):
        subscription.push(event(1, event_id))
    assert len(subscription) == 3
    with anyio.fail_after(1):
        assert [e.id for e in await subscription.next_batch()] == [1, 2, 3]
    assert len(subscription) == 0


async def test_next_batch_waits_for_a_push() -> None:
    subscription = Subscription(user_id=1, maxsize=10)
    got: list[int] = []

    async def consume() -> None:
        got.extend(e.id for e in await subscription.next_batch())

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            assert got == []
            subscription.push(event(1, 1))
    assert got == [1]


async def test_a_full_queue_closes_the_subscription_as_a_slow_consumer() -> None:
    subscription = Subscription(user_id=1, maxsize=3)
    for event_id in range(1, 5):
        subscription.push(event(1, event_id))
    assert subscription.closed_reason == "slow_consumer"
    assert len(subscription) == 0  # the queued events are dropped: the client resumes from the log
    with anyio.fail_after(1), pytest.raises(SubscriptionClosed) as closed:
        await subscription.next_batch()
    assert closed.value.reason == "slow_consumer"


async def test_close_wakes_a_waiting_consumer_and_keeps_the_first_reason() -> None:
    subscription = Subscription(user_id=1, maxsize=3)
    reasons: list[str] = []

    async def consume() -> None:
        try:
            await subscription.next_batch()
        except SubscriptionClosed as closed:
            reasons.append(closed.reason)

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            subscription.close(Ending.SERVER_RESTART)
            subscription.close(Ending.CLOSED)
    assert reasons == [Ending.SERVER_RESTART]
    subscription.push(event(1, 1))
    assert len(subscription) == 0


def test_fanout_reaches_only_the_events_user() -> None:
    fanout = LocalFanout()
    alice_one, alice_two = fanout.subscribe(1, 10), fanout.subscribe(1, 10)
    bob = fanout.subscribe(2, 10)
    fanout.deliver([event(1, 1), event(2, 1), event(1, 2)])
    assert [e.id for e in alice_one._items] == [1, 2]
    assert [e.id for e in alice_two._items] == [1, 2]
    assert [(e.user_id, e.id) for e in bob._items] == [(2, 1)]
    assert fanout.subscription_count == 3


def test_unsubscribe_is_idempotent_and_stops_delivery() -> None:
    fanout = LocalFanout()
    subscription = fanout.subscribe(1, 10)
    fanout.unsubscribe(subscription)
    fanout.unsubscribe(subscription)
    fanout.deliver([event(1, 1)])
    assert len(subscription) == 0
    assert fanout.subscription_count == 0


def test_one_slow_subscription_does_not_stop_the_others() -> None:
    fanout = LocalFanout()
    slow, healthy = fanout.subscribe(1, 2), fanout.subscribe(1, 100)
    for event_id in range(1, 11):
        fanout.deliver([event(1, event_id)])
        healthy._items.clear()  # this consumer keeps up
    assert slow.closed_reason == "slow_consumer"
    assert healthy.closed_reason is None


def test_one_publish_bigger_than_the_queue_does_not_close_a_consumer_that_keeps_up() -> None:
    """A bulk write records many events in one transaction; they arrive as one publish. A consumer
    whose queue was empty has not fallen behind, whatever the size of the burst."""
    fanout = LocalFanout()
    subscription = fanout.subscribe(1, 16)
    fanout.deliver([event(1, event_id) for event_id in range(1, 101)])
    assert subscription.closed_reason is None
    assert [e.id for e in subscription._items] == list(range(1, 101))


def test_a_consumer_still_holding_a_full_queue_is_closed_by_the_next_publish() -> None:
    fanout = LocalFanout()
    subscription = fanout.subscribe(1, 16)
    fanout.deliver([event(1, event_id) for event_id in range(1, 101)])
    fanout.deliver([event(1, 101)])
    assert subscription.closed_reason == "slow_consumer"


def test_a_burst_for_several_users_is_split_per_user_in_order() -> None:
    fanout = LocalFanout()
    alice, bob = fanout.subscribe(1, 4), fanout.subscribe(2, 4)
    burst = [event(1 + n % 2, 1 + n // 2) for n in range(20)]
    fanout.deliver(burst)
    assert [e.id for e in alice._items] == list(range(1, 11))
    assert [e.id for e in bob._items] == list(range(1, 11))
    assert alice.closed_reason is None
    assert bob.closed_reason is None


async def test_memory_broker_publishes_and_stops() -> None:
    broker = MemoryBroker()
    await broker.start()
    await broker.ping()
    subscription = broker.subscribe(1, 10)
    await broker.publish([event(1, 1)])
    with anyio.fail_after(1):
        assert [e.id for e in await subscription.next_batch()] == [1]
    await broker.stop()
    with anyio.fail_after(1), pytest.raises(SubscriptionClosed) as closed:
        await subscription.next_batch()
    assert closed.value.reason is Ending.SERVER_RESTART


def test_broker_for_url() -> None:
    assert isinstance(broker_for_url("memory://"), MemoryBroker)
    with pytest.raises(ValueError, match="kafka"):
        broker_for_url("kafka://localhost")
