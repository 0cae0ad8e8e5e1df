"""The one training loop every gradient-trained experiment uses (CS231n's Solver is the
model): given a model, a loss-and-gradients function over minibatch indices, an optimizer
and an evaluation, it owns epochs (and, where asked, an epoch 0 that evaluates the untrained
model), history, keep-best, early stopping, learning-rate decay, divergence and checkpoints.

Divergence: a non-finite loss, or a minibatch loss above ``explode_factor`` times
max(1, |first minibatch loss|) (1e4 by default: a loss ten thousand times its starting
value is not training), ends training with :class:`~kernelnet.errors.Diverged` naming the
epoch, step and learning rate.

Footprint: before the first step, the memory training adds to the parameters (gradient
buffers, the optimizer's state and its step's temporaries, the best state kept, the
checkpoint's copy) is estimated from the parameters' size and the optimizer
(:func:`training_bytes`) and refused with one line when over the memory limit.

Checkpoints: with ``checkpoints`` (a cell's file writer) the full state — model, optimizer
state (the decayed learning rate included), history, best state so far and the
Generator's state — is written at the end of every epoch as ``checkpoint.npz`` +
``checkpoint.json``; a trainer that finds a checkpoint with the same fingerprint continues
from it and reaches exactly the numbers of an uninterrupted run. The files are data only
(arrays read with ``allow_pickle=False``, JSON); a damaged or foreign checkpoint is ignored.
"""

from __future__ import annotations

import copy
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from kernelnet.errors import Diverged
from kernelnet.footprint import check_memory, human
from kernelnet.nn.optim import load_optimizer_state, optimizer_state

log = logging.getLogger(__name__)

CHECKPOINT_ARRAYS, CHECKPOINT = "checkpoint.npz", "checkpoint.json"
EXPLODE_FACTOR = 1e4

# Copies of the parameters alive at the peak of a step (the parameters, their gradient
# buffers, the optimizer's state and the temporaries of its update), by optimizer class:
# tracemalloc's peak in MLPClassifier.fit (20,000 inputs, hidden [640], 40 samples,
# float64, no held-out part) over the parameters' size was 3.2 (SGD), 5.1 (Momentum,
# Adagrad, RMSProp), 6.1 (Nesterov) and 7.9 (Adam), about 0.25 of it the data's copies.
STEP_COPIES = {"SGD": 3, "Momentum": 5, "Nesterov": 6, "Adagrad": 5, "RMSProp": 5, "Adam": 8}
UNKNOWN_OPTIMIZER_COPIES = 8


def training_bytes(
    parameter_bytes: float, optimizer: str, keep_best: bool, checkpoints: bool
) -> float:
    """Peak memory of training parameters of ``parameter_bytes`` with ``optimizer`` (its
    class name, e.g. "Adam"), the parameters included: the best state is one more copy,
    a checkpoint another (data and activations not included)."""
    copies = STEP_COPIES.get(optimizer, UNKNOWN_OPTIMIZER_COPIES)
    return parameter_bytes * (copies + int(keep_best) + int(checkpoints))


class Trainable(Protocol):
    params: dict[str, np.ndarray]

    def state(self) -> dict[str, np.ndarray]: ...

    def load_state(self, state: dict[str, np.ndarray]) -> None: ...


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 5
    batch_size: int = 100
    lr_decay: float = 1.0  # lr <- lr * lr_decay after every epoch
    patience: int = 0  # stop after this many epochs without a better monitored value; 0 = never
    keep_best: bool = True  # restore the state of the best monitored epoch at the end
    explode_factor: float = EXPLODE_FACTOR
    checkpoint_every: int = 1  # epochs between checkpoints (with a writer); 0 = never
    shuffle: bool = True  # a new order each epoch (False: full-batch steps in data order)
    log_epochs: bool = True  # one log line per epoch (off for thousands of full-batch steps)
    # Epoch 0: evaluate the untrained model before any update (a row with epoch 0 and no
    # loss). Opt-in: it adds a row to an experiment's table. The Generator's state is put
    # back after its evaluation, so every later number is the same with or without it;
    # keep-best and patience watch the trained epochs only (the untrained model is a
    # baseline, not a candidate).
    evaluate_first: bool = False


@dataclass
class History:
    rows: list[dict[str, float]] = field(default_factory=list)  # one per epoch
    iteration_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float = -math.inf
    stopped_early: bool = False
    resumed_from: int = 0  # the epoch a checkpoint brought training to, 0 if none


