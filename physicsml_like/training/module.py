"""The one LightningModule every family shares.

batch -> :class:`AtomicGraph` (edge vectors from positions, cell shifts and a strain) -> the
family's network -> per-atom energies -> structure energy plus per-element reference energies
and the per-atom scale and shift of the training statistics. Forces are ``-dE/dr`` and stress is
``(1/V) dE/dε`` by autograd. Every target has a loss (weighted sum) and MAE/RMSE metrics logged
as ``train/<target>_mae`` and ``val/<target>_mae`` (energy also per atom).

Precision: reference energies are kept and added in float64. The network predicts the residual
``E - sum(E0)``, which is what is compared with the label's residual in the loss, so float32
models lose nothing to energies of hundreds of eV.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import grad_norm
from torch import nn
from torch_geometric.data import Batch
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric

from .. import keys as K
from .._version import __version__
from ..config.model import ModelConfig
from ..data.graphs import ElementMapping
from ..data.statistics import DatasetStatistics
from ..nn.builder import torch_dtype
from ..nn.graph import (
    OUT_EDGE_SCALARS,
    OUT_EDGE_VECTOR,
    OUT_GRAPH_SCALARS,
    OUT_GRAPH_VECTOR,
    OUT_NODE_SCALARS,
    OUT_NODE_VECTOR,
    OUT_PER_ATOM_GRAPH_SCALARS,
    AtomicGraph,
    OutputSpec,
)
from ..nn.scatter import scatter_mean, scatter_sum
from .losses import loss_function

__all__ = ["AtomisticLightningModule", "Predictions", "output_spec"]

CHECKPOINT_KEY = "physicsml_like"
VARIANCE_SUFFIX = "__variance"  # predict_step's key for a target's variance
_MIN_VARIANCE = 1e-8
_FLOAT_INPUTS = (K.POSITIONS, K.CELL, K.CELL_SHIFT, K.NODE_ATTRS, K.EDGE_ATTRS, K.GRAPH_ATTRS)


def output_spec(config: ModelConfig, mapping: ElementMapping, num_graph_attrs: int) -> OutputSpec:
    """The heads a network needs for a config's targets, and its input widths."""
    from ..data.molecules import BOND_FEATURE_NAMES, atom_feature_size

    dm = config.datamodule
    kinds = config.target_kinds()
    node_vector_dim = 3 if any(k == "node_vector" for k in kinds.values()) else 0
    # a mean-variance model asks every scalar head for twice the width: means, then variances
    heads = 2 if config.uncertainty == "mean_var" else 1
    return OutputSpec(
        num_elements=mapping.size,
        num_node_features=mapping.size + atom_feature_size(dm.atom_features or []),
        num_edge_features=len(BOND_FEATURE_NAMES) if dm.bond_features else 0,
        num_graph_attrs=num_graph_attrs,
        num_graph_scalars=heads * len(dm.y_graph_scalars or []),
        graph_vector_dim=3 if dm.y_graph_vector else 0,
        num_node_scalars=heads * len(dm.y_node_scalars or []),
        node_vector_dim=node_vector_dim,
        num_edge_scalars=len(dm.y_edge_scalars or []),
        edge_vector_dim=3 if dm.y_edge_vector else 0,
    )


def _metric_key(split: str, target: str, metric: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]", "_", f"{split}__{target}__{metric}")


@dataclass
class _Target:
    name: str
    kind: str
    column: int | None  # column in a stacked label tensor (graph/node/edge scalars)


