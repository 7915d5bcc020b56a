"""Overlap file reading with computation: a background thread runs an iterator one step ahead
(:func:`prefetched`), or a pool maps a function over items several at a time, in order
(:func:`ordered_map`).

libsndfile calls, large numpy copies, torch operators and CUDA waits release the GIL, so decoding
the next block proceeds while the network computes on this one, and blocks proceed side by side."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
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


def ordered_map(function: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``function(item)`` for each of ``items``, in order, computed by ``threads`` threads with at most
    ``threads`` items in flight besides the result handed out (memory stays bounded). With one
    thread, computed here, lazily. An exception is raised here at its item's turn; stopping early
    cancels the items not started and waits for the running ones."""
    if threads < 2:
        yield from map(function, items)
        return
    pending: deque = deque()
    source = iter(items)
    with ThreadPoolExecutor(threads) as pool:
        try:
            for item in source:
                pending.append(pool.submit(function, item))
                if len(pending) == threads:
                    break
            while pending:
                result = pending.popleft().result()
                item = next(source, _DONE)
                if item is not _DONE:
                    pending.append(pool.submit(function, item))
                yield result
        finally:
            for future in pending:
                future.cancel()
