import threading

import pytest

from declip.inference.prefetch import ordered_map, prefetched


def test_prefetched_keeps_order_and_runs_ahead_in_another_thread():
    threads = set()

    def items():
        for i in range(50):
            threads.add(threading.get_ident())
            yield i

    assert list(prefetched(items(), depth=2)) == list(range(50))
    assert threads and threading.get_ident() not in threads


def test_producer_errors_reach_the_consumer_after_the_good_items():
    def items():
        yield 1
        raise ValueError("broken block")

    got = []
    with pytest.raises(ValueError, match="broken block"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1]


def test_closing_early_stops_the_producer():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    gen = prefetched(items())
    assert next(gen) == 0
    gen.close()  # joins the producer
    assert len(produced) < 10


def test_ordered_map_keeps_order_and_bounds_what_is_in_flight():
    import time

    running, most = set(), [0]
    lock = threading.Lock()

    def work(i):
        with lock:
            running.add(i)
            most[0] = max(most[0], len(running))
        time.sleep(0.002 * (i % 3))  # finish out of order
        with lock:
            running.discard(i)
        return i * i, threading.get_ident()

    results = list(ordered_map(work, range(30), threads=4))
    assert [r for r, _ in results] == [i * i for i in range(30)]
    assert 1 < most[0] <= 4 and threading.get_ident() not in {t for _, t in results}


def test_ordered_map_raises_at_the_failing_item_and_stops_early():
    started = []

    def work(i):
        started.append(i)
        if i == 3:
            raise ValueError("bad block 3")
        return i

    got = []
    with pytest.raises(ValueError, match="bad block 3"):
        for item in ordered_map(work, range(100), threads=2):
            got.append(item)
    assert got == [0, 1, 2] and len(started) < 10


def test_ordered_map_with_one_thread_computes_here_lazily():
    seen = []
    gen = ordered_map(lambda i: seen.append(threading.get_ident()) or i, range(5), threads=1)
    assert next(gen) == 0 and seen == [threading.get_ident()]
