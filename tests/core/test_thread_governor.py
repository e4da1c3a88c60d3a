"""Training threads: the governor's choices on made-up step rates, pinning a thread's torch count,
one OpenMP pool per process, and the count living in the training thread only."""

import itertools
import os
import subprocess
import sys
import textwrap
import threading

import pytest
import torch

from vaegui.core import thread_governor as threads
from vaegui.core.config import RunConfig, TrainConfig
from vaegui.core.errors import ConfigError
from vaegui.core.thread_governor import ThreadGovernor, ladder
from vaegui.core.trainer import Trainer

from core_helpers import tiny_config, tiny_data

BATCH = 128
# images/s of the reference MLP on 2 cores, as measured for issue 11.
QUIET = {1: 14_500, 2: 20_000}
BUSY = {1: 15_100, 2: 7_500}


class Machine:
    """Feeds a governor steps whose duration follows a table of rates per thread count, which may
    change at given training times; records the count each step ran with."""

    def __init__(self, top=2, **kwargs):
        self.applied = []
        self.governor = ThreadGovernor(top, self.applied.append, **kwargs)
        self.clock = 0.0  # training seconds
        self.images = 0

    def run(self, seconds, rates):
        end = self.clock + seconds
        while self.clock < end:
            step = BATCH / rates[self.governor.threads]
            self.governor.record(BATCH, step)
            self.clock += step
            self.images += BATCH
        return self


def throughput(machine_seconds, rates, **kwargs):
    m = Machine(**kwargs).run(machine_seconds, rates)
    return m.images / m.clock


def test_ladder():
    assert ladder(1) == [1]
    assert ladder(2) == [1, 2]
    assert ladder(6) == [1, 2, 4, 6]
    assert ladder(16) == [1, 2, 4, 8, 16]


def test_starts_at_one_thread_and_moves_to_more_on_a_quiet_machine():
    m = Machine()
    assert m.applied == [1]
    m.run(10, QUIET)
    assert m.governor.threads == 2 and m.applied[:2] == [1, 2]
    assert set(m.applied[2:]) <= {1, 2} and m.applied[-1] == 2  # early probes come back to 2
    assert throughput(30, QUIET) >= 0.97 * QUIET[2]


def test_a_first_probe_spoiled_by_a_burst_is_corrected_within_seconds():
    m = Machine().run(0.7, BUSY)  # another program's burst during the first probe
    assert m.governor.threads == 1
    m.run(4, QUIET)
    assert m.governor.threads == 2


def test_beside_a_busy_process_it_settles_on_fewer_threads():
    m = Machine().run(10, BUSY)
    assert m.governor.threads == 1 and m.applied[:3] == [1, 2, 1]
    assert throughput(30, BUSY) >= 0.95 * BUSY[1]
    assert throughput(30, BUSY) >= 1.5 * BUSY[2]  # the target against torch's default


def test_a_count_far_slower_than_one_probed_before_is_cut_short():
    torch_beside_torch = {1: 9_400, 2: 1_000}  # beside another 2-thread torch process
    m = Machine()
    seen = []
    while m.governor.probing:
        seen.append(m.governor.threads)
        m.run(1e-9, torch_beside_torch)  # one step
    assert seen.count(2) == 1  # the step that starts the pool, already far too slow
    assert m.governor.threads == 1
    assert throughput(30, torch_beside_torch) >= 0.95 * 9_400


def test_a_drop_in_rate_makes_it_probe_at_once():
    m = Machine(reprobe_s=1000).run(5, QUIET)
    assert m.governor.threads == 2
    probes = m.governor.probes
    m.run(2, BUSY)  # a busy process starts: 2 threads fall to 7,500 images/s
    assert m.governor.probes == probes + 1
    assert m.governor.threads == 1


def test_it_probes_again_from_time_to_time():
    m = Machine(reprobe_s=5).run(4, BUSY)
    assert m.governor.threads == 1
    m.run(6, QUIET)  # the busy process ended: one thread is no slower, so only a probe finds 2
    assert m.governor.threads == 2


def test_near_ties_keep_the_count_in_use():
    m = Machine().run(10, {1: 20_300, 2: 20_000})
    assert m.governor.threads == 1 and m.applied[:3] == [1, 2, 1]
    m, held = Machine(reprobe_s=3), set()
    while m.clock < 10:
        if not m.governor.probing:
            held.add(m.governor.threads)
        m.run(1e-9, {1: 20_000, 2: 20_300})  # one step
    assert held == {1} and m.governor.probes >= 3  # 2 was never more than MARGIN faster


