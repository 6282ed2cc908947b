"""The one LightningModule every family shares.

batch -> :class:`AtomicGraph` (edge vectors from positions, cell shifts and a strain) -> the
family's network -> per-atom energies -> structure energy plus per-element reference energies
and the per-atom scale and shift of the training statistics. Forces are ``-dE/dr`` and stress is
``(1/V) dE/dε`` by autograd. Every target has a loss (weighted sum) and MAE/RMSE metrics logged
as ``train/<target>_mae`` and ``val/<target>_mae`` (energy also per atom).

Metrics and epoch losses are sums kept on the device (:class:`EpochSums`): a step adds to them
in place, without a host synchronisation or a logging call per quantity, and they are logged
once, at the end of the split's epoch (reduced over ranks there). On molecules of a few atoms a
step is short enough that a dozen ``self.log`` calls and metric objects a step were a visible
share of it.

Precision: reference energies are kept and added in float64. The network predicts the residual
``E - sum(E0)``, which is what is compared with the label's residual in the loss, so float32
models lose nothing to energies of hundreds of eV.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass
from typing import Any, cast

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Batch

from .. import keys as K
from .._logging import get_logger
from .._version import __version__
from ..config.model import ModelConfig
from ..data.graphs import ElementMapping
from ..data.statistics import DatasetStatistics
from ..errors import ConfigError
from ..nn.builder import torch_dtype
from ..nn.graph import AtomicGraph, OutputSpec
from ..targets import MIN_VARIANCE, Energy, Forces, Pair, Readout, Stress, Target, build_targets
from .compiled import CompiledTrainingStep, attach_gradients
from .losses import loss_function

__all__ = ["AtomisticLightningModule", "EpochSums", "Predictions"]

_log = get_logger(__name__)
CHECKPOINT_KEY = "physicsml_like"
VARIANCE_SUFFIX = "__variance"  # predict_step's key for a target's variance
_FLOAT_INPUTS = (K.POSITIONS, K.CELL, K.CELL_SHIFT, K.NODE_ATTRS, K.EDGE_ATTRS, K.GRAPH_ATTRS)


class EpochSums:
    """Running sums of one split's logged means over an epoch, as one float64 tensor on the
    batch's device.

    Each quantity is a ratio ``sum(numerator) / sum(weight)`` (a mean weighted by batch size,
    an MAE over components) or its square root (an RMSE). :meth:`add` puts a step's numerators
    into the tensor with one in-place ``index_add_`` (no host synchronisation); the weights are
    Python numbers. :meth:`means` reads the ratios once, after summing over ranks.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.sums: torch.Tensor | None = None
        self.weights: list[float] = []
        self.slots: dict[str, int] = {}
        self.rooted: set[str] = set()
        self._index: dict[tuple[str, ...], torch.Tensor] = {}

    def __bool__(self) -> bool:
        return bool(self.slots)

    def add(self, names: tuple[str, ...], numerators: list[torch.Tensor], weights: list[float], rooted: tuple[str, ...] = ()) -> None:
        """Add a step's numerators (scalar tensors) and weights to the quantities ``names``."""
        if not names:
            return
        index = self._index.get(names)
        if index is None or self.sums is None:
            for name in names:
                if name not in self.slots:
                    self.slots[name] = len(self.slots)
                    self.weights.append(0.0)
            self.rooted.update(rooted)
            device = numerators[0].device
            grown = torch.zeros(len(self.slots), dtype=torch.float64, device=device)
            if self.sums is not None:
                grown[: len(self.sums)] = self.sums
            self.sums = grown
            index = self._index[names] = torch.tensor([self.slots[n] for n in names], device=device)
        self.sums.index_add_(0, index, torch.stack(numerators).detach().to(torch.float64))
        for name, weight in zip(names, weights, strict=True):
            self.weights[self.slots[name]] += weight

    def means(self, reduce: Any = None) -> dict[str, torch.Tensor]:
        """Every quantity's mean (``reduce``: sums a tensor over ranks), then empties the sums."""
        if self.sums is None:
            return {}
        both = torch.cat([self.sums, torch.tensor(self.weights, dtype=torch.float64, device=self.sums.device)])
        if reduce is not None:
            both = reduce(both)
        sums, weights = both[: len(self.slots)], both[len(self.slots) :]
        ratios = sums / weights.clamp_min(1e-300)
        out = {name: ratios[slot].sqrt() if name in self.rooted else ratios[slot] for name, slot in self.slots.items()}
        self.clear()
        return out


