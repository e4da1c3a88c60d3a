"""The training loop as an iterator of immutable :class:`Progress` snapshots.

One code path serves every caller: a test calls ``next(trainer.run())``, the CLI loops over it, and
the GUI worker thread loops over it and forwards snapshots to the main thread. Pause and stop are
flags checked every step (no event loop runs in a worker thread), so a stop takes effect within
one step and leaves the model with its last good weights.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch

from . import limits
from .checkpoint import check_images_match
from .config import THREADS_AUTO, ModelConfig, RunConfig
from .dataset_loader import ImageData
from .device import describe_device, place_images, resolve_device
from .distributed import Distributed, agree_on_step, data_parallel, rank_shard
from .errors import CheckpointError, ConfigError, DataError, TrainingError
from .evaluate import IW_DECODES, EvaluationStopped, evaluate, to_float
from .loss_history import History
from .loss import elbo_terms
from .memory import release_mapped_pages
from .model import VAE, decoder_state
from .optimizer import load_adam_state, make_adam
from .progress import EvalResult, Progress, epoch_of_step, steps_per_epoch
from .thread_governor import FixedThreads, thread_control

PAUSE_POLL_S = 0.1  # while paused, yield a snapshot this often so a consumer can do other work


class EvalMeans(NamedTuple):
    """Posterior means of the whole test set, (N, L) float32, at a training step."""

    step: int
    means: np.ndarray


def check_batch_memory(config: RunConfig, image_shape: tuple[int, int, int], n_train: int,
                       device_type: str) -> None:
    """ConfigError when a training batch, or the IWAE bound's chunk of K samples, would need more
    memory than the device has (estimated before anything is allocated)."""
    model, tc = config.model, config.train
    batch = min(tc.batch_size, n_train)
    need = model.activation_bytes(image_shape, batch)
    ok, budget = limits.fits(need, device_type)
    if not ok:
        raise ConfigError(f"batch_size: {batch:,} images of {image_shape} need about "
                          f"{limits.gib(need)} for a training step, more than the {budget} "
                          "here; use a smaller batch size or model")
    check_iw_memory(model, image_shape, tc.iw_samples, device_type)


def check_iw_memory(model: ModelConfig, image_shape: tuple[int, int, int], iw_samples: int,
                    device_type: str) -> None:
    """ConfigError when a chunk of the IWAE bound with ``iw_samples`` samples cannot fit."""
    if not iw_samples:
        return
    need = model.activation_bytes(image_shape, max(iw_samples, IW_DECODES), backward=False)
    ok, budget = limits.fits(need, device_type)
    if not ok:
        raise ConfigError(f"iw_samples: {iw_samples:,} samples of {image_shape} images need "
                          f"about {limits.gib(need)}, more than the {budget} here")


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order of the ``n`` training images in ``epoch``: a fresh generator per epoch seeded
    from (seed, epoch), so a resumed run, and every rank of a multi-process run, draws the same."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)


class _ScaledElbo(torch.nn.Module):
    """A rank's training loss terms as a module (DistributedDataParallel wraps a module's
    forward): the sums over the rank's images times ``world_size / global batch``, so that the
    average over the ranks, which the gradient all-reduce takes, is the global batch's mean."""

    def __init__(self, model: VAE):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, kl_form: str, noise: torch.Generator,
                scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        terms = elbo_terms(self.model, x, kl_form, noise)
        return terms.recon.sum() * scale, terms.kl.sum() * scale


