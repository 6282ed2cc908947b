"""Training steps run as one compiled graph (``compile_training=True`` in the model config).

A step of a force-trained potential differentiates twice: the forces are the energy's gradient
taken with ``create_graph``, and the loss of those forces is differentiated again for the
weights. ``torch.compile`` cannot compile a double backward, so the whole computation (the
network, the forces and stress, the loss and the weights' gradient) is recorded by ``make_fx``
as one graph of ATen operations that holds no autograd, with the numbers of atoms and edges
symbolic, and inductor compiles that graph. The step then hands its gradients to the optimiser
as a plain backward would.

What it buys: the MACE of ``benchmarks/reference_comparison.py`` on ethanol, batch 8, 2
threads (AMD EPYC): 19 ms a training step against 33-39 ms eager, the same gradients to 5e-8
(float32), and 248 against 140 training structures/s through ``model.train``; see
``benchmarks/results/small_molecules.md``. What it costs: a compile of 30 s to 3 minutes at the
first step, and again for each new batch layout (another number of structures in a
batch, e.g. a smaller last batch; a new set of trainable weights). Eager stays the default, and
the fallback: a model whose step cannot be recorded (random operations such as dropout, sizes that
depend on the data) trains eagerly with a warning that says why.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..nn.capture import capturing
from ..targets import Stress

if TYPE_CHECKING:
    from .module import AtomisticLightningModule

__all__ = ["CompiledTrainingStep"]

log = logging.getLogger(__name__)

_RANDOM = ("rand", "bernoulli", "dropout", "normal", "multinomial", "randperm")
"""Operations whose compiled values would not be eager's (inductor draws its own numbers)."""


class _RecordedBatch(dict):  # type: ignore[type-arg]
    """The batch as the module's code reads it while recorded: tensors by key, ``num_graphs``."""

    def __init__(self, tensors: dict[str, torch.Tensor], num_graphs: int) -> None:
        super().__init__(tensors)
        self.num_graphs = num_graphs


class _PrecomputedGradient(torch.autograd.Function):
    """Identity on the loss whose backward hands out gradients computed by the compiled graph, so
    that Lightning's backward, gradient accumulation and clipping work unchanged."""

    @staticmethod
    def forward(ctx: Any, loss: torch.Tensor, gradients: tuple[torch.Tensor, ...], *parameters: torch.Tensor) -> torch.Tensor:
        ctx.gradients = gradients
        return loss.clone()

    @staticmethod
    def backward(ctx: Any, upstream: torch.Tensor) -> tuple[Any, ...]:
        return (None, None, *(g * upstream for g in ctx.gradients))


@dataclass
class _Entry:
    """One recorded and compiled step: its graph, when it holds (guards on the sizes), and how
    to read its flat outputs back."""

    run: Any
    shape_env: Any
    guards: str | None
    layout: list[tuple[str, str]]  # (kind, target name) of each prediction output