@dataclass
class _Pair:
    target: _Target
    prediction: torch.Tensor
    label: torch.Tensor
    variance: torch.Tensor | None = None
    n_atoms: torch.Tensor | None = None


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

    # buffers (registered in __init__; declared here for type checkers)
    element_energy: torch.Tensor
    graph_scalar_mean: torch.Tensor
    graph_scalar_std: torch.Tensor
    node_scalar_mean: torch.Tensor
    node_scalar_std: torch.Tensor

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
        self._register_scales()
        self._targets = self._make_targets()
        self.metrics = nn.ModuleDict()
        for split in ("train", "val", "test"):
            for target in self._targets:
                names = [target.name] + ([f"{target.name}_per_atom"] if target.name == config.energy_key else [])
                for name in names:
                    self.metrics[_metric_key(split, name, "mae")] = MeanAbsoluteError()
                    self.metrics[_metric_key(split, name, "rmse")] = MeanSquaredError(squared=False)

    # ------------------------------------------------------------------ set-up
    def _register_scales(self) -> None:
        """Buffers (float64) for reference energies and target scales, from the statistics."""
        stats, cfg = self.statistics, self.config
        references = torch.zeros(self.element_mapping.size, dtype=torch.float64)
        slot = self.element_mapping.lookup_table()
        for z, energy in stats.element_reference.items():
            if slot[z] >= 0:
                references[slot[z]] = energy
        self.register_buffer("element_energy", references)
        self.energy_scale = float(cfg.energy_scale if cfg.energy_scale is not None else stats.energy_scale())
        self.energy_shift = float(cfg.energy_shift if cfg.energy_shift is not None else stats.per_atom_energy_mean)
        dm = cfg.datamodule
        graph_names = dm.y_graph_scalars or []
        mean = [stats.graph_scalar_mean.get(n, 0.0) for n in graph_names]
        std = [stats.graph_scalar_std.get(n, 1.0) or 1.0 for n in graph_names]
        self.register_buffer("graph_scalar_mean", torch.tensor(mean, dtype=torch.float64))
        self.register_buffer("graph_scalar_std", torch.tensor(std, dtype=torch.float64))
        node_names = dm.y_node_scalars or []
        self.register_buffer("node_scalar_mean", torch.tensor([stats.node_scalar_mean.get(n, 0.0) for n in node_names], dtype=torch.float64))
        self.register_buffer("node_scalar_std", torch.tensor([stats.node_scalar_std.get(n, 1.0) or 1.0 for n in node_names], dtype=torch.float64))
        self.graph_vector_scale = float(stats.graph_vector_rms.get(dm.y_graph_vector or "", 1.0) or 1.0)
        self.node_vector_scale = float(stats.node_vector_rms.get(dm.y_node_vector or "", 1.0) or 1.0)

    def _make_targets(self) -> list[_Target]:
        cfg = self.config
        dm = cfg.datamodule
        out: list[_Target] = []
        for name, kind in cfg.target_kinds().items():
            column = None
            if kind == "graph_scalar":
                column = (dm.y_graph_scalars or []).index(name)
            elif kind == "node_scalar":
                column = (dm.y_node_scalars or []).index(name)
            elif kind == "edge_scalar":
                column = (dm.y_edge_scalars or []).index(name)
            out.append(_Target(name, kind, column))
        return out

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
        """Predictions for a batch (see :class:`Predictions`)."""
        network = network if network is not None else self.network
        cfg = self.config
        want_forces, want_stress = cfg.compute_forces, cfg.compute_stress
        graph, positions, displacement, cell = self._graph(batch, want_forces, want_stress)
        raw = network(graph)
        n_graphs = graph.num_graphs
        n_atoms = torch.bincount(graph.batch, minlength=n_graphs).to(self.model_dtype)
        out = Predictions({}, {}, {})
        dm = cfg.datamodule
        mean_var = cfg.uncertainty == "mean_var"
        energy_value = None
        if dm.y_graph_scalars:
            k = len(dm.y_graph_scalars)
            per_atom = raw.get(OUT_PER_ATOM_GRAPH_SCALARS)
            if per_atom is not None:
                pooling = getattr(network, "graph_scalar_pooling", "sum")
                summed = scatter_sum(per_atom, graph.batch, n_graphs)
                pooled = summed if pooling == "sum" else scatter_mean(per_atom, graph.batch, n_graphs)
                # a variance head gives per-atom variances: they add up over the atoms
                var_summed = scatter_sum(F.softplus(per_atom[:, k:]), graph.batch, n_graphs) if mean_var else None
            elif OUT_GRAPH_SCALARS in raw:
                summed = pooled = raw[OUT_GRAPH_SCALARS]
                var_summed = F.softplus(summed[:, k:]) if mean_var else None
            else:
                raise ValueError(f"{type(network).__name__} returned no {OUT_GRAPH_SCALARS!r} for y_graph_scalars")
            for column, name in enumerate(dm.y_graph_scalars):
                if name == cfg.energy_key:
                    value = self.energy_scale * summed[:, column] + self.energy_shift * n_atoms
                    out.offsets[name] = scatter_sum(self.element_energy.to(torch.float64)[graph.species], graph.batch, n_graphs)
                    energy_value = value
                    scale: float | torch.Tensor = self.energy_scale
                else:
                    mean = self.graph_scalar_mean[column].to(self.model_dtype)
                    std = self.graph_scalar_std[column].to(self.model_dtype)
                    value = mean + std * pooled[:, column]
                    out.offsets[name] = torch.zeros(n_graphs, dtype=torch.float64, device=value.device)
                    scale = std
                out.values[name] = value
                if var_summed is not None:
                    out.variances[name] = var_summed[:, column] * scale**2 + _MIN_VARIANCE
        if dm.y_node_scalars:
            k = len(dm.y_node_scalars)
            node = self._require(raw, OUT_NODE_SCALARS, network)
            for column, name in enumerate(dm.y_node_scalars):
                std = self.node_scalar_std[column].to(self.model_dtype)
                out.values[name] = self.node_scalar_mean[column].to(self.model_dtype) + std * node[:, column]
                if mean_var:
                    out.variances[name] = F.softplus(node[:, k + column]) * std**2 + _MIN_VARIANCE
        if dm.y_graph_vector:
            out.values[dm.y_graph_vector] = self.graph_vector_scale * self._require(raw, OUT_GRAPH_VECTOR, network)
        if dm.y_node_vector and not want_forces:
            out.values[dm.y_node_vector] = self.node_vector_scale * self._require(raw, OUT_NODE_VECTOR, network)
        if dm.y_edge_scalars:
            edge = self._require(raw, OUT_EDGE_SCALARS, network)
            out.values.update({name: edge[:, k] for k, name in enumerate(dm.y_edge_scalars)})
        if dm.y_edge_vector:
            out.values[dm.y_edge_vector] = self._require(raw, OUT_EDGE_VECTOR, network)
        if want_forces or want_stress:
            assert energy_value is not None
            inputs = [positions] + ([displacement] if displacement is not None else [])
            grads = torch.autograd.grad(
                energy_value.sum(), inputs, create_graph=create_graph, allow_unused=True
            )
            if want_forces:
                out.values[cfg.forces_key] = -grads[0] if grads[0] is not None else torch.zeros_like(positions)
            if want_stress:
                virial = grads[-1] if grads[-1] is not None else torch.zeros_like(cell)
                volume = torch.linalg.det(cell).abs()
                periodic = batch[K.PBC].reshape(-1, 3).all(dim=1) & (volume > 1e-12)
                safe_volume = torch.where(periodic, volume, torch.ones_like(volume))
                out.values[cfg.stress_key] = torch.where(periodic[:, None, None], virial / safe_volume[:, None, None], torch.zeros_like(virial))
        return out

    @staticmethod
    def _require(raw: dict[str, torch.Tensor], key: str, network: nn.Module) -> torch.Tensor:
        if key not in raw:
            raise ValueError(f"{type(network).__name__} returned no {key!r}, which the targets need")
        return raw[key]

    # ------------------------------------------------------------------ losses and metrics
    def _pairs(self, batch: Batch, predictions: Predictions) -> Iterator[_Pair]:
        """Prediction, label (and variance) of every target, in the model dtype, masked where needed."""
        dtype = self.model_dtype
        n_atoms = torch.bincount(batch[K.BATCH], minlength=int(batch.num_graphs)).to(dtype)
        values, offsets = predictions.values, predictions.offsets
        for target in self._targets:
            pred = values[target.name]
            variance = predictions.variances.get(target.name)
            if target.kind == "graph_scalar":
                label = (batch[K.Y_GRAPH_SCALARS][:, target.column] - offsets[target.name]).to(dtype)
                yield _Pair(target, pred, label, variance, n_atoms)
            elif target.kind == "graph_vector":
                yield _Pair(target, pred, batch[K.Y_GRAPH_VECTOR].to(dtype))
            elif target.kind == "node_scalar":
                yield _Pair(target, pred, batch[K.Y_NODE_SCALARS][:, target.column].to(dtype), variance)
            elif target.kind in ("node_vector", "forces"):
                yield _Pair(target, pred, batch[K.Y_NODE_VECTOR].to(dtype))
            elif target.kind in ("edge_scalar", "edge_vector"):
                mask = batch[K.EDGE_LABEL_MASK]
                key = K.Y_EDGE_SCALARS if target.kind == "edge_scalar" else K.Y_EDGE_VECTOR
                label = batch[key][:, target.column] if target.column is not None else batch[key]
                yield _Pair(target, pred[mask], label[mask].to(dtype))
            elif target.kind == "stress":
                periodic = batch[K.PBC].reshape(-1, 3).all(dim=1)
                yield _Pair(target, pred[periodic], batch[K.Y_STRESS].reshape(-1, 3, 3)[periodic].to(dtype))

    def loss_terms(self, batch: Batch, predictions: Predictions, split: str) -> dict[str, torch.Tensor]:
        """Weighted loss of every target present in the batch (metrics updated and logged)."""
        losses = self.losses
        terms: dict[str, torch.Tensor] = {}
        batch_size = int(batch.num_graphs)
        for pair in self._pairs(batch, predictions):
            if pair.prediction.numel() == 0:
                continue
            name = pair.target.name
            spec = losses[name]
            pred, label, variance = pair.prediction, pair.label, pair.variance
            if spec.per_atom and pair.n_atoms is not None:
                pred, label = pred / pair.n_atoms, label / pair.n_atoms
                variance = variance / pair.n_atoms**2 if variance is not None else None
            if spec.name == "gaussian_nll":
                assert variance is not None, "gaussian_nll is only chosen for targets with a variance head"
                term = F.gaussian_nll_loss(pred, label, variance, full=True, eps=_MIN_VARIANCE)
            else:
                term = loss_function(spec.name, spec.config)(pred, label)
            terms[name] = spec.weight * term
            self.log(f"{split}/{name}_loss", term.detach(), on_step=False, on_epoch=True, batch_size=batch_size, sync_dist=split != "train")
            self._update_metrics(split, name, pair.prediction.detach(), pair.label, batch_size)
            if name == self.config.energy_key and pair.n_atoms is not None:
                self._update_metrics(split, f"{name}_per_atom", (pair.prediction / pair.n_atoms).detach(), pair.label / pair.n_atoms, batch_size)
        return terms

    def _loss_and_metrics(self, batch: Batch, predictions: Predictions, split: str) -> torch.Tensor:
        terms = self.loss_terms(batch, predictions, split)
        total = torch.zeros((), dtype=self.model_dtype, device=batch[K.POSITIONS].device)
        for term in terms.values():
            total = total + term
        return total

    def _update_metrics(self, split: str, name: str, pred: torch.Tensor, label: torch.Tensor, batch_size: int) -> None:
        for metric in ("mae", "rmse"):
            key = _metric_key(split, name, metric)
            tracker = cast(Metric, self.metrics[key])
            tracker.update(pred.reshape(-1), label.reshape(-1))
            self.log(f"{split}/{name}_{metric}", tracker, on_step=False, on_epoch=True, batch_size=batch_size)

    # ------------------------------------------------------------------ Lightning steps
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        predictions = self.compute(batch, self.network, create_graph=True)
        loss = self._loss_and_metrics(batch, predictions, "train")
        batch_size = int(batch.num_graphs)
        self.log("train/loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, batch_size=batch_size)
        return loss

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
        self.log(f"{split}/loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True, batch_size=int(batch.num_graphs), sync_dist=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._evaluation_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._evaluation_step(batch, "test")

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Detached predictions of one batch: graph-level ``[B, ...]``, node-level ``[N, ...]``."""
        with torch.enable_grad():
            predictions = self.compute(batch, self.inference_network())
        out: dict[str, Any] = {}
        for name, value in predictions.values.items():
            value = value.detach()
            if name in predictions.offsets:
                value = value.to(torch.float64) + predictions.offsets[name]
            out[name] = value.cpu()
        for name, variance in predictions.variances.items():
            out[f"{name}{VARIANCE_SUFFIX}"] = variance.detach().cpu()
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
        norms = grad_norm(self.network, norm_type=2)
        if norms:
            total = norms["grad_2.0_norm_total"]
            self.log("train/grad_norm", total, on_step=False, on_epoch=True, batch_size=1)
            self.log("train/grad_norm_step", total, on_step=True, on_epoch=False, batch_size=1)

    # ------------------------------------------------------------------ optimisation
    def parameter_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters in optimiser groups (a network may define its own grouping)."""
        custom = getattr(self.network, "parameter_groups", None)
        if callable(custom):
            return custom(self.config.optimizer)
        return [{"params": [p for p in self.network.parameters() if p.requires_grad]}]

    def default_monitor(self) -> str:
        return "val/loss" if self.has_validation else "train/loss"

    def configure_optimizers(self) -> Any:
        cfg = self.config
        optimizer = getattr(torch.optim, cfg.optimizer.name)(self.parameter_groups(), **cfg.optimizer.config)
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
        for key, default in (("T_max", "CosineAnnealingLR"), ("total_steps", "OneCycleLR"), ("total_iters", None)):
            value = kwargs.get(key)
            if value == "num_steps":
                kwargs[key] = max(1, self._run_length("step") - sc.warmup_steps)
            elif value == "num_epochs":
                kwargs[key] = epochs
            elif value is None and sc.name == default:
                kwargs[key] = length
        if sc.name in ("LinearLR", "PolynomialLR") and "total_iters" not in sc.config:
            kwargs["total_iters"] = length
        scheduler_class = getattr(torch.optim.lr_scheduler, sc.name)
        scheduler = scheduler_class(optimizer, **kwargs)
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
