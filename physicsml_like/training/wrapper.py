"""The user-facing model: ``train``, ``predict``, ``test``, ``save`` and ``load``.

One base class serves every family; a family is a thin subclass naming its config class and
its network builder::

    @register_model("egnn_model")
    class EGNNModel(PhysicsMLModel):
        config_class = EGNNModelConfig
        build_network = staticmethod(build_egnn)
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import lightning as L
import numpy as np
from lightning.pytorch.loggers import Logger
from torch import nn

from .. import keys as K
from .._files import remove_dead_leftovers, temporary_name
from .._logging import get_logger
from .._version import __version__
from ..config.base import ConfigError, StrictConfig
from ..config.model import ModelConfig
from ..data.datamodule import GraphDataModule
from ..data.graphs import ElementMapping
from ..data.sources import read_table
from ..data.statistics import DatasetStatistics, with_energy_references
from ..errors import SavedModelError
from ..nn.adapters import insert_adapters
from ..nn.graph import OutputSpec
from ..targets import Target, output_spec
from .ema import EMALightningModule
from .extensions import engine, saved_format_loader
from .finetune import (
    copy_matching_weights,
    refit_references,
    replay_table,
    residual_references,
    set_trainable,
    with_replay,
)
from .module import CHECKPOINT_KEY, VARIANCE_SUFFIX, AtomisticLightningModule
from .ranks import on_rank_zero, report_failed_ranks_at_exit, single_device
from .saved import (
    load_weights_into,
    new_model,
    read_checkpoint,
    read_saved_model,
    write_model_files,
)
from .techniques import technique_for
from .trainer import (
    build_trainer,
    check_something_trained,
    checkpoint_step,
    find_last_checkpoint,
    new_run_dir,
)

__all__ = ["PhysicsMLModel", "load_model"]

_log = get_logger(__name__)


class PhysicsMLModel:
    """A model family's user-facing wrapper.

    Parameters
    ----------
    config: a config of the family (or a dict of its fields).
    **fields: config fields given directly; they override ``config``. Nested sections accept
        dicts, e.g. ``trainer={"max_epochs": 50}``.

    Attributes
    ----------
    config: the validated config.
    module: the LightningModule (after ``train`` or ``load``).
    run_dir: folder of the last training run (checkpoints, ``metrics.csv``).
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    build_network: ClassVar[Callable[..., nn.Module]]

    def __init__(self, config: ModelConfig | dict[str, Any] | None = None, **fields: Any) -> None:
        if isinstance(config, StrictConfig):
            base: dict[str, Any] = config.model_dump()
        elif config is None:
            base = {}
        elif isinstance(config, dict):
            base = dict(config)
        else:
            raise ConfigError(f"config must be a {self.config_class.__name__} or a dict, got {type(config).__name__}")
        self.config = self.config_class(**base).updated(fields) if fields else self.config_class(**base)
        self.module: AtomisticLightningModule | None = None
        self.run_dir: Path | None = None
        self.trainer: L.Trainer | None = None
        # set by the converters of pretrained models: the held module is where fine-tuning starts
        self._holds_pretrained_start = False

    def __repr__(self) -> str:
        state = "trained" if self.module is not None else "untrained"
        return f"{type(self).__name__}(name={self.name!r}, {state})"

    # ------------------------------------------------------------------ building
    def _call_config(self, **sections: dict[str, Any] | None) -> ModelConfig:
        """The config with per-call overrides of some sections (``self.config`` is unchanged)."""
        overrides = {k: v for k, v in sections.items() if v is not None}
        return self.config.updated(overrides) if overrides else self.config

    def _new_module(self, config: ModelConfig, statistics: DatasetStatistics, mapping: ElementMapping, spec: OutputSpec) -> AtomisticLightningModule:
        network = type(self).build_network(config, spec, statistics)
        tl = config.transfer_learning
        if tl is not None and tl.adapter is not None:
            insert_adapters(network, tl.adapter, tl.adapter_targets, tl.bottleneck, tl.bottleneck_ratio,
                            lora_rank=tl.lora_rank, lora_alpha=tl.lora_alpha)
        cls, extra = technique_for(config)
        module = cls(network, config, statistics, mapping, spec, **extra)
        _log.debug("%s network:\n%s", self.name, network)
        return module

    def _datamodule(self, config: ModelConfig, **splits: Any) -> GraphDataModule:
        known = self.module
        return GraphDataModule(
            config.run_datamodule,
            element_mapping=known.element_mapping if known is not None else None,
            statistics=known.statistics if known is not None else None,
            energy_key=config.energy_key,
            forces_key=config.datamodule.y_node_vector if config.compute_forces else None,
            **splits,
        )

    def _statistics(self, config: ModelConfig, dm: GraphDataModule) -> DatasetStatistics:
        stats = dm.statistics
        if config.energy_references and config.energy_key is not None:
            from ase.data import atomic_numbers

            references = {
                (int(k) if k.isdigit() else atomic_numbers[k]): v for k, v in config.energy_references.items()
            }
            column = (config.datamodule.y_graph_scalars or []).index(config.energy_key)
            stats = with_energy_references(stats, dm.split_arrays("train"), references, column)
        return stats

    # ------------------------------------------------------------------ training
    def _resolve_checkpoint(self, ckpt_path: str | Path | None, config: ModelConfig) -> Path | None:
        if ckpt_path is None:
            return None
        if str(ckpt_path) == "last":
            return find_last_checkpoint(config.trainer.default_root_dir, self.name)
        path = Path(ckpt_path)
        if not path.exists():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        return path

    def train(
        self,
        train_data: Any,
        validation_data: Any = None,
        ckpt_path: str | Path | None = None,
        *,
        trainer_config: dict[str, Any] | None = None,
        datamodule_config: dict[str, Any] | None = None,
        optimizer_config: dict[str, Any] | None = None,
        scheduler_config: dict[str, Any] | None = None,
        callbacks: Sequence[L.Callback] | None = None,
        loggers: Sequence[Logger] | None = None,
    ) -> Self:
        """Fit on ``train_data`` (validated on ``validation_data`` when given); returns ``self``.

        ``ckpt_path`` resumes a run exactly (weights, optimiser, scheduler, EMA, epoch, sampler
        order); ``"last"`` takes the newest ``last.ckpt`` of this family's runs. The ``*_config``
        dicts override those sections for this call only. Calling ``train`` again without
        ``ckpt_path`` continues from the current weights with a fresh optimiser. ``callbacks``
        and ``loggers`` are Lightning objects for this call, added to the config's.
        """
        config = self._call_config(
            trainer=trainer_config, datamodule=datamodule_config, optimizer=optimizer_config, scheduler=scheduler_config
        )
        resume = self._resolve_checkpoint(ckpt_path, config)
        L.seed_everything(config.seed, verbose=False)
        if config.transfer_learning is not None and resume is None and (self.module is None or self._holds_pretrained_start):
            return self._fine_tune(config, train_data, validation_data, callbacks=callbacks, loggers=loggers)
        meta = _checkpoint_metadata(resume) if resume is not None and self.module is None else None
        if meta is not None:
            self.module = self._module_from_description(meta, config)
        dm = self._datamodule(config, train_data=train_data, validation_data=validation_data)
        dm.prepare_data()
        dm.setup("fit")
        self._ensure_module(config, dm)
        self._fit(config, dm, validation_data is not None, resume, callbacks=callbacks, loggers=loggers)
        self._holds_pretrained_start = False
        return self

    def _hold_pretrained(self, statistics: DatasetStatistics, mapping: ElementMapping, spec: OutputSpec,
                         load: Callable[[nn.Module], None]) -> AtomisticLightningModule:
        """Hold converted pretrained weights (``load`` puts them into the network): the module is
        built without the ``transfer_learning`` section, whose adapters, references refit and
        replay apply when ``train`` fine-tunes from these weights."""
        module = self._new_module(self.config.updated({"transfer_learning": None}), statistics, mapping, spec)
        load(module.network)
        if isinstance(module, EMALightningModule):
            module.ema_network.module.load_state_dict(module.network.state_dict())
        self.module = module
        self._holds_pretrained_start = True
        return module

    def _pretrained_start(self, pretrained: str | None) -> tuple[PhysicsMLModel, str]:
        """The model fine-tuning starts from, and its name for messages."""
        if self._holds_pretrained_start:
            if pretrained is not None:
                raise ConfigError(f"transfer_learning.pretrained={pretrained!r}, but this model holds the pretrained weights it "
                                  "was converted from, where fine-tuning starts: leave pretrained out, or fine-tune a new model")
            start = copy.copy(self)  # keeps the pretrained module when self.module becomes the fine-tuned one
            return start, f"the converted {self.name} weights"
        if pretrained is None:
            raise ConfigError("transfer_learning.pretrained: the folder of a saved model to start from (or fine-tune a "
                              "converted model: load_pretrained(name, transfer_learning={...}).train(data))")
        return load_model(pretrained), pretrained

    def _fit(self, config: ModelConfig, dm: GraphDataModule, has_validation: bool, resume: Path | None = None, *,
             callbacks: Sequence[L.Callback] | None = None, loggers: Sequence[Logger] | None = None) -> None:
        """One Lightning fit of the current module on a prepared datamodule."""
        assert self.module is not None
        self.module.config = config
        self.module.has_validation = has_validation
        if resume is not None and resume.parent.name == "checkpoints":
            run_dir = resume.parent.parent
        else:
            run_dir = new_run_dir(config.trainer.default_root_dir, self.name)
        checkpoint = read_checkpoint(resume) if resume is not None else {}
        trainer = build_trainer(config, run_dir, has_validation=has_validation, callbacks=callbacks, loggers=loggers,
                                resume_step=checkpoint_step(checkpoint) if resume else None)
        trainer.fit(self.module, datamodule=dm, ckpt_path=str(resume) if resume else None)
        report_failed_ranks_at_exit(trainer)
        self.trainer, self.run_dir = trainer, run_dir
        check_something_trained(config, trainer, checkpoint, resume)

    def _fine_tune(self, config: ModelConfig, train_data: Any, validation_data: Any, *,
                   callbacks: Sequence[L.Callback] | None = None, loggers: Sequence[Logger] | None = None) -> Self:
        """Start from ``config.transfer_learning.pretrained`` and train its stages in turn."""
        tl = config.transfer_learning
        assert tl is not None
        pretrained, pretrained_name = self._pretrained_start(tl.pretrained)
        source = pretrained._require_module()
        mapping = source.element_mapping
        if tl.replay is not None:
            # labelled once, by the pretrained model as it is before any fine-tuning
            plain = config.run_datamodule
            n_train = read_table(train_data, plain, with_labels=False).num_structures if tl.replay.fraction else 0
            replay = replay_table(pretrained, tl.replay.structures, plain, count=tl.replay.count,
                                  fraction=tl.replay.fraction, seed=tl.replay.seed, num_train=n_train)
            _log.info("replay: %d structures labelled by %s mixed into the fine-tuning data", replay.num_structures, pretrained_name)
            train_data = with_replay(train_data, replay, plain)
        dm = GraphDataModule(
            config.run_datamodule,
            train_data=train_data,
            validation_data=validation_data,
            element_mapping=mapping,
            statistics=None if tl.refit_references == "labels" else source.statistics,
            energy_key=config.energy_key,
            forces_key=config.datamodule.y_node_vector if config.compute_forces else None,
        )
        dm.prepare_data()
        _setup_within_the_pretrained_elements(dm, mapping, pretrained_name)
        statistics = source.statistics
        if tl.refit_references == "labels":
            statistics = refit_references(source.statistics, dm.statistics)
        elif tl.refit_references == "residual":
            statistics = self._residual_references(config, source, dm)
        arrays = dm.split_arrays("train")
        n_attrs = int(np.asarray(arrays[K.GRAPH_ATTRS]).shape[1]) if K.GRAPH_ATTRS in arrays else 0
        self.module = self._new_module(config, statistics, mapping, output_spec(config, mapping, n_attrs))
        network = self.module.network
        loaded, kept = copy_matching_weights(network, source.inference_network(), tl.modules_to_match)
        _log.info("fine-tuning from %s: %d tensors loaded, %d new", pretrained_name, len(loaded), len(kept))
        if isinstance(self.module, EMALightningModule):
            self.module.ema_network.module.load_state_dict(network.state_dict())
        # with adapters, the pretrained weights stay fixed: only adapters and new heads train
        base = {name for name, _ in network.named_parameters() if name in loaded} if tl.adapter else set()
        for stage in tl.stages:
            stage_config = config.updated(
                {k: v for k, v in {"trainer": stage.trainer, "optimizer": stage.optimizer,
                                    "scheduler": stage.scheduler, "datamodule": stage.datamodule}.items() if v}
            )
            frozen = set_trainable(network, frozen_patterns=stage.freeze, frozen_names=base)
            if len(frozen) == len(list(network.parameters())):
                raise ConfigError("transfer_learning: a stage freezes every parameter; nothing would train")
            stage_dm = dm if not stage.datamodule else self._datamodule(stage_config, train_data=train_data, validation_data=validation_data)
            if stage_dm is not dm:
                stage_dm.prepare_data()
                stage_dm.setup("fit")
            self._fit(stage_config, stage_dm, validation_data is not None, callbacks=callbacks, loggers=loggers)
        set_trainable(network, frozen_patterns=[], frozen_names=base)
        self._holds_pretrained_start = False
        return self

    @staticmethod
    def _residual_references(config: ModelConfig, source: AtomisticLightningModule, dm: GraphDataModule) -> DatasetStatistics:
        """The pretrained references moved by the fit of what the pretrained model misses on
        the new training labels (``refit_references="residual"``)."""
        energy = source.energy_target
        if energy is None or config.energy_key is None:
            raise ConfigError("transfer_learning.refit_references='residual' needs an energy target in both models")
        source.eval()
        predicted = [source.predict_values(batch)[energy.name].numpy() for batch in dm.ordered_batches("train")]
        column = (config.datamodule.y_graph_scalars or []).index(config.energy_key)
        return residual_references(source.statistics, dm.split_arrays("train"), np.concatenate(predicted), column)

    def _ensure_module(self, config: ModelConfig, dm: GraphDataModule) -> None:
        """Build the module from the datamodule's statistics, or check the existing one fits."""
        if self.module is None:
            arrays = dm.split_arrays("train")
            n_attrs = int(np.asarray(arrays[K.GRAPH_ATTRS]).shape[1]) if K.GRAPH_ATTRS in arrays else 0
            spec = output_spec(config, dm.element_mapping, n_attrs)
            self.module = self._new_module(config, self._statistics(config, dm), dm.element_mapping, spec)
        else:
            self._check_compatible(config)
            self.module.config = config

    def initialise(self, train_data: Any) -> Self:
        """Build the network from ``train_data``'s statistics (element mapping, reference
        energies, scales) without training; e.g. to inspect it or to test a family."""
        dm = self._datamodule(self.config, train_data=train_data)
        dm.prepare_data()
        dm.setup("fit")
        self._ensure_module(self.config, dm)
        return self

    def _check_compatible(self, config: ModelConfig) -> None:
        assert self.module is not None
        if config.targets != self.module.config.targets:
            raise ConfigError(
                f"this model was built for targets {self.module.config.target_kinds()}; the call asks "
                f"for {config.target_kinds()}. Build a new model for new targets."
            )

    # ------------------------------------------------------------------ inference
    def _require_module(self) -> AtomisticLightningModule:
        if self.module is None:
            raise RuntimeError(f"{type(self).__name__} is not trained yet: call train() or load a saved model")
        return self.module

    def prediction_kinds(self) -> dict[str, str]:
        """Name -> kind of everything ``predict`` returns."""
        return {t.name: t.kind for t in self._require_module().all_targets}

    def predict(
        self,
        data: Any,
        *,
        return_std: bool = False,
        confidence: float | None = None,
        as_dataframe: bool = False,
        keep_columns: list[str] | None = None,
        datamodule_config: dict[str, Any] | None = None,
        trainer_config: dict[str, Any] | None = None,
    ) -> dict[str, Any] | Any:
        """Predict every target for ``data`` (any supported source; labels are not needed).

        Returns a dict keyed by target name: graph-level values as arrays ``[n_structures, ...]``,
        node-level values as a list with one array per structure (edge-level likewise). With
        ``as_dataframe=True``, a pandas DataFrame with one row per structure, indexed like a
        DataFrame input (so ``df.join(pred)`` works), and with the input columns named in
        ``keep_columns`` (ids, say) in front.

        A model trained with ``uncertainty="mean_var"`` also gives ``<name>_std`` for its scalar
        targets with ``return_std=True``, and ``<name>_lower`` / ``<name>_upper`` bounds of the
        central prediction interval at ``confidence`` (e.g. 0.95) under the Gaussian it predicts.
        """
        module = self._require_module()
        if keep_columns and not as_dataframe:
            raise ConfigError("keep_columns applies to as_dataframe=True")
        if (return_std or confidence is not None) and module.config.uncertainty is None:
            raise ConfigError(
                "return_std / confidence need a model with uncertainty: train with "
                "uncertainty='mean_var', or use an EnsembleModel"
            )
        config = self._call_config(
            trainer={"devices": single_device(self.config.trainer.accelerator), "strategy": "auto", "num_nodes": 1,
                     "enable_progress_bar": False, **(trainer_config or {})},
            datamodule=datamodule_config,
        )
        dm = self._datamodule(config, predict_data=data)
        dm.prepare_data()
        dm.setup("predict")
        trainer = build_trainer(config, Path(config.trainer.default_root_dir), has_validation=False, for_fitting=False)
        batches = trainer.predict(module, dataloaders=dm.predict_dataloader())
        targets = module.all_targets
        result = _assemble(batches, targets)  # type: ignore[arg-type]
        variances = _assemble(batches, targets, suffix=VARIANCE_SUFFIX)  # type: ignore[arg-type]
        if return_std or confidence is not None:
            add_uncertainty(result, {k: _sqrt(v) for k, v in variances.items()}, confidence)
        if as_dataframe:
            return _to_dataframe(result, data, keep_columns)
        return result

    def test(self, data: Any, *, trainer_config: dict[str, Any] | None = None) -> dict[str, float]:
        """Metrics (``test/<target>_mae`` ...) on labelled ``data``."""
        module = self._require_module()
        config = self._call_config(trainer={"devices": single_device(self.config.trainer.accelerator), "strategy": "auto",
                                            "num_nodes": 1, "enable_progress_bar": False, **(trainer_config or {})})
        dm = self._datamodule(config, test_data=data)
        dm.setup("test")
        trainer = build_trainer(config, Path(config.trainer.default_root_dir), has_validation=False, for_fitting=False)
        (metrics,) = trainer.test(module, dataloaders=dm.test_dataloader(), verbose=False)
        return {k: float(v) for k, v in metrics.items()}

    def to_ase_calculator(self, *, device: str = "cpu", dtype: str | None = None) -> Any:
        """An ASE calculator (energy, forces, stress, other targets) for molecular dynamics and
        relaxations; ``dtype="float64"`` runs a float32-trained model in double precision."""
        return engine("ase")(self, device=device, dtype=dtype)

    def export(self, path: str | Path, format: str = "torchscript", *, dtype: str | None = None, device: str = "cpu") -> Path:
        """Write a self-contained compiled model that runs without this package: ``"torchscript"``
        (``torch.jit.load(path)(positions, atomic_numbers, cell, pbc)`` -> energy, forces, stress),
        ``"aoti"`` (native code compiled by AOTInductor, the fastest on the CPU; the caller gives the
        neighbour list) or ``"metatomic"`` (LAMMPS, i-PI, ASE through metatomic). See ``docs/export.md``."""
        return engine("export")(self, path, format, dtype=dtype, device=device)

    def to_torch_sim(self, *, device: str = "cpu", dtype: str | None = None) -> Any:
        """A torch-sim model (``ModelInterface``) for batched relaxations and molecular dynamics
        of many structures in one call (``ts.optimize``, ``ts.integrate``); needs the extra
        ``physicsml_like[torch-sim]``."""
        return engine("torch_sim")(self, device=device, dtype=dtype)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the model to a folder: ``config.json``, ``weights.safetensors`` (inference
        weights: the EMA average when EMA is on), ``statistics.json`` and ``metadata.json``
        (element mapping, output heads, package version). Written to a temporary folder first
        and renamed, so an interrupted save never leaves a folder that loads; ``metadata.json``
        holds the sha256 of the other files, checked on loading. Under DDP, rank 0 writes and the
        other ranks wait until the folder is in place."""
        path = Path(path)
        on_rank_zero(f"save {path.resolve()}", lambda: self._write(path))
        return path

    def _write(self, path: Path) -> None:
        module = self._require_module()
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_leftovers(path.parent, hidden=True)  # of saves killed part-way
        tmp = path.with_name(temporary_name(f".{path.name}"))
        tmp.mkdir()
        try:
            description = module.describe()
            state = {k: v.detach().cpu().contiguous().clone() for k, v in module.inference_network().state_dict().items()}
            meta = {k: description[k] for k in ("version", "element_mapping", "spec")}
            meta["name"] = self.name
            config = {"name": self.name, "config": description["config"]}
            write_model_files(tmp, state, {"version": __version__, "name": self.name}, config, description["statistics"], meta)
            if path.exists():
                old = path.with_name(temporary_name(f".{path.name}", "old"))
                path.rename(old)
                tmp.rename(path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _module_from_description(self, description: dict[str, Any], config: ModelConfig | None = None) -> AtomisticLightningModule:
        statistics = DatasetStatistics.from_dict(description["statistics"])
        mapping = ElementMapping.from_dict(description["element_mapping"])
        spec = OutputSpec(**description["spec"])
        return self._new_module(config or self.config, statistics, mapping, spec)

    @classmethod
    def load(cls, path: str | Path) -> PhysicsMLModel:
        """Rebuild a model saved with :meth:`save` (see :func:`load_model`)."""
        return load_model(path)


def load_model(path: str | Path) -> Any:
    """Rebuild a saved model (or ensemble): the family from ``config.json``, weights from
    safetensors (no pickled code runs). It predicts exactly as the saved one did. A damaged or
    edited folder is refused with a :class:`SavedModelError` naming the file and the field."""
    path = Path(path)
    loader = saved_format_loader(path)  # an ensemble's folder, say (see training.extensions)
    if loader is not None:
        return loader(path)
    saved = read_saved_model(path)
    model = new_model(saved)
    module = model._module_from_description(saved.description())
    load_weights_into(module.network, saved)
    if isinstance(module, EMALightningModule):
        module.ema_network.module.load_state_dict(module.network.state_dict())
    model.module = module
    return model


def _setup_within_the_pretrained_elements(dm: GraphDataModule, mapping: ElementMapping, pretrained: str) -> None:
    """``dm.setup("fit")``, refusing data with elements the pretrained model has no embedding
    for, all of them named: the one-hot element input of a trained network cannot grow without
    new weights that nothing has trained."""
    from ..errors import DataError

    try:
        dm.setup("fit")
    except DataError as err:
        if err.field != "atomic_numbers":
            raise
        from ase.data import chemical_symbols

        known = set(mapping.elements or range(mapping.size))
        new = [z for z in dm.elements_present() if z not in known]
        if not new:
            raise
        names = ", ".join(chemical_symbols[z] for z in new)
        has = ", ".join(chemical_symbols[z] for z in sorted(known)) if mapping.elements else f"Z < {mapping.size}"
        raise ConfigError(
            f"transfer_learning: the fine-tuning data holds {names}, which the pretrained model {pretrained} "
            f"does not know (it was trained on {has}); a trained network's element embedding cannot grow "
            "without new untrained weights. Fine-tune on structures of its elements, or train a new model"
        ) from err


def _checkpoint_metadata(path: Path) -> dict[str, Any]:
    checkpoint = read_checkpoint(path)
    if CHECKPOINT_KEY not in checkpoint:
        raise SavedModelError(path, "not a checkpoint of this package", field=CHECKPOINT_KEY)
    return checkpoint[CHECKPOINT_KEY]


def _assemble(batches: list[dict[str, Any]], targets: list[Target], suffix: str = "") -> dict[str, Any]:
    """Concatenate per-batch outputs; each target splits its own into structures."""
    atoms = np.concatenate([b["_atoms_per_structure"].numpy() for b in batches])
    edges = np.concatenate([b["_edges_per_structure"].numpy() for b in batches])
    out: dict[str, Any] = {}
    for target in targets:
        key = target.name + suffix
        if key in batches[0]:
            out[target.name] = target.assemble(np.concatenate([b[key].numpy() for b in batches]), atoms, edges)
    return out


def _sqrt(values: Any) -> Any:
    return [np.sqrt(v) for v in values] if isinstance(values, list) else np.sqrt(values)


def add_uncertainty(result: dict[str, Any], stds: dict[str, Any], confidence: float | None) -> None:
    """Add ``<name>_std`` and, with ``confidence``, Gaussian ``<name>_lower``/``_upper`` bounds."""
    from statistics import NormalDist

    if confidence is not None and not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2) if confidence is not None else None
    for name, std in stds.items():
        result[f"{name}_std"] = std
        if z is not None:
            mean = result[name]
            if isinstance(mean, list):
                result[f"{name}_lower"] = [m - z * s for m, s in zip(mean, std, strict=True)]
                result[f"{name}_upper"] = [m + z * s for m, s in zip(mean, std, strict=True)]
            else:
                result[f"{name}_lower"] = mean - z * std
                result[f"{name}_upper"] = mean + z * std


def _to_dataframe(result: dict[str, Any], data: Any = None, keep_columns: list[str] | None = None) -> Any:
    """One row per structure, aligned with ``data`` (see :func:`data.tables_io.predictions_frame`)."""
    from ..data.tables_io import predictions_frame

    return predictions_frame(result, data, keep_columns)