@dataclass
class Trainer:
    """Train ``model`` in place: each epoch visits every one of ``n_train`` examples once,
    in an order drawn from ``rng``, minibatch by minibatch through ``loss_and_grads``;
    after each epoch ``evaluate()`` gives metrics, and ``monitor`` (one of them, larger is
    better) drives keep-best and early stopping."""

    model: Trainable
    optimizer: Any
    loss_and_grads: Callable[[np.ndarray], tuple[float, dict[str, np.ndarray]]]
    n_train: int
    settings: TrainSettings
    rng: np.random.Generator
    evaluate: Callable[[], dict[str, float]] = dict
    monitor: str | None = None
    on_step: Callable[[int, int, int], None] | None = None  # (epoch, step, steps)
    checkpoints: Any = None  # a CellFiles writer, or None
    fingerprint: str = ""  # what a checkpoint must match (the cell's config digest)

    def _check_footprint(self) -> None:
        size = sum(p.nbytes for p in self.model.params.values())
        optimizer = type(self.optimizer).__name__
        check_memory(
            f"training {sum(p.size for p in self.model.params.values()):,} parameters "
            f"({human(size)}) with {optimizer}",
            training_bytes(
                size,
                optimizer,
                self.settings.keep_best and self.monitor is not None,
                self.checkpoints is not None and self.settings.checkpoint_every > 0,
            ),
            "use a smaller model (fewer input features or hidden units) or optimizer sgd",
        )

    def fit(self) -> History:
        s = self.settings
        self._check_footprint()
        history, best = History(), None
        first_epoch = 1
        loaded = self._load_checkpoint()
        if loaded is not None:
            history, best = loaded
            first_epoch = history.rows[-1]["epoch"] + 1 if history.rows else 1
            history.resumed_from = first_epoch - 1
            log.info("continuing from the checkpoint of epoch %d", history.resumed_from)
            if history.stopped_early:
                first_epoch = s.epochs + 1
        elif s.evaluate_first:
            history.rows.append(self._epoch_zero())
        steps = math.ceil(self.n_train / s.batch_size)
        bound = None
        for epoch in range(first_epoch, s.epochs + 1):
            started = time.perf_counter()
            order = self.rng.permutation(self.n_train) if s.shuffle else np.arange(self.n_train)
            losses = np.empty(steps)
            for step in range(steps):
                batch = order[step * s.batch_size : (step + 1) * s.batch_size]
                # overflow on the way to divergence is expected; the check below reports it
                with np.errstate(over="ignore", invalid="ignore"):
                    loss, grads = self.loss_and_grads(batch)
                if bound is None:
                    bound = s.explode_factor * max(1.0, abs(loss)) if math.isfinite(loss) else 0
                self._check(loss, bound, epoch, step + 1)
                self.optimizer.step(self.model.params, grads)
                losses[step] = loss
                if self.on_step is not None:
                    self.on_step(epoch, step + 1, steps)
            history.iteration_loss.extend(losses.tolist())
            metrics = self.evaluate()
            row = {"epoch": epoch, "loss": float(losses.mean()), **metrics}
            row |= {"lr": self.optimizer.lr, "seconds": time.perf_counter() - started}
            history.rows.append(row)
            if s.log_epochs:
                log.info("epoch %d: %s", epoch, _metrics_text(row))
            stop = False
            if self.monitor is not None:
                value = metrics[self.monitor]
                if value > history.best_value:
                    history.best_value, history.best_epoch = value, epoch
                    if s.keep_best:
                        best = self.model.state()
                elif s.patience and epoch - history.best_epoch >= s.patience:
                    history.stopped_early = stop = True
            if not stop:
                self.optimizer.lr *= s.lr_decay
            if (
                self.checkpoints is not None
                and s.checkpoint_every
                and (epoch % s.checkpoint_every == 0 or stop or epoch == s.epochs)
            ):
                self._save_checkpoint(history, best)
            if stop:
                break
        if s.keep_best and best is not None:
            self.model.load_state(best)
        return history

    def _epoch_zero(self) -> dict[str, Any]:
        """The row of the untrained model: its metrics (no loss: no step was taken), from an
        evaluation that leaves the Generator where it was."""
        started = time.perf_counter()
        saved = copy.deepcopy(self.rng.bit_generator.state)
        metrics = self.evaluate()
        self.rng.bit_generator.state = saved
        row = {"epoch": 0, "loss": None, **metrics}
        row |= {"lr": self.optimizer.lr, "seconds": time.perf_counter() - started}
        if self.settings.log_epochs:
            log.info("epoch 0 (before training): %s", _metrics_text(row))
        return row

    def _check(self, loss: float, bound: float, epoch: int, step: int) -> None:
        lr = self.optimizer.lr
        details = {"epoch": epoch, "step": step, "lr": lr, "loss": loss}
        if not math.isfinite(loss):
            raise Diverged(
                f"loss became {loss} at epoch {epoch}, step {step} with learning rate {lr:g}; "
                "try a lower learning rate",
                details,
            )
        if loss > bound:
            raise Diverged(
                f"loss exploded to {loss:.3g} (above {bound:.3g}, {self.settings.explode_factor:g}"
                f" times the first loss) at epoch {epoch}, step {step} with learning rate "
                f"{lr:g}; try a lower learning rate",
                details,
            )

    # Checkpoints: arrays first, then the JSON that names them (the commit point).
    def _save_checkpoint(self, history: History, best: dict[str, np.ndarray] | None) -> None:
        token = secrets.token_hex(8)
        hyper, optimizer_arrays = optimizer_state(self.optimizer)
        arrays = {f"model/{k}": v for k, v in self.model.state().items()}
        arrays |= {f"optimizer/{k}": v for k, v in optimizer_arrays.items()}
        arrays |= {f"best/{k}": v for k, v in (best or {}).items()}
        arrays["iteration_loss"] = np.asarray(history.iteration_loss)
        arrays["token"] = np.array(token)
        self.checkpoints.save_npz(CHECKPOINT_ARRAYS, **arrays)
        document = {
            "format": 1,
            "token": token,
            "fingerprint": self.fingerprint,
            "rows": history.rows,
            "best_epoch": history.best_epoch,
            "best_value": history.best_value if math.isfinite(history.best_value) else None,
            "stopped_early": history.stopped_early,
            "optimizer": hyper,
            "rng": self.rng.bit_generator.state,
        }
        self.checkpoints.write_json(CHECKPOINT, document)

    def _load_checkpoint(self) -> tuple[History, dict[str, np.ndarray] | None] | None:
        if self.checkpoints is None or not self.checkpoints.path(CHECKPOINT).is_file():
            return None
        try:
            document = self.checkpoints.read_json(CHECKPOINT)
            arrays = self.checkpoints.read_arrays(CHECKPOINT_ARRAYS)
            if document.get("fingerprint") != self.fingerprint:
                raise ValueError("made for other settings")
            if str(arrays["token"]) != document["token"]:
                raise ValueError("its two files do not belong together")
            model = {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}
            current = self.model.state()
            if {k: (v.shape, v.dtype) for k, v in model.items()} != {
                k: (v.shape, v.dtype) for k, v in current.items()
            }:
                raise ValueError("its parameters do not fit this model")
            optimizer = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer/")}
            best = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")} or None
            best_value = document["best_value"]
            history = History(
                rows=[dict(row) for row in document["rows"]],
                iteration_loss=arrays["iteration_loss"].tolist(),
                best_epoch=int(document["best_epoch"]),
                best_value=-math.inf if best_value is None else float(best_value),
                stopped_early=bool(document["stopped_early"]),
            )
            copy.deepcopy(self.rng.bit_generator).state = document["rng"]  # validates it
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("checkpoint ignored (%s); training starts from the beginning", exc)
            return None
        self.model.load_state(model)
        load_optimizer_state(self.optimizer, document["optimizer"], optimizer)
        self.rng.bit_generator.state = document["rng"]
        return history, best