def test_many_cores_are_probed_along_the_ladder():
    rates = {1: 10_000, 2: 19_000, 4: 30_000, 8: 26_000, 16: 12_000}
    m = Machine(top=16).run(20, rates)
    assert m.governor.threads == 4
    assert m.applied[:6] == [1, 2, 4, 8, 16, 4]
    assert throughput(60, rates, top=16) >= 0.95 * rates[4]


def test_one_cpu_means_one_thread_and_no_probing():
    m = Machine(top=1).run(30, {1: 1000})
    assert m.applied == [1] and m.governor.probes == 1 and not m.governor.probing


def test_settings_refuse_bad_counts():
    assert TrainConfig().threads == "auto"
    assert TrainConfig(threads=3).threads == 3
    for bad, needle in ((0, "out of range"), (10**6, "out of range"), ("four", "not auto"),
                        (2.5, "not auto"), (True, "not auto")):
        with pytest.raises(ConfigError, match=needle):
            TrainConfig(threads=bad)
    assert RunConfig.from_dict(RunConfig(train=TrainConfig(threads=2)).to_dict()).train.threads == 2
    old = RunConfig().to_dict()
    del old["train"]["threads"]  # a checkpoint saved before the setting existed
    assert RunConfig.from_dict(old).train.threads == "auto"


# ---- real torch threads --------------------------------------------------------------------
def in_thread(fn):
    result = {}
    t = threading.Thread(target=lambda: result.update(value=fn()))
    t.start()
    t.join()
    return result["value"]


def test_set_num_threads_before_a_threads_first_op_is_overridden_by_another_thread():
    """The torch behaviour pin_threads guards against (ATen/ParallelOpenMP.cpp): a count set by
    another thread reaches a thread that torch has not initialised yet."""
    set_only, pinned, other_done = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def naive():
        torch.set_num_threads(1)
        set_only.set()
        other_done.wait()
        seen["naive"] = torch.get_num_threads()

    def careful():
        threads.pin_threads(1)
        pinned.set()
        other_done.wait()
        seen["pinned"] = torch.get_num_threads()

    workers = [threading.Thread(target=naive), threading.Thread(target=careful)]
    for w in workers:
        w.start()
    set_only.wait(), pinned.wait()
    in_thread(lambda: threads.pin_threads(3))
    other_done.set()
    for w in workers:
        w.join()
    assert seen == {"naive": 3, "pinned": 1}


def test_the_count_is_set_in_the_training_thread_only(monkeypatch):
    before = torch.get_num_threads()
    config = tiny_config(epochs=1, threads=3)
    data = tiny_data(config)

    def train():
        last = list(Trainer(config, data).run())[-1]
        return last.threads, torch.get_num_threads()

    assert in_thread(train) == (3, 3)
    assert torch.get_num_threads() == before

    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    applied = []
    monkeypatch.setattr(threads, "pin_threads", applied.append)
    last = in_thread(lambda: list(Trainer(tiny_config(epochs=1), data).run())[-1])
    assert applied[0] == 1 and last.threads in (1, 2)  # auto: the governor starts at one


def test_auto_on_a_gpu_leaves_the_count_alone(monkeypatch):
    applied = []
    monkeypatch.setattr(threads, "pin_threads", applied.append)
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    config = tiny_config(epochs=1)
    trainer = Trainer(config, tiny_data(config))
    monkeypatch.setattr(trainer, "device", torch.device("meta"))  # anything but the CPU
    assert trainer._thread_control().threads == torch.get_num_threads() and applied == []


