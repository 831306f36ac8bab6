"""Widget updates run on the kernel's main thread, whoever asks for them.

A training thread that creates or changes widgets directly races the kernel's own message handling
(comm messages from two threads, views built while the page is still starting up). Instead it posts
the change here: inside a kernel the change is queued and the kernel's event loop runs it on the main
thread; outside one (a script, the tests) it runs at once. ``drain()`` runs whatever is queued, so a
thread waiting for training on the main thread can apply every pending update before it returns.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

_queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def capture_loop() -> None:
    """Remember the kernel's event loop (call on the main thread, e.g. when a widget is built)."""
    global _loop
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        _loop = asyncio.get_running_loop()
    except RuntimeError:  # no running loop: a plain script or the tests; updates run in place
        _loop = None


def on_main(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` on the main thread: now when called there, else through the kernel's loop."""
    loop = _loop
    if threading.current_thread() is threading.main_thread() or loop is None or loop.is_closed():
        fn(*args)
        return
    with _lock:
        _queue.append((fn, args))
    try:
        loop.call_soon_threadsafe(drain)
    except RuntimeError:  # the loop has gone (kernel shutting down): apply it here, it is all we can do
        drain()


def drain() -> None:
    """Run every queued update, oldest first; one failing update does not drop the others."""
    while True:
        with _lock:
            if not _queue:
                return
            fn, args = _queue.popleft()
        try:
            fn(*args)
        except Exception:  # a UI update has nobody to raise to: print it where the kernel logs go
            traceback.print_exc()
