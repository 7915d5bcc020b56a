import threading

import pytest

from declip.inference.prefetch import prefetched


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
