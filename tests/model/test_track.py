import threading

import numpy as np
import pytest

from realtime.track import Track


def _feat(v: float) -> np.ndarray:
    return np.full(3, v, dtype=np.float32)


def test_in_order_push_and_slice_bounds():
    tr = Track((3,), capacity=10)
    for i in range(5):
        assert tr.push(float(i), _feat(i))
    ts, xs = tr.slice(1.0, 3.0)  # both ends inclusive
    np.testing.assert_array_equal(ts, [1, 2, 3])
    np.testing.assert_array_equal(xs[:, 0], [1, 2, 3])
    assert tr.newest == 4.0 and len(tr) == 5


def test_out_of_order_inserts_stay_sorted():
    tr = Track((3,), capacity=100)
    order = np.random.default_rng(0).permutation(50)
    for i in order:
        tr.push(float(i), _feat(i))
    ts, xs = tr.slice(-1, 100)
    np.testing.assert_array_equal(ts, np.arange(50))
    np.testing.assert_array_equal(xs[:, 0], np.arange(50))
    assert tr.dropped == 0


def test_capacity_bounds_memory_and_counts_evictions_and_late_drops():
    tr = Track((3,), capacity=4)
    for i in range(1000):  # many wrap-arounds of the internal storage
        tr.push(float(i), _feat(i))
    assert len(tr) == 4 and tr.evicted == 996
    np.testing.assert_array_equal(tr.slice(0, 1e9)[0], [996, 997, 998, 999])
    assert not tr.push(10.0, _feat(10))  # older than everything a full buffer holds
    assert tr.push(997.5, _feat(997.5))  # late but inside: goes to its place, evicts the oldest
    np.testing.assert_array_equal(tr.slice(0, 1e9)[0], [997, 997.5, 998, 999])
    assert not tr.push(float("nan"), _feat(0))
    assert tr.dropped == 2


def test_horizon_drops_samples_too_far_behind_the_newest():
    tr = Track((3,), capacity=100, horizon_s=2.0)
    tr.push(10.0, _feat(0))
    assert tr.push(8.5, _feat(0))
    assert not tr.push(7.9, _feat(0))
    assert tr.dropped == 1


def test_shape_is_checked():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        Track((3,), capacity=2).push(0.0, np.zeros(4))


def test_concurrent_producers_lose_nothing_within_capacity():
    tr = Track((1,), capacity=4000, dtype=np.int64)

    def produce(offset: int) -> None:
        for i in range(offset, 4000, 4):
            tr.push(float(i), np.array([i]))

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ts, xs = tr.slice(0, 4000)
    np.testing.assert_array_equal(ts, np.arange(4000))
    np.testing.assert_array_equal(xs[:, 0], np.arange(4000))
