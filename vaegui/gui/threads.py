"""The app's threads and torch's per-thread CPU pools.

torch's CPU thread count is per thread (see core.threads): once a second thread has run a
multi-threaded op, a second pool exists, the runtime stops spinning its threads, and training in
the worker loses about 40% of its speed. So every thread but the training worker's does its torch
work with one thread.
"""

from __future__ import annotations

import sys

from vaegui.core.threads import pin_threads

GIL_SWITCH_INTERVAL_S = 0.001


def init_threads() -> None:
    """Prepare the process's threads, at start-up (before torch is imported).

    Python's GIL switch interval drops from 5 ms to 1 ms: the decoding thread, woken by a drag,
    otherwise waits up to 5 ms for the GUI thread to let go of the GIL while it paints."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def one_torch_thread_here() -> int:
    """Give the calling thread one torch CPU thread, for good (core.threads.pin_threads);
    returns the count it had."""
    import torch

    count = torch.get_num_threads()
    pin_threads(1)
    return count
