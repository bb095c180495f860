"""streams.feed: parsing a stream request, choosing the start, and the lossless replay-then-live
sequence (seam, gaps, duplicates, filters) against an in-memory event log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import msgspec
import pytest
from anyio import wait_all_tasks_blocked

from streams.broker import Event, MemoryBroker, SubscriptionClosed
from streams.endings import Ending
from streams.feed import REPLAY_PAGE, BadStreamRequest, EventFeed, StreamRequest
from tests.support.event_log import USER, FakeLog

pytestmark = pytest.mark.anyio


async def next_batch(batches: AsyncIterator[list[Event]]) -> list[int]:
    with anyio.fail_after(1):
        return [event.id for event in await anext(batches)]


async def collect(batches: AsyncIterator[list[Event]], until: int) -> list[int]:
    """Ids from successive batches until ``until`` was seen."""
    got: list[int] = []
    while not got or got[-1] < until:
        got.extend(await next_batch(batches))
    return got


def feed_for(
    log: FakeLog, broker: MemoryBroker, last_event_id: int | None = None, types: str | None = None
) -> EventFeed:
    request = StreamRequest.parse(None if last_event_id is None else str(last_event_id), types)
    return EventFeed(broker, log, USER, request, queue_size=100)


# --- StreamRequest -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, None), ("", None), ("  ", None), ("0", 0), ("42", 42), (" 42 ", 42)]
)
def test_last_event_id_is_parsed(raw: str | None, expected: int | None) -> None:
    assert StreamRequest.parse(raw, None).last_event_id == expected


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5", "1e3", str(2**63), "0x1"])
def test_a_bad_last_event_id_names_the_parameter(raw: str) -> None:
    with pytest.raises(BadStreamRequest, match="last_event_id"):
        StreamRequest.parse(raw, None)


def test_types_are_a_comma_separated_set() -> None:
    assert StreamRequest.parse(None, "a, b,,a ").types == frozenset({"a", "b"})
    assert StreamRequest.parse(None, None).types is None


@pytest.mark.parametrize("raw", ["", ",", " , ", "x" * 41])
def test_bad_types_name_the_parameter(raw: str) -> None:
    with pytest.raises(BadStreamRequest, match="types"):
        StreamRequest.parse(None, raw)


# --- where a connection starts -----------------------------------------------------------------


async def test_a_new_client_starts_from_now() -> None:
    log, broker = FakeLog(), MemoryBroker()
    log.record(5)
    feed = feed_for(log, broker)
    assert await feed.open() is None
    assert feed.cursor == 5


@pytest.mark.parametrize("last_id", [0, 3, 5])
async def test_a_resume_point_in_the_log_is_served(last_id: int) -> None:
    log, broker = FakeLog(), MemoryBroker()
    log.record(5)
    feed = feed_for(log, broker, last_id)
    assert await feed.open() is None
    assert feed.cursor == last_id


async def test_resuming_just_before_the_oldest_kept_event_is_lossless() -> None:
    log, broker = FakeLog(), MemoryBroker()
    log.record(10)
    log.prune(up_to=4)
    feed = feed_for(log, broker, 4)
    assert await feed.open() is None
    assert await collect(feed.batches(), 10) == list(range(5, 11))


@pytest.mark.parametrize(
    ("last_id", "pruned_up_to", "oldest", "latest"),
    [
        (3, 4, 5, 10),  # 4 is gone
        (999, 0, 1, 10),  # ahead of the log
        (11, 0, 1, 10),
        (2, 10, None, 10),  # nothing kept at all
    ],
)
async def test_an_unservable_resume_point_gets_resync_required(
    last_id: int, pruned_up_to: int, oldest: int | None, latest: int
) -> None:
    log, broker = FakeLog(), MemoryBroker()
    log.record(10)
    log.prune(up_to=pruned_up_to)
    feed = feed_for(log, broker, last_id)
    message = await feed.open()
    assert message is not None
    envelope = msgspec.json.decode(message)
    assert envelope["type"] == "resync_required"
    assert "id" not in envelope
    assert envelope["data"]["last_event_id"] == last_id
    assert envelope["data"]["oldest_id"] == oldest
    assert envelope["data"]["latest_id"] == latest
    assert feed.cursor == latest  # it goes on from latest_id
    log.record(1)
    await broker.publish(log.events[USER][-1:])
    assert await next_batch(feed.batches()) == [11]


async def test_a_user_with_no_events_resuming_from_zero_is_fine() -> None:
    feed = feed_for(FakeLog(), MemoryBroker(), 0)
    assert await feed.open() is None
    assert feed.cursor == 0


# --- replay, seam, live ------------------------------------------------------------------------


async def test_the_replay_is_read_page_by_page_then_live_follows() -> None:
    log, broker = FakeLog(), MemoryBroker()
    total = 2 * REPLAY_PAGE + 17
    log.record(total)
    feed = feed_for(log, broker, 0)
    await feed.open()
    batches = feed.batches()
    assert await collect(batches, total) == list(range(1, total + 1))
    assert [after for after, _ in log.reads] == [0, REPLAY_PAGE, 2 * REPLAY_PAGE]
    await broker.publish(log.record(2))
    assert await next_batch(batches) == [total + 1, total + 2]


async def test_a_replay_of_exactly_one_page_still_goes_live() -> None:
    log, broker = FakeLog(), MemoryBroker()
    log.record(REPLAY_PAGE)
    feed = feed_for(log, broker, 0)
    await feed.open()
    batches = feed.batches()
    assert await collect(batches, REPLAY_PAGE) == list(range(1, REPLAY_PAGE + 1))
    await broker.publish(log.record(1))
    assert await next_batch(batches) == [REPLAY_PAGE + 1]


async def test_events_published_during_the_replay_are_sent_once() -> None:
    """The seam: the subscription is open before the replay reads the log, so an event can be in
    both; it goes out once, in order."""
    log, broker = FakeLog(), MemoryBroker()
    log.record(3)
    feed = feed_for(log, broker, 1)
    await feed.open()
    await broker.publish(log.record(2))  # 4, 5: committed after open, before the replay reads
    batches = feed.batches()
    assert await collect(batches, 5) == [2, 3, 4, 5]
    await broker.publish(log.record(1))
    assert await next_batch(batches) == [6]


async def test_a_new_client_skips_what_was_committed_before_its_start() -> None:
    """An event committed before the client read its starting point but published after it
    subscribed is in its queue, and already behind its cursor: not sent."""
    log, broker = FakeLog(), MemoryBroker()
    committed = log.record(3)
    feed = feed_for(log, broker)
    await feed.open()
    assert feed.cursor == 3
    await broker.publish(committed[-1:])  # the late publish of 3
    await broker.publish(log.record(1))
    assert await next_batch(feed.batches()) == [4]


async def test_a_gap_in_the_live_ids_is_filled_from_the_log() -> None:
    log, broker = FakeLog(), MemoryBroker()
    log.record(4)
    feed = feed_for(log, broker)
    await feed.open()
    batches = feed.batches()
    lost = log.record(3)  # 5, 6, 7: the broker lost them
    await broker.publish(log.record(1))  # 8
    assert await collect(batches, 8) == [5, 6, 7, 8]
    assert lost[0].id == 5


async def test_ids_published_out_of_order_go_out_in_order_once() -> None:
    log, broker = FakeLog(), MemoryBroker()
    feed = feed_for(log, broker)
    await feed.open()
    batches = feed.batches()
    one, two, three = log.record(3)
    await broker.publish([three])
    await broker.publish([one])
    await broker.publish([two])
    await broker.publish([three, three])
    assert await collect(batches, 3) == [1, 2, 3]
    await broker.publish(log.record(1))
    assert await next_batch(batches) == [4]


async def test_a_gap_that_was_pruned_meanwhile_ends_the_stream_instead_of_skipping_it() -> None:
    # Regression: the gap fill used to jump over pruned ids silently; the client must be told.
    log, broker = FakeLog(), MemoryBroker()
    log.record(2)
    feed = feed_for(log, broker)
    await feed.open()
    log.record(3)
    log.prune(up_to=5)
    await broker.publish(log.record(1))
    with pytest.raises(SubscriptionClosed, match="reconnect"), anyio.fail_after(1):
        await anext(feed.batches())
    resumed = feed_for(log, broker, last_event_id=2)
    assert await resumed.open() is not None, "reconnecting from the last id sent is a resync_required"


async def test_a_replay_that_meets_pruned_ids_ends_the_stream() -> None:
    log, broker = FakeLog(), MemoryBroker()
    log.record(10)
    feed = feed_for(log, broker, last_event_id=3)
    assert await feed.open() is None
    log.prune(up_to=6)  # the pruning runs between the check and the replay
    with pytest.raises(SubscriptionClosed, match="reconnect"), anyio.fail_after(1):
        await anext(feed.batches())


async def test_types_filter_the_replay_and_live_but_the_cursor_moves_on() -> None:
    log, broker = FakeLog(), MemoryBroker()
    log.record(2, "order_created")
    log.record(2, "stock_low")
    feed = feed_for(log, broker, 0, types="stock_low,stock_out")
    await feed.open()
    batches = feed.batches()
    assert await next_batch(batches) == [3, 4]
    await broker.publish(log.record(1, "order_created"))
    await broker.publish(log.record(1, "stock_out"))
    got: list[int] = []
    while not got:
        got = await next_batch(batches)
    assert got == [6]
    assert feed.cursor == 6


async def test_a_closed_subscription_ends_the_feed_with_its_reason() -> None:
    log, broker = FakeLog(), MemoryBroker()
    feed = feed_for(log, broker)
    await feed.open()
    assert feed.subscription is not None
    feed.subscription.close(Ending.SLOW_CONSUMER)
    with anyio.fail_after(1), pytest.raises(SubscriptionClosed) as closed:
        await anext(feed.batches())
    assert closed.value.reason == "slow_consumer"


async def test_a_feed_ended_during_the_replay_stops_before_the_next_page() -> None:
    log, broker = FakeLog(), MemoryBroker()
    log.record(3 * REPLAY_PAGE)
    feed = feed_for(log, broker, 0)
    await feed.open()
    batches = feed.batches()
    assert len(await next_batch(batches)) == REPLAY_PAGE
    feed.end(Ending.SERVER_RESTART)
    with anyio.fail_after(1), pytest.raises(SubscriptionClosed) as closed:
        await anext(batches)
    assert closed.value.reason is Ending.SERVER_RESTART
    assert len(log.reads) == 1


async def test_a_feed_ended_before_it_opened_ends_at_once() -> None:
    log, broker = FakeLog(), MemoryBroker()
    log.record(3)
    feed = feed_for(log, broker, 0)
    feed.end(Ending.SERVER_RESTART)
    await feed.open()
    with anyio.fail_after(1), pytest.raises(SubscriptionClosed):
        await anext(feed.batches())
    assert log.reads == []


async def test_batches_before_open_is_a_clear_error() -> None:
    feed = feed_for(FakeLog(), MemoryBroker())
    with pytest.raises(RuntimeError, match="open"):
        await anext(feed.batches())


async def test_close_unsubscribes() -> None:
    broker = MemoryBroker()
    feed = feed_for(FakeLog(), broker)
    await feed.open()
    assert broker.local.subscription_count == 1
    feed.close()
    assert broker.local.subscription_count == 0
    assert feed.subscription is not None
    assert feed.subscription.closed_reason == "closed"


# --- catch-up: events the queue never saw -----------------------------------------------------


async def test_a_catch_up_request_reads_events_the_broker_never_delivered() -> None:
    # Regression: after a Redis outage nothing later shows the gap, so the feed must be told.
    log, broker = FakeLog(), MemoryBroker()
    feed = feed_for(log, broker, last_event_id=0)
    await feed.open()
    batches = feed.batches()
    log.record(3)
    assert await collect(batches, until=3) == [1, 2, 3]
    log.record(2)  # committed while the broker was away: never published here
    broker.local.request_catch_up()
    assert await next_batch(batches) == [4, 5]
    await broker.publish(log.events[USER][3:5])  # a late copy of them is skipped
    log.record(1)
    await broker.publish(log.events[USER][5:6])
    assert await next_batch(batches) == [6]


async def test_an_overflow_during_the_replay_drops_the_queue_and_reads_the_log_instead() -> None:
    log, broker = FakeLog(), MemoryBroker()
    log.record(2 * REPLAY_PAGE + 10)
    request = StreamRequest.parse("0", None)
    feed = EventFeed(broker, log, USER, request, queue_size=16)
    await feed.open()
    batches = feed.batches()
    first = await next_batch(batches)  # the first replay page
    assert first == list(range(1, REPLAY_PAGE + 1))
    for _ in range(40):  # a writer far faster than the replay: the queue overflows
        await broker.publish(log.record(1))
    assert feed.subscription is not None
    assert feed.subscription.closed_reason is None, "a replaying consumer is not a slow consumer"
    latest = log.latest[USER]
    assert await collect(batches, until=latest) == list(range(REPLAY_PAGE + 1, latest + 1))
    log.record(1)
    await broker.publish(log.events[USER][-1:])
    assert await next_batch(batches) == [latest + 1]


async def test_an_overflow_after_the_replay_still_closes_a_slow_consumer() -> None:
    log, broker = FakeLog(), MemoryBroker()
    feed = EventFeed(broker, log, USER, StreamRequest.parse("0", None), queue_size=4)
    await feed.open()
    batches = feed.batches()
    async with anyio.create_task_group() as tasks:  # the empty replay ends; the feed waits live
        first: list[int] = []

        async def read_first() -> None:
            first.extend(await next_batch(batches))

        tasks.start_soon(read_first)
        await wait_all_tasks_blocked()  # the replay found nothing; the feed now waits on the queue
        await broker.publish(log.record(1))
    assert first == [1]
    assert feed.subscription is not None
    assert not feed.subscription.overflow_to_log
    for _ in range(6):
        await broker.publish(log.record(1))
    with pytest.raises(SubscriptionClosed, match="slow_consumer"), anyio.fail_after(1):
        await anext(batches)


async def test_a_burst_in_two_publishes_before_the_first_replay_page_does_not_close_a_fresh_stream() -> None:
    """Regression: between subscribing and the first page (while ``connected`` is sent), the queue
    was not yet in replay mode: a publish bigger than the queue, then one more, closed the stream
    as a slow consumer before it had sent anything."""
    log, broker = FakeLog(), MemoryBroker()
    feed = EventFeed(broker, log, USER, StreamRequest.parse("0", None), queue_size=16)
    await feed.open()
    await broker.publish(log.record(40))  # one publish, queued whole: more than the queue holds
    await broker.publish(log.record(1))  # the queue is over its size: this one overflows
    assert feed.subscription is not None
    assert feed.subscription.closed_reason is None
    assert await collect(feed.batches(), until=41) == list(range(1, 42))


# --- unknown types -----------------------------------------------------------------------------

KNOWN = frozenset({"order_created", "order_updated", "stock_low"})


def test_known_types_and_connection_types_are_accepted() -> None:
    request = StreamRequest.parse(None, "order_created,stock_low,error,connected,resync_required", KNOWN)
    assert request.types == frozenset({"order_created", "stock_low", "error", "connected", "resync_required"})


def test_an_unknown_type_is_refused_by_name_with_a_suggestion() -> None:
    with pytest.raises(BadStreamRequest) as refused:
        StreamRequest.parse(None, "order_create,stock_low", KNOWN)
    message = str(refused.value)
    assert message.startswith("types: ")
    assert "'order_create'" in message
    assert "did you mean 'order_created'?" in message


def test_every_unknown_type_is_named() -> None:
    with pytest.raises(BadStreamRequest, match="unknown event types 'bogus', 'nope'"):
        StreamRequest.parse(None, "nope,order_created,bogus", KNOWN)


def test_without_a_list_of_known_types_any_name_passes() -> None:
    assert StreamRequest.parse(None, "anything", None).types == frozenset({"anything"})
