"""The last few values computed in a process, shared by its threads."""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")

_ALL: weakref.WeakSet[RecentValues] = weakref.WeakSet()


class RecentValues(Generic[Value]):
    """The ``kept`` values last asked for, by key, computed once.

    Jobs running in the threads of one Snakemake process share them (an atlas's
    extraction plan, a filter's operator). One thread at a time computes, so
    that jobs starting together compute a value once. A child forked while
    another thread held the lock (:func:`sparseconn.workflow.jobs.in_child`)
    gets a new lock: it would otherwise wait for the old one forever.
    """

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self.lock = threading.Lock()
        self._values: OrderedDict[Hashable, Value] = OrderedDict()
        _ALL.add(self)

    def get(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        """The value kept for ``key``, or ``compute()`` kept for it."""
        with self.lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            value = self._values[key] = compute()
            while len(self._values) > self.kept:
                self._values.popitem(last=False)
            return value

    def clear(self) -> None:
        """Forget every value."""
        with self.lock:
            self._values.clear()

    def __len__(self) -> int:
        return len(self._values)


def _renew_locks() -> None:
    for values in list(_ALL):
        values.lock = threading.Lock()


os.register_at_fork(after_in_child=_renew_locks)
