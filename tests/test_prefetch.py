"""prefetch(): same items in the same order, the producer's errors in the consumer, no thread left behind."""

import gc
import subprocess
import sys
import threading
import time
import traceback

import pytest
import torch

from workbench.data.prefetch import prefetch
from workbench.data.registry import make_dataset


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "workbench-prefetch"]


def _wait_gone(timeout=5.0):
    end = time.monotonic() + timeout
    while _prefetch_threads() and time.monotonic() < end:
        time.sleep(0.01)
    return not _prefetch_threads()


def test_same_items_in_the_same_order():
    assert list(prefetch(range(100), depth=3)) == list(range(100))
    assert _wait_gone()


def test_same_tasks_as_the_plain_stream():
    sampler = make_dataset("gibbs-1d")
    plain = sampler.batches(4, seed=7)
    ahead = prefetch(sampler.batches(4, seed=7), depth=2)
    for _ in range(5):
        a, b = next(plain), next(ahead)
        assert torch.equal(a.xc, b.xc) and torch.equal(a.yt, b.yt) and torch.equal(a.mask_c, b.mask_c)
    ahead.close()
    assert _wait_gone()


def _failing(n):
    yield from range(n)
    raise KeyError("broken source")


def test_producer_error_is_raised_in_the_consumer_with_its_traceback():
    it = prefetch(_failing(3))
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(KeyError, match="broken source") as info:
        next(it)
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "_failing" in frames  # where it happened, in the producer thread
    with pytest.raises(StopIteration):
        next(it)
    assert _wait_gone()


def test_early_close_stops_the_thread_and_the_source():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    it = prefetch(endless(), depth=2)
    assert [next(it) for _ in range(5)] == list(range(5))
    it.close()
    assert _wait_gone()
    assert closed.wait(5.0)
    with pytest.raises(StopIteration):
        next(it)


def test_dropping_the_iterator_stops_the_thread():
    it = prefetch(iter(lambda: 1, None), depth=1)  # endless, and the producer blocks on a full queue
    assert next(it) == 1
    del it
    gc.collect()
    assert _wait_gone()


def test_with_block_and_bad_depth():
    with prefetch(range(10)) as it:
        assert next(it) == 0
    assert _wait_gone()
    for depth in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="depth"):
            prefetch(range(3), depth=depth)


def test_a_live_prefetcher_does_not_block_interpreter_exit():
    code = (
        "from workbench.data.prefetch import prefetch\n"
        "it = prefetch(iter(int, 1), depth=1)\n"  # endless zeros; the producer waits on a full queue
        "assert next(it) == 0\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_one_producer_thread_leaves_the_consumers_threads_alone():
    before = torch.get_num_threads()
    seen = []

    def source():
        for i in range(3):
            seen.append(torch.get_num_threads())
            yield i

    it = prefetch(source(), threads=1)
    assert list(it) == [0, 1, 2]
    assert seen == [1, 1, 1]
    assert torch.get_num_threads() == before
    assert _wait_gone()
    assert list(prefetch(range(2), threads=None)) == [0, 1]
    with pytest.raises(ValueError, match="threads"):
        prefetch(range(3), threads=0)


def test_training_with_prefetch_is_the_same_training():
    """train(prefetch=2) sees the same tasks in the same order: identical losses and weights."""
    from workbench import Experiment
    from workbench.data.registry import make_dataset
    from workbench.models import build_model
    from workbench.train import train

    exp = Experiment(dataset="gibbs-1d", relaxation="fixed-inputs", strength=0.5, width=8, depth=2)
    sampler = make_dataset("gibbs-1d")
    results = []
    for depth in (0, 2):
        torch.manual_seed(0)
        model = build_model(exp, 1, 1, sampler.box)
        history = train(model, sampler.batches(4, seed=1), 6, device="cpu", progress=False, prefetch=depth)
        results.append((history.loss, model.state_dict()))
    (loss0, w0), (loss2, w2) = results
    assert loss0 == loss2
    assert all(torch.equal(w0[k], w2[k]) for k in w0)
    assert not [t for t in threading.enumerate() if "prefetch" in t.name.lower()]