POOLS = textwrap.dedent("""
    import os, threading, torch
    from vaegui.core.thread_governor import pin_threads

    def tasks():
        return len(os.listdir("/proc/self/task"))

    def work():
        x = torch.randn(512, 512)
        for _ in range(20):
            x = torch.tanh(x @ x)

    def grown_by(fn):  # OS threads that fn leaves running (an OpenMP pool outlives its op)
        before = tasks()
        fn()
        return tasks() - before

    pin_threads(1)  # the GUI thread, as the app sets it
    work()
    ready, trained, done = threading.Event(), threading.Event(), threading.Event()
    grown = {}

    def early():  # started before training sets its count, like the explorer's decoder
        EARLY
        ready.set()
        trained.wait()
        grown["early"] = grown_by(work)
        done.wait()

    def training():
        pin_threads(3)
        grown["training"] = grown_by(work)
        trained.set()
        done.wait()

    helpers = [threading.Thread(target=early), threading.Thread(target=training)]
    helpers[0].start()
    ready.wait()
    helpers[1].start()
    trained.wait()
    while "early" not in grown:
        threading.Event().wait(0.01)
    grown["main"] = grown_by(work)  # the main thread again, after training set 3
    done.set()
    for h in helpers:
        h.join()
    print(grown["training"], grown["early"], grown["main"])
""")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
@pytest.mark.parametrize("early,grown", [
    ("pin_threads(1)", "2 0 0"),  # training's pool of 2 helpers, and no other pool
    ("torch.set_num_threads(1)", "2 2 0"),  # set alone: it adopts training's 3, a second pool
])
def test_only_the_training_thread_runs_an_openmp_pool(early, grown):
    script = POOLS.replace("EARLY", early)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OMP_NUM_THREADS": "4"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == grown


def test_only_a_count_s_first_use_goes_unmeasured():
    """The first step at a new count starts its pool and is not measured (unless far too slow,
    below); a later probe of that count is measured from its first step, so that beside a busy
    process a re-probe of a slow count costs one slow step, not two."""
    steps = []
    governor = ThreadGovernor(2, lambda count: None, window_s=0.3)
    rates = {1: 15_000, 2: 7_000}  # 2 threads half as fast as 1: above SETTLE_CUT, below CUT
    clock = 0.0
    while governor.probes < 3 and clock < 60:
        count = governor.threads
        step = BATCH / rates[count]
        governor.record(BATCH, step)
        steps.append(count)
        clock += step
    runs = [len(list(group)) for key, group in itertools.groupby(steps) if key == 2]
    assert runs[0] == 2  # the first probe of 2 threads: one step to start the pool, one measured
    assert all(n == 1 for n in runs[1:]) and len(runs) >= 2  # re-probes: cut after one step
    assert governor.threads == 1


def test_on_a_quiet_machine_a_re_probe_of_fewer_threads_costs_one_step():
    """1 thread runs at about 0.7 of 2 on a quiet machine: below the cut, so each re-probe of it
    ends after a step instead of spending a whole window slower."""
    m = Machine()
    steps = []
    while m.clock < 30:
        steps.append(m.governor.threads)
        m.run(1e-9, QUIET)  # one step
    runs = [len(list(group)) for key, group in itertools.groupby(steps) if key == 1]
    assert runs[0] > 10  # the first probe: a whole (short) window at 1 thread
    assert len(runs) >= 4 and all(n == 1 for n in runs[1:])  # every re-probe: one step
    assert m.governor.threads == 2


def test_the_first_probe_costs_a_short_run_about_one_percent_on_a_quiet_machine():
    """threads.py's runs train for about 3 s: a first window of WINDOW_S at 1 thread cost them
    3-4%, the first probe's shorter one about 1%."""
    one_thread_s = 0.0
    m = Machine()
    while m.governor.probes == 1:
        if m.governor.threads == 1:
            one_thread_s += BATCH / QUIET[1]
        m.run(1e-9, QUIET)  # one step
    assert threads.FIRST_WINDOW_S <= one_thread_s < threads.FIRST_WINDOW_S + 2 * BATCH / QUIET[1]
    assert throughput(3, QUIET) >= 0.985 * QUIET[2]
    assert throughput(3, QUIET, first_window_s=threads.WINDOW_S) < 0.975 * QUIET[2]


def test_a_first_step_slowed_by_starting_its_pool_does_not_end_the_probe():
    """The first 2-thread step was up to 1.7 times as slow as a 1-thread step here while the pool
    started, on a quiet machine where 2 threads then ran 1.4 times as fast: the probe goes on."""
    governor = ThreadGovernor(2, lambda count: None)
    while governor.threads == 1:
        governor.record(BATCH, BATCH / QUIET[1])
    governor.record(BATCH, 1.7 * BATCH / QUIET[1])  # the pool's first step
    assert governor.threads == 2 and governor.probing
    while governor.probing:
        governor.record(BATCH, BATCH / QUIET[2])
    assert governor.threads == 2
