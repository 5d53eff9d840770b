"""The last few values of a process (sparseconn.recent)."""

from __future__ import annotations

import pytest

from sparseconn.recent import RecentValues


def test_keeps_the_values_last_asked_for():
    computed = []

    def compute(key):
        computed.append(key)
        return key * 10

    values = RecentValues(2)
    assert [values.get(k, lambda k=k: compute(k)) for k in (1, 2, 1, 3)] == [
        10,
        20,
        10,
        30,
    ]
    assert computed == [1, 2, 3]  # 1 was kept
    values.get(1, lambda: compute(1))  # still kept: asked for after 2
    values.get(2, lambda: compute(2))  # 2 was the least recent: dropped for 3
    assert computed == [1, 2, 3, 2]
    assert len(values) == 2
    values.clear()
    assert len(values) == 0


def test_a_failed_computation_keeps_nothing_and_frees_the_lock():
    values = RecentValues(2)

    def fail():
        raise ValueError("too short")

    with pytest.raises(ValueError, match="too short"):
        values.get("key", fail)
    assert len(values) == 0
    assert values.get("key", lambda: 1) == 1
