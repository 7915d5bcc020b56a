"""Overlap file reading with computation: a background thread runs an iterator one step ahead.

libsndfile calls release the GIL, so decoding the next block proceeds while the network computes
on this one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetched(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The items of ``items`` in order, produced ``depth`` steps ahead by a background thread.
    Exceptions of the producer are raised here; closing this generator stops the producer."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            _produce()
        finally:  # stopped early: close the source here, in the thread that ran it (its files too)
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _produce() -> None:
        outcome: tuple = (_DONE, None)
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as error:  # handed to the consumer
            outcome = (_DONE, error)
        while not stop.is_set():
            try:
                ready.put(outcome, timeout=0.1)
                return
            except queue.Full:
                continue

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while True:
            item, error = ready.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        worker.join()
