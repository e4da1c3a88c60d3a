"""The app's threads and torch's per-thread CPU pools.

torch's CPU thread count is per thread (see core.thread_governor): once a second thread has run a
multi-threaded op, a second pool exists, the runtime stops spinning its threads, and training in
the worker loses about 40% of its speed. So every thread but the training worker's does its torch
work with one thread.
"""

from __future__ import annotations

import os
import sys
import threading

from vaegui.core.thread_governor import pin_threads

GIL_SWITCH_INTERVAL_S = 0.001


def init_threads() -> None:
    """Prepare the process's threads, at start-up (before torch is imported).

    Python's GIL switch interval drops from 5 ms to 1 ms: the decoding thread, woken by a drag,
    otherwise waits up to 5 ms for the GUI thread to let go of the GIL while it paints."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def one_torch_thread_here() -> int:
    """Give the calling thread one torch CPU thread, for good (core.thread_governor.pin_threads);
    returns the count it had."""
    import torch

    count = torch.get_num_threads()
    pin_threads(1)
    return count


# How much lower the training thread (and the OpenMP threads it starts, which inherit it) runs
# than the window's threads: on a 2-core machine its threads fill both cores, and a decode or a
# paint the user is waiting for should not wait for a time slice behind them.
TRAINING_NICE = 5


def yield_to_the_window() -> None:
    """Run the calling thread TRAINING_NICE below the process's main thread (Linux: threads have
    their own nice value); call it before the thread starts its torch thread pool. Calling it
    again changes nothing; where the system cannot, nothing changes."""
    if not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        window = os.getpriority(os.PRIO_PROCESS, os.getpid())  # the main (GUI) thread's
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, window + TRAINING_NICE))
    except OSError:
        pass
