"""The core's process pool (foodcast.core.pool): the per-restaurant work and the backtests' weeks."""

import threading

import pytest

from foodcast.core import pool


def _square_or_fail(item):
    if item in (7, 11):
        raise ValueError(f"item {item}")
    return item * item


def test_fan_out_keeps_the_order_and_raises_the_first_error_on_a_forked_pool_or_not(monkeypatch):
    """Forked from this process (Linux: with this test's threads too, which the workers do not
    use), else joblib's pool: the same results, in order, and the error of the first item that fails."""
    items = list(range(20))
    ok = [i for i in items if i not in (7, 11)]
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()  # another thread, idle, as MLflow's download pool in a stage
    try:
        assert pool.fan_out(_square_or_fail, ok, 2) == [i * i for i in ok]
        with pytest.raises(ValueError, match="item 7"):
            pool.fan_out(_square_or_fail, items, 2)
    finally:
        release.set()
        other.join()
    assert pool._FORKED is None  # nothing kept from the forked calls
    monkeypatch.setattr(pool, "_forkable", lambda: False)
    assert pool.fan_out(_square_or_fail, ok, 2) == [i * i for i in ok]
    with pytest.raises(ValueError, match="item 7"):
        pool.fan_out(_square_or_fail, items, 2)


@pytest.mark.parametrize("forkable", [True, False])
def test_fan_out_each_yields_the_results_before_the_first_error_in_order(monkeypatch, forkable):
    """What a backtest's progress lines read: each week's result in order, all those before a
    failing week before its error; a loop left early leaves no pool behind."""
    monkeypatch.setattr(pool, "_forkable", lambda: forkable)
    got = []
    with pytest.raises(ValueError, match="item 7"):
        for result in pool.fan_out_each(_square_or_fail, range(10), 2):
            got.append(result)
    assert got == [i * i for i in range(7)]
    each = pool.fan_out_each(_square_or_fail, range(5), 2)
    assert next(each) == 0
    each.close()
    assert pool._FORKED is None


def test_a_mapper_does_the_work_of_both(monkeypatch):
    """Another engine (Spark) set as the mapper gets every item, workers unread."""
    seen = []

    def mapper(function, items):
        seen.append(list(items))
        return [function(item) for item in items]

    before = pool.use_mapper(mapper)
    try:
        assert pool.fan_out(_square_or_fail, [1, 2], 5) == [1, 4]
        assert list(pool.fan_out_each(_square_or_fail, [3], 5)) == [9]
    finally:
        assert pool.use_mapper(before) is mapper
    assert seen == [[1, 2], [3]]


def test_workers_zero_is_every_core_and_a_negative_count_is_refused():
    assert pool.resolve_workers(0) >= 1 and pool.resolve_workers(3) == 3
    with pytest.raises(Exception, match="workers must be >= 0"):
        pool.resolve_workers(-1)