def _metrics_text(row: dict[str, Any]) -> str:
    """``loss 0.31, train_accuracy 0.91, ...`` (values that are None left out)."""
    return ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch" and v is not None)


def discard_checkpoint(files: Any) -> None:
    """Remove a cell's checkpoint once its results are computed (its stored result takes
    the checkpoint's place)."""
    for name in (CHECKPOINT, CHECKPOINT_ARRAYS):
        files.path(name).unlink(missing_ok=True)


def accuracy(model, X: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(X) == y).mean())


def train_classifier(
    model,
    optimizer,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    settings: TrainSettings,
    rng: np.random.Generator,
    train_accuracy_sample: int = 1000,
    also_evaluate: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    **options: Any,
) -> History:
    """The :class:`Trainer` for a classifier with ``loss(X, y, train, rng)`` and
    ``predict``: rows hold the epoch's mean loss, the accuracy on a sample of
    ``train_accuracy_sample`` training examples drawn from ``rng``, and the validation
    accuracy, which is monitored. ``also_evaluate`` names more sets whose accuracy each row
    records (``{"test_accuracy": (X_test, y_test)}`` for a test curve: shown, never
    monitored, and drawing nothing from ``rng``). ``options`` go to the Trainer (on_step,
    checkpoints, fingerprint)."""
    n = X_train.shape[0]

    def loss_and_grads(batch: np.ndarray):
        return model.loss(X_train[batch], y_train[batch], train=True, rng=rng)

    def evaluate() -> dict[str, float]:
        sample = rng.choice(n, size=min(train_accuracy_sample, n), replace=False)
        metrics = {
            "train_accuracy": accuracy(model, X_train[sample], y_train[sample]),
            "val_accuracy": accuracy(model, X_val, y_val),
        }
        for name, (X, y) in (also_evaluate or {}).items():
            metrics[name] = accuracy(model, X, y)
        return metrics

    trainer = Trainer(
        model, optimizer, loss_and_grads, n, settings, rng, evaluate, "val_accuracy", **options
    )
    return trainer.fit()
