"""Draw the next batches in a background thread while the model trains on the current one."""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

#: How long a blocked producer waits before it checks again whether the consumer has gone (seconds).
_POLL = 0.1


class _Done:
    """End of the producer's iterator."""


class _Failed:
    """The producer's iterator raised; the consumer re-raises ``error`` (its traceback attached)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _produce(source: Iterator, items: queue.Queue, stop: threading.Event, threads: int | None) -> None:
    """Pull from ``source`` into ``items`` until it ends, fails, or ``stop`` is set."""
    restore = None
    if threads is not None:
        import torch

        # torch.set_num_threads sets this thread's OpenMP team size and the default that threads
        # started later pick up; the training thread keeps its own. The default is put back at the end.
        restore = torch.get_num_threads()
        torch.set_num_threads(threads)

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    try:
        while not stop.is_set():
            try:
                item = next(source)
            except StopIteration:
                put(_Done())
                return
            except BaseException as err:  # noqa: BLE001 - handed to the consumer, which re-raises it
                put(_Failed(err))
                return
            if not put(item):
                return
    finally:
        if restore is not None:
            torch.set_num_threads(restore)
        close = getattr(source, "close", None)
        if stop.is_set() and close is not None:
            try:
                close()  # a generator's own cleanup (finally blocks) runs now, not at exit
            except Exception:  # noqa: BLE001 - nothing to report it to: the consumer has gone
                pass


def _stop_thread(stop: threading.Event, items: queue.Queue) -> None:
    """Ask the producer to stop and free a slot so a blocked ``put`` notices at once."""
    stop.set()
    try:
        while True:
            items.get_nowait()
    except queue.Empty:
        pass


class Prefetcher(Iterator[T], Generic[T]):
    """Iterator over ``source``'s items in order, read ahead by up to ``depth`` items in a daemon thread.

    ``close()`` (or dropping the last reference, or leaving a ``with`` block) stops the thread. An
    exception in ``source`` is raised here, at the item where it happened, with its traceback.
    """

    def __init__(self, source: Iterable[T], depth: int = 2, threads: int | None = None) -> None:
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise ValueError(f"prefetch depth must be an integer >= 1, got {depth!r}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ValueError(f"prefetch threads must be None or an integer >= 1, got {threads!r}")
        self._items: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        # The thread holds the queue and the event, never this object, so it can be garbage collected.
        self._thread = threading.Thread(
            target=_produce,
            args=(iter(source), self._items, self._stop, threads),
            name="workbench-prefetch",
            daemon=True,
        )
        self._finalizer = weakref.finalize(self, _stop_thread, self._stop, self._items)
        self._thread.start()

    def __iter__(self) -> Prefetcher[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        while True:
            try:
                item = self._items.get(timeout=_POLL)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._items.empty():
                    self._finished = True  # stopped by close(): nothing more will come
                    raise StopIteration from None
        if isinstance(item, _Done):
            self._finished = True
            raise StopIteration
        if isinstance(item, _Failed):
            self._finished = True
            self.close()
            raise item.error
        return item

    def close(self, timeout: float = 5.0) -> None:
        """Stop the background thread (waiting up to ``timeout`` seconds for the item it is drawing)."""
        self._finished = True
        self._finalizer()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prefetch(iterator: Iterable[T], depth: int = 2, threads: int | None = None) -> Prefetcher[T]:
    """``iterator``'s items in the same order, drawn ahead (up to ``depth``) in a background thread.

    The same items in the same order as ``iterator`` itself: one thread pulls them in turn, as the
    consumer would. A source that draws from its own generator (``sampler.batches``) gives the same
    tasks as without prefetching; one that drew from torch's global RNG would interleave its draws
    with the training thread's (fixed-input dropout) and so would not.

    ``threads``: torch intra-op threads of the background thread; ``None`` (default) leaves torch's
    setting alone. On 2 busy shared cores neither 1 nor the default was reliably faster than the
    other (``bench/results/families.json``).

    Close it (``close()``, a ``with`` block, or drop it) to stop the thread; it is a daemon, so it
    never blocks interpreter exit either.
    """
    return Prefetcher(iterator, depth, threads)
