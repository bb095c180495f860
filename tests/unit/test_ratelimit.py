"""The rate limiter's buckets: bounded memory, constant time, least recently seen forgotten first."""

from __future__ import annotations

import secrets
import time

from app.ratelimit import TokenBucket


def test_made_up_keys_never_grow_the_bucket_past_its_bound() -> None:
    bucket = TokenBucket(rate=50, capacity=100, max_keys=1000)
    started = time.perf_counter()
    for _ in range(50_000):
        assert bucket.take(secrets.token_hex(16), now=0.0) == 0.0
    assert len(bucket) == 1000
    assert time.perf_counter() - started < 2.0  # O(1) per key: no scan of the table when it is full


def test_the_least_recently_seen_key_is_forgotten_first() -> None:
    bucket = TokenBucket(rate=1, capacity=1, max_keys=2)
    assert bucket.take("a", now=0.0) == 0.0
    assert bucket.take("b", now=0.0) == 0.0
    assert bucket.take("a", now=0.0) > 0  # a is empty, and now the most recently seen
    assert bucket.take("c", now=0.0) == 0.0  # forgets b
    assert bucket.take("a", now=0.0) > 0  # a is still remembered: still empty
    assert bucket.take("b", now=0.0) == 0.0  # b was forgotten: a full bucket again


def test_a_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2, capacity=2)
    assert bucket.take("k", now=0.0) == 0.0
    assert bucket.take("k", now=0.0) == 0.0
    assert bucket.take("k", now=0.0) == 0.5
    assert bucket.take("k", now=0.5) == 0.0
