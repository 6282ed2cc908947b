"""ConFIG: Conflict-Free Inverse Gradients for multitask training (Liu et al. 2024, arXiv:2408.11104).

Each loss term (energy, forces, ...) gets its own gradient ``g_i``. The update direction is the
unit vector with the same cosine to every unit gradient ``u_i = g_i / |g_i|`` (the minimum-norm
solution of ``U v = 1``), and its length is the sum of the projections ``sum_i g_i . v``. The
update therefore decreases every term at first order, whatever their scales, and no term can
cancel another.

This needs per-term gradients, so the module optimises manually: Lightning's automatic gradient
clipping and accumulation do not apply; the module clips itself with the trainer settings and
steps the scheduler at the configured interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch_geometric.data import Batch

from .module import AtomisticLightningModule

__all__ = ["ConFIGLightningModule", "ConFIGState", "conflict_free_direction"]


def conflict_free_direction(grads: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Combine ``[m, d]`` per-term gradients into one ``[d]`` update (terms with zero gradient
    are left out)."""
    norms = grads.norm(dim=1)
    keep = norms > eps
    if not keep.any():
        return torch.zeros_like(grads[0])
    grads, norms = grads[keep], norms[keep]
    units = grads / norms[:, None]
    gram = units @ units.T
    ones = torch.ones(len(units), dtype=grads.dtype, device=grads.device)
    # minimum-norm v with units @ v = 1: v = units^T (units units^T)^-1 1
    coefficients = torch.linalg.lstsq(gram + eps * torch.eye(len(units), dtype=grads.dtype, device=grads.device), ones[:, None]).solution[:, 0]
    direction = units.T @ coefficients
    direction = direction / direction.norm().clamp_min(eps)
    return (grads @ direction).sum() * direction


@dataclass
class ConFIGState:
    """What the ConFIG technique adds to a module (its own names, so techniques compose)."""

    steps: int = 0
    term_names: list[str] = field(default_factory=list)
    cosines: list[float] = field(default_factory=list)  # of the last update with each term's gradient


class ConFIGLightningModule(AtomisticLightningModule):
    """The shared module trained with conflict-free combined gradients."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        self.conflict_free = ConFIGState()

    def _trainable_parameters(self, optimizer: Any) -> list[torch.nn.Parameter]:
        return [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]

    def _term_gradients(self, terms: dict[str, torch.Tensor], params: list[torch.nn.Parameter]) -> torch.Tensor:
        rows = []
        names = list(terms)
        for k, name in enumerate(names):
            grads = torch.autograd.grad(terms[name], params, retain_graph=k < len(names) - 1, allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params, strict=True)]))
        stacked = torch.stack(rows)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # gradients from autograd.grad bypass DDP's backward hooks: average them ourselves
            dist.all_reduce(stacked)
            stacked /= dist.get_world_size()
        return stacked

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        optimizer = self.optimizers()
        assert not isinstance(optimizer, list), "configure_optimizers returns one optimiser"
        predictions = self.compute(batch, self.network, create_graph=True)
        terms = self.loss_terms(batch, predictions, "train")
        total = sum(terms.values(), torch.zeros((), dtype=self.model_dtype, device=batch.positions.device))
        params = self._trainable_parameters(optimizer)
        per_term = self._term_gradients(terms, params)
        combined = conflict_free_direction(per_term)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = combined[offset : offset + n].view_as(p).clone()
            offset += n
        trainer_config = self.config.trainer
        if trainer_config.gradient_clip_val:
            self.clip_gradients(
                optimizer.optimizer,
                gradient_clip_val=trainer_config.gradient_clip_val,
                gradient_clip_algorithm=trainer_config.gradient_clip_algorithm,
            )
        optimizer.step()
        optimizer.zero_grad()
        self._step_scheduler("step")
        state = self.conflict_free
        state.steps += 1
        state.term_names = list(terms)
        norms = per_term.norm(dim=1).clamp_min(1e-30) * combined.norm().clamp_min(1e-30)
        state.cosines = (per_term @ combined / norms).tolist()
        self.after_optimizer_step()
        batch_size = int(batch.num_graphs)
        # the epoch mean as the base module keeps it (summed over ranks, logged with the last batch)
        self.epoch_sums["train"].add(("train/loss",), [total.detach() * batch_size], [float(batch_size)])
        self.log_step("train/loss_step", total.detach(), batch_size)
        return total.detach()

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self._step_scheduler("epoch")

    def _step_scheduler(self, interval: str) -> None:
        sc = self.config.scheduler
        if sc is None or sc.interval != interval:
            return
        count = self.trainer.global_step if interval == "step" else self.current_epoch + 1
        if count % sc.frequency:
            return
        scheduler = self.lr_schedulers()
        assert not isinstance(scheduler, list), "configure_optimizers returns one scheduler"
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            monitor = sc.monitor or self.default_monitor()
            metric = self.trainer.callback_metrics.get(monitor)
            if metric is not None:
                scheduler.step(metric)
        elif scheduler is not None:
            scheduler.step()