@dataclass
class Predictions:
    """What :meth:`AtomisticLightningModule.compute` returns for a batch.

    values: target name -> prediction in the model dtype (graph scalars without their offset).
    offsets: graph scalar name -> float64 constant to add (per-element reference energies), so a
        graph scalar's prediction is ``values + offsets``; kept apart for float32 precision.
    variances: target name -> predicted variance (mean-variance models), same shape as the value.
    """

    values: dict[str, torch.Tensor]
    offsets: dict[str, torch.Tensor]
    variances: dict[str, torch.Tensor]


class AtomisticLightningModule(L.LightningModule):
    """Training, validation, test and prediction of any family's network.

    Parameters
    ----------
    network: the family's :class:`~physicsml_like.nn.graph.AtomisticNetwork`.
    config: the model config (targets, losses, optimiser, scheduler, forces/stress, dtype).
    statistics: training statistics (reference energies, scales).
    element_mapping: one-hot slots of the elements.
    spec: the heads the network was built with.
    """

    def __init__(
        self,
        network: nn.Module,
        config: ModelConfig,
        statistics: DatasetStatistics,
        element_mapping: ElementMapping,
        spec: OutputSpec,
    ) -> None:
        super().__init__()
        self.network = network
        self.config = config
        self.statistics = statistics
        self.element_mapping = element_mapping
        self.spec = spec
        self.model_dtype = torch_dtype(config.model_dtype)
        self.has_validation = False  # set by the wrapper before fitting (default monitors)
        self.targets = nn.ModuleList(build_targets(config, statistics, element_mapping))
        self.epoch_sums = {split: EpochSums() for split in ("train", "val", "test")}
        self.compiled_step = CompiledTrainingStep(self) if config.compile_training else None
        if self.compiled_step is not None:
            self._check_compilable()

    def _check_compilable(self) -> None:
        """``compile_training`` compiles the base training step of the network's weights."""
        if type(self).training_step is not AtomisticLightningModule.training_step:  # a registered module
            raise ConfigError(f"compile_training: {type(self).__name__} has its own training step, which is not "
                              "compiled; set compile_training=False")
        defect = getattr(self.network, "compiled_training_defect", None)
        if defect:
            raise ConfigError(f"compile_training is refused for {type(self.network).__name__}: {defect}; "
                              "set compile_training=False")
        outside = [name for name, p in self.named_parameters() if p.requires_grad and not name.startswith("network.")]
        if outside:
            raise ConfigError(f"compile_training: trainable weights outside the network ({', '.join(outside[:3])}) "
                              "are not compiled; set compile_training=False")

    # ------------------------------------------------------------------ targets
    @property
    def all_targets(self) -> list[Target]:
        """Every target the model predicts (see :mod:`physicsml_like.targets`)."""
        return cast(list[Target], list(self.targets))

    @property
    def labelled_targets(self) -> list[Target]:
        """The targets with labels: those the loss and the metrics compare."""
        return [t for t in self.all_targets if t.labelled]

    def target(self, name: str) -> Target:
        """The target called ``name``."""
        for target in self.all_targets:
            if target.name == name:
                return target
        raise KeyError(f"no target {name!r}; targets are {[t.name for t in self.all_targets]}")

    @property
    def energy_target(self) -> Energy | None:
        return next((t for t in self.all_targets if isinstance(t, Energy)), None)

    @property
    def losses(self) -> dict[str, Any]:
        return self.config.resolved_losses()

    def inference_network(self) -> nn.Module:
        """The network used for validation, test and prediction (an EMA copy in subclasses)."""
        return self.network

    # ------------------------------------------------------------------ forward
    def _graph(self, batch: Batch, want_forces: bool, want_stress: bool) -> tuple[AtomicGraph, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Inputs of the network; positions (and a zero strain) set up for autograd."""
        dtype = self.model_dtype
        positions = batch[K.POSITIONS].to(dtype)
        cell = batch[K.CELL].to(dtype).reshape(-1, 3, 3)
        node_graph = batch[K.BATCH]
        if want_forces or want_stress:
            positions = positions.detach().requires_grad_(True)
        displacement = None
        strained_positions, strained_cell = positions, cell
        if want_stress:
            displacement = torch.zeros_like(cell).requires_grad_(True)
            symmetric = 0.5 * (displacement + displacement.transpose(1, 2))
            strained_positions = positions + torch.einsum("ni,nij->nj", positions, symmetric[node_graph])
            strained_cell = cell + torch.bmm(cell, symmetric)
        i, j = batch[K.EDGE_INDEX]
        shifts = torch.einsum("ek,ekl->el", batch[K.CELL_SHIFT].to(dtype), strained_cell[node_graph[i]])
        edge_vectors = strained_positions[j] - strained_positions[i] + shifts
        graph = AtomicGraph(
            node_attrs=batch[K.NODE_ATTRS].to(dtype),
            species=batch[K.SPECIES],
            positions=strained_positions,
            edge_index=batch[K.EDGE_INDEX],
            edge_vectors=edge_vectors,
            edge_lengths=torch.linalg.norm(edge_vectors, dim=-1),
            batch=node_graph,
            num_graphs=int(batch.num_graphs),
            edge_attrs=batch[K.EDGE_ATTRS].to(dtype) if K.EDGE_ATTRS in batch else None,
            graph_attrs=batch[K.GRAPH_ATTRS].to(dtype) if K.GRAPH_ATTRS in batch else None,
        )
        return graph, positions, displacement, strained_cell

    def compute(self, batch: Batch, network: nn.Module | None = None, *, create_graph: bool = False) -> Predictions:
        """Predictions for a batch (see :class:`Predictions`): each target reads the network's
        outputs; forces and stress are then the energy's derivatives."""
        network = network if network is not None else self.network
        derivatives = [t for t in self.all_targets if t.is_derivative]
        want_forces = any(isinstance(t, Forces) for t in derivatives)
        want_stress = any(isinstance(t, Stress) for t in derivatives)
        graph, positions, displacement, cell = self._graph(batch, want_forces, want_stress)
        readout = Readout(network(graph), graph, type(network).__name__)
        out = Predictions({}, {}, {})
        for target in self.all_targets:
            if target.is_derivative:
                continue
            out.values[target.name] = target.readout(readout)
            offset = target.offset(readout)
            if offset is not None:
                out.offsets[target.name] = offset
            variance = target.variance(readout)
            if variance is not None:
                out.variances[target.name] = variance
        if derivatives:
            self._derivatives(out, derivatives, positions, displacement, cell, batch, create_graph)
        return out

    def _derivatives(
        self, out: Predictions, derivatives: list[Target], positions: torch.Tensor, displacement: torch.Tensor | None,
        cell: torch.Tensor, batch: Batch, create_graph: bool,
    ) -> None:
        """Forces ``-dE/dr`` and stress ``(1/V) dE/dε`` from one gradient of the energy."""
        energy = self.energy_target
        assert energy is not None, "forces and stress need an energy target (checked by the config)"
        inputs = [positions] + ([displacement] if displacement is not None else [])
        grads = torch.autograd.grad(out.values[energy.name].sum(), inputs, create_graph=create_graph, allow_unused=True)
        for target in derivatives:
            if isinstance(target, Forces):
                out.values[target.name] = target.from_gradient(grads[0], positions)
            elif isinstance(target, Stress):
                out.values[target.name] = target.from_virial(grads[-1] if displacement is not None else None, cell, batch[K.PBC])

    # ------------------------------------------------------------------ losses and metrics
    def loss_terms(self, batch: Batch, predictions: Predictions, split: str, *, metrics: bool = True) -> dict[str, torch.Tensor]:
        """Weighted loss of every labelled target present in the batch (and, with ``metrics``,
        the split's epoch sums updated)."""
        losses = self.losses
        terms: dict[str, torch.Tensor] = {}
        batch_size = int(batch.num_graphs)
        n_atoms = torch.bincount(batch[K.BATCH], minlength=batch_size).to(self.model_dtype)
        for target in self.labelled_targets:
            name = target.name
            pair = target.pair(batch, predictions.values[name], predictions.offsets.get(name),
                               predictions.variances.get(name), n_atoms)
            if pair.prediction.numel() == 0:
                continue
            spec = losses[name]
            pred, label, variance = pair.prediction, pair.label, pair.variance
            if spec.per_atom and pair.n_atoms is not None:
                pred, label = pred / pair.n_atoms, label / pair.n_atoms
                variance = variance / pair.n_atoms**2 if variance is not None else None
            if spec.name == "gaussian_nll":
                assert variance is not None, "gaussian_nll is only chosen for targets with a variance head"
                term = F.gaussian_nll_loss(pred, label, variance, full=True, eps=MIN_VARIANCE)
            else:
                term = loss_function(spec.name, spec.config)(pred, label)
            terms[name] = spec.weight * term
            if metrics:
                self._update_metrics(split, target, pair, term, batch_size)
        return terms

    def _loss_and_metrics(self, batch: Batch, predictions: Predictions, split: str, *, metrics: bool = True) -> torch.Tensor:
        terms = self.loss_terms(batch, predictions, split, metrics=metrics)
        total = torch.zeros((), dtype=self.model_dtype, device=batch[K.POSITIONS].device)
        for term in terms.values():
            total = total + term
        return total

    def _update_metrics(self, split: str, target: Target, pair: Pair, loss: torch.Tensor, batch_size: int) -> None:
        """Add the target's loss (a mean over batches, weighted by their size) and its errors
        (MAE and RMSE over all components of the epoch) to the split's epoch sums."""
        names = [f"{split}/{target.name}_loss"]
        numerators = [loss.detach() * batch_size]
        weights = [float(batch_size)]
        rooted = []
        error = pair.prediction.detach() - pair.label
        for index, name in enumerate(target.metric_names()):
            if index:  # the energy's second metric: per atom
                assert pair.n_atoms is not None, "a per-atom metric needs the atom counts"
                error = pair.prediction.detach() / pair.n_atoms - pair.label / pair.n_atoms
            names += [f"{split}/{name}_mae", f"{split}/{name}_rmse"]
            numerators += [error.abs().sum(), error.square().sum()]
            weights += [float(error.numel())] * 2
            rooted.append(names[-1])
        self.epoch_sums[split].add(tuple(names), numerators, weights, tuple(rooted))

    def _log_epoch_sums(self, split: str) -> None:
        """Log the split's epoch means (summed over ranks first) and start new sums."""
        sums = self.epoch_sums[split]
        if not sums:
            return
        strategy = self._trainer.strategy if self._trainer is not None else None
        reduce = (lambda t: strategy.reduce(t, reduce_op="sum")) if strategy is not None and self.trainer.world_size > 1 else None
        for name, value in sums.means(reduce).items():
            self.log(name, value.to(torch.float32), on_step=False, on_epoch=True, batch_size=1,
                     prog_bar=name.endswith("/loss"), sync_dist=False)

    # ------------------------------------------------------------------ Lightning steps
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        compiled = self.compiled_step(batch) if self.compiled_step is not None else None
        if compiled is None:
            predictions = self.compute(batch, self.network, create_graph=True)
            loss = self._loss_and_metrics(batch, predictions, "train")
        else:  # the loss and metrics again, eagerly, from the compiled predictions (0.3 ms)
            fields, gradients, parameters = compiled
            predictions = Predictions(**fields)
            loss = attach_gradients(self._loss_and_metrics(batch, predictions, "train"), gradients, parameters)
        batch_size = int(batch.num_graphs)
        self.epoch_sums["train"].add(("train/loss",), [loss.detach() * batch_size], [float(batch_size)])
        self.log_step("train/loss_step", loss.detach(), batch_size)
        return loss

    def log_step(self, name: str, value: torch.Tensor, batch_size: int) -> None:
        """``self.log(name, value, on_step=True)`` on the steps whose values the loggers write
        (every ``trainer.log_every_n_steps``-th, and the one a trainer stops at): Lightning drops
        the others, and a ``self.log`` call costs about 0.6 ms (two a step were 3% of a MACE step
        on ethanol at batch 8, Intel Xeon). The epoch's means are summed on every step regardless."""
        connector = getattr(self._trainer, "_logger_connector", None)
        if bool(getattr(connector, "should_update_logs", True)):
            self.log(name, value, on_step=True, on_epoch=False, batch_size=batch_size)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # the epoch's training means are logged with its last batch, so that callbacks reading
        # them at the epoch's end (which run before this module's on_train_epoch_end) see them
        if self.trainer.is_last_batch:
            self._log_epoch_sums("train")

    def on_train_epoch_end(self) -> None:
        self._log_epoch_sums("train")  # an epoch cut short (max_steps, limit_train_batches)

    def on_fit_start(self) -> None:
        if self.compiled_step is not None:  # a new fit records afresh (frozen weights, statistics)
            self.compiled_step.clear()

    def on_train_epoch_start(self) -> None:
        self.epoch_sums["train"].clear()

    def on_validation_epoch_start(self) -> None:
        self.epoch_sums["val"].clear()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_sums("val")

    def on_test_epoch_start(self) -> None:
        self.epoch_sums["test"].clear()

    def on_test_epoch_end(self) -> None:
        self._log_epoch_sums("test")

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """Differentiates the loss for the trainable parameters only.

        The positions (and the strain) are leaves that require grad so that forces and stress
        can be derivatives; a plain ``loss.backward()`` would also differentiate the loss with
        respect to them, back through the whole force graph, for a gradient nobody reads (on
        MACE that is a sixth of the edge tensor products of a step)."""
        kwargs.setdefault("inputs", [p for p in self.parameters() if p.requires_grad] or None)
        super().backward(loss, *args, **kwargs)

    def _evaluation_step(self, batch: Batch, split: str) -> torch.Tensor:
        with torch.enable_grad():  # forces and stress are derivatives even when evaluating
            predictions = self.compute(batch, self.inference_network())
        loss = self._loss_and_metrics(batch, predictions, split)
        batch_size = int(batch.num_graphs)
        self.epoch_sums[split].add((f"{split}/loss",), [loss.detach() * batch_size], [float(batch_size)])
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._evaluation_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._evaluation_step(batch, "test")

    def predict_values(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Detached predictions on the CPU, offsets added in float64 (and ``<name>__variance``),
        for ``predict`` and every engine adapter alike."""
        with torch.enable_grad():  # forces and stress are derivatives even when predicting
            predictions = self.compute(batch, self.inference_network())
        out: dict[str, torch.Tensor] = {}
        for name, value in predictions.values.items():
            value = value.detach()
            if name in predictions.offsets:
                value = value.to(torch.float64) + predictions.offsets[name]
            out[name] = value.cpu()
        for name, variance in predictions.variances.items():
            out[f"{name}{VARIANCE_SUFFIX}"] = variance.detach().cpu()
        return out

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Detached predictions of one batch: graph-level ``[B, ...]``, node-level ``[N, ...]``."""
        out: dict[str, Any] = self.predict_values(batch)
        out["_atoms_per_structure"] = torch.bincount(batch[K.BATCH], minlength=int(batch.num_graphs)).cpu()
        i = batch[K.EDGE_INDEX][0]
        out["_edges_per_structure"] = torch.bincount(batch[K.BATCH][i], minlength=int(batch.num_graphs)).cpu()
        return out

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        # Lightning calls this once per optimiser step (after gradient accumulation)
        super().optimizer_step(*args, **kwargs)
        self.after_optimizer_step()

    def after_optimizer_step(self) -> None:
        """Hook run after every optimiser step, in automatic and manual optimisation alike.
        Techniques extend it cooperatively (call ``super()``)."""

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for p in self.network.parameters() if p.grad is not None]
        if grads:
            # one multi-tensor norm (the 2-norm of the parameters' norms), no host sync
            total = torch.nn.utils.get_total_norm(grads, norm_type=2.0).detach()
            self.epoch_sums["train"].add(("train/grad_norm",), [total], [1.0])
            self.log_step("train/grad_norm_step", total, 1)

    # ------------------------------------------------------------------ optimisation
    def parameter_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters in optimiser groups (a network may define its own grouping).

        A trainable parameter that a network's own grouping does not know (an adapter inserted
        for fine-tuning, say) goes into one more group with the optimiser's settings, so no
        parameter is left out of training silently."""
        trainable = [p for p in self.network.parameters() if p.requires_grad]
        custom = getattr(self.network, "parameter_groups", None)
        if not callable(custom):
            return [{"params": trainable}]
        groups = custom(self.config.optimizer)
        grouped = {id(p) for group in groups for p in group["params"]}
        rest = [p for p in trainable if id(p) not in grouped]
        return groups + ([{"name": "other", "params": rest}] if rest else [])

    def default_monitor(self) -> str:
        return "val/loss" if self.has_validation else "train/loss"

    def configure_optimizers(self) -> Any:
        cfg = self.config
        optimizer_class = getattr(torch.optim, cfg.optimizer.name)
        kwargs = dict(cfg.optimizer.config)
        if "foreach" in inspect.signature(optimizer_class).parameters and not ({"foreach", "fused"} & kwargs.keys()):
            # torch uses the multi-tensor implementation by default only on accelerators; on the CPU
            # it is the same arithmetic (bit for bit) in fewer, larger kernels
            kwargs["foreach"] = True
        optimizer = optimizer_class(self.parameter_groups(), **kwargs)
        if cfg.scheduler is None:
            return optimizer
        scheduler_config = self._scheduler_dict(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": scheduler_config}

    def _run_length(self, interval: str) -> int:
        trainer = self.trainer
        if interval == "step":
            steps = trainer.estimated_stepping_batches
            return int(steps) if math.isfinite(steps) else 1
        return int(trainer.max_epochs) if trainer.max_epochs and trainer.max_epochs > 0 else 1

    def _scheduler_dict(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        sc = self.config.scheduler
        assert sc is not None
        kwargs = dict(sc.config)
        length = max(1, self._run_length(sc.interval) - sc.warmup_steps)
        epochs = self._run_length("epoch")
        filled = []  # the keys sized by the run length (re-sized when a run resumes longer)
        for key, default in (("T_max", "CosineAnnealingLR"), ("total_steps", "OneCycleLR"), ("total_iters", None)):
            value = kwargs.get(key)
            if value == "num_steps":
                kwargs[key] = max(1, self._run_length("step") - sc.warmup_steps)
            elif value == "num_epochs":
                kwargs[key] = epochs
            elif value is None and sc.name == default:
                kwargs[key] = length
            else:
                continue
            filled.append(key)
        if sc.name in ("LinearLR", "PolynomialLR") and "total_iters" not in sc.config:
            kwargs["total_iters"] = length
            filled.append("total_iters")
        scheduler_class = getattr(torch.optim.lr_scheduler, sc.name)
        scheduler = scheduler_class(optimizer, **kwargs)
        saved = self.__dict__.pop("_resumed_scheduler_states", None)
        if saved:
            self._resize_saved_schedule(saved[0], scheduler, filled, nested=bool(sc.warmup_steps))
        plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if sc.warmup_steps:
            if plateau:
                raise ValueError("scheduler.warmup_steps cannot be combined with ReduceLROnPlateau")
            warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=sc.warmup_start_factor, total_iters=sc.warmup_steps)
            scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, scheduler], milestones=[sc.warmup_steps])
        out: dict[str, Any] = {"scheduler": scheduler, "interval": sc.interval, "frequency": sc.frequency}
        if plateau:
            out["monitor"] = sc.monitor or self.default_monitor()
        return out

    def _resize_saved_schedule(self, saved: dict[str, Any], fresh: Any, filled: list[str], *, nested: bool) -> None:
        """Resuming into a longer (or shorter) run: the schedule sized by the run length is
        re-sized to the new length instead of continuing the saved one.

        Lightning restores the saved scheduler state after ``configure_optimizers``, and that
        state holds the old ``T_max``: a cosine schedule would reach its minimum at the old end
        and then *rise* again. Here the saved state is given the new length before it is
        restored. The chainable cosine then continues from the learning rate it had and decays
        to ``eta_min`` at the new end, never rising. A schedule that had already ended stays at
        its final learning rate, with a warning (raising it again is what re-sizing avoids).
        One-cycle schedules are left as saved (their phases cannot be stretched without a jump),
        with a warning; lengths the user gave as numbers are the user's and are kept."""
        state = saved["_schedulers"][1] if nested else saved
        for key in filled:
            new, old = getattr(fresh, key, None), state.get(key)
            if new is None or old is None or new == old:
                continue
            name = type(fresh).__name__
            if isinstance(fresh, torch.optim.lr_scheduler.OneCycleLR):
                warnings.warn(f"resumed into a run of another length: OneCycleLR continues its saved cycle of "
                              f"{old} steps (not {new})", UserWarning, stacklevel=2)
                continue
            if state.get("last_epoch", 0) >= old:
                warnings.warn(f"resumed into a longer run after the saved {name} schedule had ended ({key}={old}): the "
                              f"learning rate stays at its final value {state.get('_last_lr')}; to train further at a "
                              "higher rate, call train() without ckpt_path (a fresh optimiser and schedule)",
                              UserWarning, stacklevel=2)
            _log.info("resumed into a run of another length: scheduler %s %s %s -> %s", name, key, old, new)
            state[key] = new

    # ------------------------------------------------------------------ checkpoints
    def describe(self) -> dict[str, Any]:
        """What a checkpoint or saved model needs to rebuild this module."""
        return {
            "version": __version__,
            "config": self.config.model_dump(mode="json"),
            "statistics": self.statistics.to_dict(),
            "element_mapping": self.element_mapping.to_dict(),
            "spec": {k: getattr(self.spec, k) for k in self.spec.__dataclass_fields__},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = self.describe()
        # dropout and coordinate jitter draw from torch's generator: resume exactly
        checkpoint[CHECKPOINT_KEY]["torch_rng_state"] = torch.get_rng_state()
        _, numpy_keys, *_ = cast(tuple[Any, ...], np.random.get_state(legacy=True))
        checkpoint[CHECKPOINT_KEY]["numpy_rng_state"] = numpy_keys.tolist()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(CHECKPOINT_KEY, {})
        if "torch_rng_state" in state:
            torch.set_rng_state(state["torch_rng_state"])
        # restored by Lightning after configure_optimizers, which re-sizes them to this run
        if checkpoint.get("lr_schedulers") and self.config.scheduler is not None:
            self._resumed_scheduler_states = checkpoint["lr_schedulers"]