class Trainer:
    def __init__(self, config: RunConfig, data: ImageData, *, report_interval: float = 0.1,
                 keep_test_means: bool = False, dist: Distributed | None = None):
        """``report_interval``: seconds between snapshots during an epoch (0 = after every step);
        the snapshot that closes an epoch and the final one are always yielded.
        ``keep_test_means``: keep the posterior means of each test evaluation in
        :attr:`test_means` (the app's latent map reuses them).
        ``dist``: this process's place in a multi-process run (see :mod:`.distributed`); then
        each rank trains on its share of every global batch, and only rank 0 evaluates (the
        snapshots of the other ranks carry no evaluation)."""
        if len(data.train_images) == 0 or len(data.test_images) == 0:
            raise DataError(f"{data.name}: needs at least one training and one test image "
                            f"(has {len(data.train_images)} and {len(data.test_images)})")
        self.config = config
        self.data = data
        self.report_interval = report_interval
        self.dist = dist or Distributed()
        self.device = self.dist.device(resolve_device(config.train.device))
        self.device_name = describe_device(self.device)
        tc = config.train
        self.dist.local_batch_size(tc.batch_size)  # refuses a batch that does not split evenly
        # Refuse what cannot fit before allocating any of it.
        config.model.check_size(data.image_shape)
        check_batch_memory(config, data.image_shape, len(data.train_images), self.device.type)
        # Seed a private RNG scope for the initial weights, so that building a Trainer neither
        # depends on nor disturbs the caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(tc.seed)
            self.model = VAE(config.model, data.image_shape)
        self.model.to(self.device)
        self.optimizer = make_adam(self.model.parameters(), tc.lr)
        self.noise = torch.Generator(device=self.device)  # reparameterisation noise
        self.noise.manual_seed(self.dist.noise_seed(tc.seed))
        self.step = 0
        self.history = History()
        self._train_x = place_images(data.train_images, self.device)
        self._test_x = place_images(data.test_images, self.device)
        self.steps_per_epoch = steps_per_epoch(data.train_images.shape[0], tc.batch_size)
        self.keep_test_means = keep_test_means
        self.test_means: EvalMeans | None = None  # of the last test evaluation, if kept
        self.beta = tc.beta  # may be changed while training runs (plain float: atomic to assign)
        self._stop = threading.Event()
        self._stop_agreed = False  # multi-process: every rank has agreed to stop
        self._parallel: torch.nn.Module | None = None  # the loss under DDP, made when training starts
        self._running = threading.Event()
        self._running.set()
        self._staged: tuple[torch.Tensor, torch.Tensor] | None = None  # batch buffers (_batch)
        # Whether each step's losses and gradients are checked before the weights change. On the
        # CPU the check costs no wait. On an accelerator, reading the answer would make the host
        # wait for the device at every step; there each step's answer stays on the device, the
        # answers are read at the next snapshot, and a failure restores the weights and optimiser
        # state of the last snapshot that passed (see _verify). Multi-process runs already wait
        # at every step (the ranks agree on a stop), so they check at once too.
        self.check_every_step = self.device.type == "cpu" or self.dist.enabled
        self._finite_rows: list[torch.Tensor] = []  # unchecked steps' answers (accelerators)
        self._last_good: tuple[int, dict, dict] | None = None  # (step, weights, optimiser state)

    # ---- control, callable from any thread -------------------------------------------------
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # ---- the loop ----------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.config.train.epochs * self.steps_per_epoch

    def kl_weight(self, step: int | None = None) -> float:
        """beta, ramped linearly from 0 over the warm-up steps."""
        step = self.step if step is None else step
        warmup = self.config.train.warmup_steps
        return self.beta * (min(1.0, step / warmup) if warmup else 1.0)

    def _stopping(self) -> bool:
        # Ranks stop only together (after the same step), else one would wait for the others
        # at the next gradient all-reduce.
        return self._stop_agreed if self.dist.enabled else self._stop.is_set()

    def run(self) -> Iterator[Progress]:
        tc = self.config.train
        self._stop.clear()
        self._stop_agreed = False
        if self.dist.enabled and self._parallel is None:
            # Made here, not in __init__: it talks to the other ranks (it broadcasts rank 0's
            # weights), which must not happen while a rank may still fail to start.
            self._parallel = data_parallel(_ScaledElbo(self.model), self.device)
        self._threads = self._thread_control()  # here: run() runs in the training thread
        # Each step's losses stay the 0-d tensors the step made until a snapshot turns them into
        # rows (stacking a row per step cost an op and a tensor a step).
        self._recon_rows: list[torch.Tensor] = []
        self._kl_rows: list[torch.Tensor] = []
        self._sum_rows: list[torch.Tensor] = []  # multi-process only: the ranks' mean of recon + kl
        self._row_weights: list[float] = []
        self._row_start = self.step
        self._run_start_step = self.step
        self._images = 0
        self._train_s = 0.0
        self._rate_mark = (0, 0.0)  # (images, train seconds) at the last snapshot
        last_report = time.perf_counter()
        self._last_good = None
        self._verify()  # the weights this run starts from are the first good ones
        self.model.train()
        while self.step < self.total_steps and not self._stopping():
            epoch, offset = divmod(self.step, self.steps_per_epoch)
            order = self._permutation(epoch)
            for i in range(offset, self.steps_per_epoch):
                while not self._running.is_set() and not self._stop.is_set():
                    yield self._snapshot(paused=True)
                    self._running.wait(PAUSE_POLL_S)
                if self._stopping():
                    break
                idx = order[i * tc.batch_size:(i + 1) * tc.batch_size]  # the global batch
                self._train_step(rank_shard(idx, self.dist.rank, self.dist.world_size), len(idx))
                if time.perf_counter() - last_report >= self.report_interval and i + 1 < self.steps_per_epoch:
                    last_report = time.perf_counter()
                    yield self._snapshot()
            else:
                result = None
                if self.dist.is_main:  # the others go on, and wait for it at the next step
                    result = self.evaluate_test(epoch + 1)
                    self.history.evals.append(result)
                last_report = time.perf_counter()
                yield self._snapshot(eval=result)
        final = None
        if not self._stop.is_set() and tc.iw_samples and self.history.evals and self.dist.is_main:
            try:  # thousands of importance samples take minutes: a stop must cut it short
                final = self.evaluate_test(self.history.evals[-1].epoch, iw_samples=tc.iw_samples,
                                           should_stop=self._stop.is_set)
                self.history.evals[-1] = final
            except EvaluationStopped:
                pass
        for images in (self.data.train_images, self.data.test_images):
            release_mapped_pages(images)  # a memory-mapped set's pages (see core.memory)
        yield self._snapshot(eval=final, done=True, stopped=self._stopping())

    def _thread_control(self):
        setting = self.config.train.threads
        if setting == THREADS_AUTO and (self.device.type != "cpu" or self.dist.enabled):
            # On a GPU the CPU threads only launch work; under torchrun the launcher divides
            # the cores among the ranks (OMP_NUM_THREADS): leave torch's count as it is.
            return FixedThreads(torch.get_num_threads(), lambda _: None)
        return thread_control(setting)

    def _permutation(self, epoch: int) -> torch.Tensor:
        order = epoch_permutation(self.config.train.seed, epoch, self._train_x.shape[0])
        return order.to(self._train_x.device)

    def _batch(self, idx: torch.Tensor) -> torch.Tensor:
        """The images at ``idx`` as floats in [0, 1], (B, C, H, W). Where the images already live
        on the training device, into buffers kept from step to step (a step's batch is no longer
        needed once its backward pass is done): index_select copies whole images where indexing
        went element by element, about 30 us a batch of MNIST here."""
        if self._train_x.device != self.device:  # pinned host memory -> GPU
            # Gathered into pinned memory (indexing would make a pageable copy, whose transfer
            # waits for the GPU); the caching host allocator reuses a block only once its
            # transfer is done, so this step's copy can still be in flight at the next.
            host = torch.empty((len(idx), *self._train_x.shape[1:]), dtype=self._train_x.dtype,
                               pin_memory=True)
            return to_float(torch.index_select(self._train_x, 0, idx, out=host), self.device)
        n = len(idx)
        if self._staged is None or len(self._staged[0]) < n:
            shape = (n, *self._train_x.shape[1:])
            self._staged = (torch.empty(shape, dtype=torch.uint8, device=self.device),
                            torch.empty(shape, dtype=torch.float32, device=self.device))
        images, floats = self._staged[0][:n], self._staged[1][:n]
        torch.index_select(self._train_x, 0, idx, out=images)
        return torch.div(images, 255.0, out=floats)  # the same floats as .float().div_(255)

    def _train_step(self, idx: torch.Tensor, global_batch: int) -> None:
        """One optimisation step on this rank's images ``idx`` of a global batch of
        ``global_batch`` images (the same number with one process)."""
        t0 = time.perf_counter()
        x = self._batch(idx)  # (B, C, H, W) in [0, 1]
        if self._parallel is None:
            terms = elbo_terms(self.model, x, self.config.train.kl, self.noise)
            recon, kl = terms.recon.mean(), terms.kl.mean()
        else:
            recon, kl = self._parallel(x, self.config.train.kl, self.noise,
                                       self.dist.world_size / global_batch)
        weight = self.kl_weight()
        loss = recon + weight * kl
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        recon, kl = recon.detach(), kl.detach()
        if self._parallel is not None:  # the global batch's means, and a stop agreed by all
            row, self._stop_agreed = agree_on_step(torch.stack([recon, kl, recon + kl]),
                                                   self._stop.is_set(), self.dist.world_size)
            recon, kl, loss = row[0], row[1], row[0] + weight * row[1]
            self._sum_rows.append(row[2])
            if self._stop_agreed:
                self._stop.set()  # another rank was asked to stop: this one stops as well
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        # One check covers both a non-finite loss and an overflowing gradient, before the weights
        # change: on failure the model keeps the weights of the last good step.
        finite = torch.isfinite(loss + torch.nn.utils.get_total_norm(grads))
        if not self.check_every_step:
            self._finite_rows.append(finite)
        elif not finite:
            hint = self._lr_hint()
            if not self.weights_finite():  # the previous step itself blew the weights up
                raise TrainingError(f"the weights became non-finite by {self._where(self.step + 1)}; "
                                    f"they cannot be saved. {hint}")
            raise TrainingError(f"the loss became non-finite at {self._where(self.step + 1)}; "
                                f"training stopped with the weights of step {self.step}. {hint}")
        self.optimizer.step()
        self.step += 1
        self._recon_rows.append(recon)
        self._kl_rows.append(kl)
        self._row_weights.append(weight)
        self._images += global_batch
        seconds = time.perf_counter() - t0
        self._train_s += seconds
        self._threads.record(len(idx), seconds)

    def _where(self, step: int) -> str:
        return f"step {step} (epoch {epoch_of_step(step, self.steps_per_epoch)})"

    def _lr_hint(self) -> str:
        return f"Try a lower learning rate (lr={self.config.train.lr:g})."

    def _verify(self) -> None:
        """Where steps are not checked one by one: read the unchecked steps' answers (and whether
        the weights are finite) in one wait; on a failure go back to the weights, optimiser state
        and step last verified and raise TrainingError, else keep a copy of the weights and state
        as the last good ones."""
        if self.check_every_step or (self._last_good is not None and self._last_good[0] == self.step):
            return
        weights_ok = torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all()
        answers = torch.stack([*self._finite_rows, weights_ok]).cpu()
        self._finite_rows = []
        if not bool(answers.all()):
            if self._last_good is None:  # run() starts here: weights from outside, never trained
                raise TrainingError("the weights to train are not finite")
            good = self._last_good[0]
            if answers[:-1].all():
                what = f"the weights became non-finite by {self._where(self.step)}"
            else:
                what = f"the loss became non-finite at {self._where(good + int((~answers).nonzero()[0]) + 1)}"
            self._restore_last_good()
            raise TrainingError(f"{what}; training stopped with the weights of step {good}. "
                                f"{self._lr_hint()}")
        self._last_good = (self.step,
                           {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                           _cloned(self.optimizer.state_dict()))

    def _restore_last_good(self) -> None:
        """Back to the last verified weights, optimiser state and step; the steps since are
        dropped from the loss rows as well."""
        step, weights, optimizer = self._last_good
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(_cloned(optimizer))  # the copy stays the copy
        self.step = self._row_start = step
        self._recon_rows, self._kl_rows, self._row_weights = [], [], []

    def _loss_rows(self) -> np.ndarray:
        """(n, 3) float64 rows of the steps since the last snapshot, LOSS_COLUMNS."""
        if not self._recon_rows:
            return np.zeros((0, 3))
        recon, kl = torch.stack(self._recon_rows), torch.stack(self._kl_rows)
        # recon + kl in float32, element by element: what a row per step held.
        total = torch.stack(self._sum_rows) if self._sum_rows else recon + kl
        return torch.stack([recon, kl, total], 1).cpu().numpy().astype(np.float64)

    def _snapshot(self, *, eval: EvalResult | None = None, paused: bool = False,
                  done: bool = False, stopped: bool = False) -> Progress:
        self._verify()
        losses = self._loss_rows()
        steps = np.arange(self._row_start + 1, self._row_start + 1 + len(losses))
        weights = np.asarray(self._row_weights, dtype=np.float64)
        self.history.append(steps, losses, weights)
        self._recon_rows, self._kl_rows, self._sum_rows = [], [], []
        self._row_weights, self._row_start = [], self.step
        # Throughput over the training time since the last snapshot (evaluations and pauses
        # excluded); the run's average when no step ran since (e.g. while paused).
        img_last, s_last = self._rate_mark
        if self._train_s > s_last:
            rate = (self._images - img_last) / (self._train_s - s_last)
        else:
            rate = self._images / self._train_s if self._train_s > 0 else 0.0
        self._rate_mark = (self._images, self._train_s)
        steps_run = self.step - self._run_start_step
        left = None
        if rate > 0 and steps_run:
            left = (self.total_steps - self.step) * (self._images / steps_run) / rate
        return Progress(
            step=self.step, total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
            epochs=self.config.train.epochs, new_steps=steps, new_losses=losses,
            new_kl_weights=weights,
            kl_weight=self.kl_weight(), images_per_s=rate, images_seen=self._images,
            train_seconds=self._train_s, seconds_left=left, device=self.device_name,
            eval=eval, paused=paused, done=done, stopped=stopped, threads=self._threads.threads)

    # ---- evaluation and state ------------------------------------------------------------
    def weights_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.model.parameters())

    def evaluate_test(self, epoch: int, iw_samples: int = 0, should_stop=None) -> EvalResult:
        """Evaluate on the test set (keeping its posterior means if asked to); ``should_stop``
        as in :func:`.evaluate.evaluate`."""
        self._verify()  # never evaluate weights a failed step has spoiled
        means = None
        if self.keep_test_means:
            # A new array every time, never refilled: a consumer on another thread may hold the last.
            means = np.empty((self._test_x.shape[0], self.model.latent_dim), dtype=np.float32)
        result = evaluate(self.model, self._test_x, epoch=epoch, step=self.step,
                          iw_samples=iw_samples, seed=self.config.train.seed, means_out=means,
                          should_stop=should_stop)
        if means is not None:
            self.test_means = EvalMeans(self.step, means)
        return result

    def decoder_state(self) -> dict[str, torch.Tensor]:
        return decoder_state(self.model)

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (see :mod:`.checkpoint`): plain containers and tensors."""
        return {
            # beta as in force now (it may have been changed while training ran)
            "config": self.config.replace(train={"beta": self.beta}).to_dict(),
            "dataset": {"name": self.data.name, "image_shape": list(self.data.image_shape),
                        "class_names": list(self.data.class_names)},
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.step // self.steps_per_epoch,
            "history": self.history.to_dict(),
            "rng": {"device_type": self.device.type, "noise": self.noise.get_state()},
        }

    def load_state_dict(self, state: dict[str, Any], path: str = "<checkpoint>") -> None:
        """Restore weights, optimizer, step, history and RNG from a checkpoint that
        :func:`.checkpoint.load_checkpoint` validated. The learning rate is this trainer's
        (a resumed run may change it); everything else comes from the checkpoint."""
        check_images_match(path, state["dataset"]["image_shape"], self.data.image_shape)
        try:
            self.model.load_state_dict(state["model"])
            load_adam_state(self.optimizer, state["optimizer"])  # keeps this run's lr
            if state["rng"].get("device_type") == self.device.type and self.dist.is_main:
                self.noise.set_state(state["rng"]["noise"])
            elif self.dist.enabled:  # the checkpoint holds rank 0's noise only
                self.noise.manual_seed(self.dist.noise_seed(self.config.train.seed, int(state["step"])))
            else:  # generator states are per device type: reseed, reproducibly, from the step
                self.noise.manual_seed(self.config.train.seed + int(state["step"]))
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(path, f"its weights or state do not fit the model: "
                                        f"{' '.join(str(exc).split())[:200]}") from None
        self.step = int(state["step"])
        self.history = History.from_dict(state["history"])


def _cloned(state: Any) -> Any:
    """A deep copy of an optimiser state dict's tensors (its plain values are shared)."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {k: _cloned(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_cloned(v) for v in state]
    return state