class CompiledTrainingStep:
    """Predictions and weight gradients of a training batch from a compiled graph.

    One per module; entries are keyed by what a recording fixes (the number of structures, the
    batch's keys, the trainable weights) and checked against the sizes they were recorded for.
    Cleared at the start of every fit, so constants the graph holds (statistics, frozen weights
    outside the network) are never stale."""

    def __init__(self, module: AtomisticLightningModule) -> None:
        self.module = module
        self.entries: dict[tuple[Any, ...], list[_Entry]] = {}
        self.refused: str | None = None

    def clear(self) -> None:
        self.entries.clear()
        self.refused = None

    def __getstate__(self) -> dict[str, Any]:  # compiled code is not copied or pickled
        return {"module": self.module, "entries": {}, "refused": None}

    # ------------------------------------------------------------------ the step
    def __call__(self, batch: Any) -> tuple[dict[str, dict[str, torch.Tensor]], list[torch.Tensor], list[nn.Parameter]] | None:
        """``(predictions, gradients, parameters)``, or ``None`` when this step runs eagerly; the
        predictions are the fields of :class:`~.module.Predictions` (``values``, ``offsets``,
        ``variances``), detached."""
        if self.refused is not None:
            return None
        network = self.module.network
        parameters = list(network.parameters())
        values = [p.detach() for p in parameters] + list(network.buffers())
        flags = tuple(p.requires_grad for p in parameters)
        keys = sorted(k for k in batch.keys() if torch.is_tensor(batch[k]))  # noqa: SIM118 - a PyG batch iterates pairs
        tensors = [batch[k] for k in keys]
        # the network's modules can change only between fits, which clear the entries
        key = (id(network), int(batch.num_graphs), tuple(keys), flags)
        entry = next((e for e in self.entries.get(key, []) if self._holds(e, [*values, *tensors])), None)
        if entry is None:
            entry = self._record(network, keys, flags, int(batch.num_graphs), values, tensors)
            if entry is None:
                return None
            self.entries.setdefault(key, []).append(entry)
        try:
            with torch.no_grad():
                outputs = entry.run(values, tensors)
        except Exception as error:
            self._refuse(f"inductor failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
            return None
        predictions: dict[str, dict[str, torch.Tensor]] = {"values": {}, "offsets": {}, "variances": {}}
        for (kind, name), value in zip(entry.layout, outputs, strict=False):
            predictions[kind][name] = value
        gradients = list(outputs[len(entry.layout):])
        return predictions, gradients, [p for p, trained in zip(parameters, flags, strict=True) if trained]

    @staticmethod
    def _holds(entry: _Entry, inputs: list[torch.Tensor]) -> bool:
        return entry.guards is None or bool(entry.shape_env.evaluate_guards_expression(entry.guards, inputs))

    def _refuse(self, why: str) -> None:
        self.refused = why
        warnings.warn(f"compile_training: this model's training step is not compiled ({why}); it trains eagerly",
                      RuntimeWarning, stacklevel=4)

    # ------------------------------------------------------------------ recording
    def _record(self, network: nn.Module, keys: list[str], flags: tuple[bool, ...], num_graphs: int,
                values: list[torch.Tensor], tensors: list[torch.Tensor]) -> _Entry | None:
        from torch.fx.experimental.proxy_tensor import make_fx

        names = [name for name, _ in network.named_parameters()] + [name for name, _ in network.named_buffers()]
        module = self.module
        if any(isinstance(t, Stress) for t in module.labelled_targets):
            self._refuse("the stress loss compares only each batch's fully periodic structures, a number that "
                         "depends on the data")
            return None
        layout: list[tuple[str, str]] = []
        num_parameters = len(flags)

        class Functional(nn.Module):
            """The network with the recorded values in place of its weights and buffers."""

            def __init__(self, weights: list[torch.Tensor]) -> None:
                super().__init__()
                self.weights = weights

            def forward(self, graph: Any) -> Any:
                return torch.func.functional_call(network, dict(zip(names, self.weights, strict=True)), (graph,))

        Functional.__name__ = type(network).__name__  # error messages name the family's network

        def step(weights: list[torch.Tensor], batch_tensors: list[torch.Tensor]) -> list[torch.Tensor]:
            weights = [w.detach().requires_grad_(True) if i < num_parameters and flags[i] else w
                       for i, w in enumerate(weights)]
            batch = _RecordedBatch(dict(zip(keys, batch_tensors, strict=True)), num_graphs)
            predictions = module.compute(batch, Functional(weights), create_graph=True)
            loss = module._loss_and_metrics(batch, predictions, "train", metrics=False)
            wanted = [w for i, w in enumerate(weights[:num_parameters]) if flags[i]]
            grads = torch.autograd.grad(loss, wanted, allow_unused=True)
            layout.clear()
            flat = []
            for kind in ("values", "offsets", "variances"):
                for name, value in getattr(predictions, kind).items():
                    layout.append((kind, name))
                    flat.append(value.detach())
            return flat + [g if g is not None else torch.zeros_like(w) for g, w in zip(grads, wanted, strict=True)]

        start = time.perf_counter()
        try:
            with capturing(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = make_fx(step, tracing_mode="symbolic", _allow_non_fake_inputs=True)(values, tensors)
        except Exception as error:
            self._refuse(f"recording failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
            return None
        random = sorted({str(n.target) for n in graph.graph.nodes
                         if n.op == "call_function" and any(r in str(n.target) for r in _RANDOM)})
        if random:
            self._refuse(f"it draws random numbers ({', '.join(random)}), which compiled code draws differently")
            return None
        shape_env = getattr(graph, "shape_env", None)
        placeholders = [n.meta["val"] for n in graph.graph.nodes if n.op == "placeholder"]
        guards = shape_env.produce_guards_expression(placeholders) if shape_env is not None else None
        log.info("compile_training: recorded a training step of %d structures (%d operations) in %.1f s; "
                 "inductor compiles it at its first call", num_graphs, len(graph.graph.nodes), time.perf_counter() - start)
        run = torch.compile(graph, dynamic=True, fullgraph=True)
        return _Entry(run, shape_env, guards, list(layout))


def attach_gradients(loss: torch.Tensor, gradients: list[torch.Tensor], parameters: list[nn.Parameter]) -> torch.Tensor:
    """The (detached) loss, made to hand ``gradients`` to ``parameters`` when backpropagated."""
    return _PrecomputedGradient.apply(loss.detach(), tuple(gradients), *parameters)  # type: ignore[no-any-return]

