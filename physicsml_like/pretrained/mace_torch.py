"""mace-torch models (``MACE``, ``ScaleShiftMACE``; MACE-MP-0 and its kind) as this package's MACE.

``from_mace_torch("model.model")`` returns a :class:`~physicsml_like.models.MACEModel` that
predicts what mace-torch's calculator predicts, trains (fine-tunes) from those weights, saves,
loads and exports like any model of ours.

This package never imports mace-torch (it pins its own e3nn and switches off PyTorch's safe
loading). A ``.model`` file is a pickle of mace-torch's classes, so it is read by
``mace_torch_export.py`` (next to this file) in a Python that has mace-torch, in its own
process; that script writes plain tensors (``state.pt``, read here with
``torch.load(weights_only=True)``) and the hyperparameters (``mace_torch.json``). Every tensor
is then moved into our network, never refitted: reshapes and reorderings between e3nn's flat
weight layouts and our per-irrep matrices, and, in the product basis, the linear map between
mace-torch's coupling paths and ours, solved from the coupling tensors themselves. An option
of the mace-torch model that our MACE has no counterpart for is refused by name.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import torch

from ..config.base import ConfigError
from ..data.graphs import ElementMapping
from ..data.statistics import DatasetStatistics
from ..errors import ConversionError, SavedModelError
from ..models.mace.coupling import coupling_basis
from ..models.mace.interaction import InteractionBlock
from ..models.mace.linear import ElementLinear, IrrepsLinear
from ..models.mace.model import MACEModel
from ..models.mace.network import MACE, _atomic_basis_irreps
from ..models.mace.product import ProductBasisBlock
from ..models.mace.readout import Readout
from ..targets import output_spec

__all__ = ["EXPORT_SCRIPT", "PYTHON_VARIABLE", "export_mace_torch", "from_mace_torch", "load_mace_torch_state",
           "mace_torch_config", "read_mace_torch_export"]

EXPORT_SCRIPT = Path(__file__).with_name("mace_torch_export.py")
"""The script that reads a ``.model`` file in mace-torch's environment."""
PYTHON_VARIABLE = "PHYSICSML_LIKE_MACE_PYTHON"
"""Environment variable naming a Python that has mace-torch (the ``python=`` argument wins)."""
FORMAT = "physicsml_like/mace-torch-state"
STATE_FILE = "state.pt"
META_FILE = "mace_torch.json"
SPARSE_SUFFIXES = (":indices", ":values")

_PLAIN = "RealAgnosticInteractionBlock"
_RESIDUAL = "RealAgnosticResidualInteractionBlock"
_MODEL_CLASSES = ("MACE", "ScaleShiftMACE")
_RADIAL_ACTIVATIONS = {"silu": "silu", "tanh": "tanh"}
_GATES = {"silu": "silu", "tanh": "tanh", "abs": "abs", None: None}


# ---------------------------------------------------------------------------------- reading
def _how_to_convert(model_file: Path, problem: str) -> ConversionError:
    return ConversionError(
        model_file,
        f"{problem}. A mace-torch .model file is read by mace-torch itself, in a separate "
        f"environment (this package never imports it): give from_mace_torch(..., python='/path/to/mace-env/bin/python') "
        f"or set {PYTHON_VARIABLE}, or convert it yourself with\n"
        f"    /path/to/mace-env/bin/python {EXPORT_SCRIPT} {model_file} OUTPUT_FOLDER\n"
        f"and pass OUTPUT_FOLDER to from_mace_torch. Such an environment: python -m venv mace-env && "
        f"mace-env/bin/pip install mace-torch. Reading a .model file runs code from it: only for files you trust."
    )


def export_mace_torch(model_file: str | Path, output: str | Path, python: str | Path | None = None) -> Path:
    """Run ``mace_torch_export.py`` on ``model_file`` in mace-torch's Python (``python``, else
    ``$PHYSICSML_LIKE_MACE_PYTHON``) and return the folder it wrote."""
    model_file, output = Path(model_file), Path(output)
    interpreter = python if python is not None else os.environ.get(PYTHON_VARIABLE)
    if not interpreter:
        raise _how_to_convert(model_file, "no Python with mace-torch was given")
    if not Path(interpreter).exists():
        raise _how_to_convert(model_file, f"the Python {interpreter} does not exist")
    done = subprocess.run([str(interpreter), str(EXPORT_SCRIPT), str(model_file), str(output)],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise _how_to_convert(model_file, f"{interpreter} could not export it:\n{tail}\n")
    return output


def _export_folder(path: Path) -> Path:
    return path.parent if path.name in (META_FILE, STATE_FILE) else path


def read_mace_torch_export(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The hyperparameters and the state dict (tensors by mace-torch's names) of an export folder."""
    folder = _export_folder(Path(path))
    meta_file, state_file = folder / META_FILE, folder / STATE_FILE
    if not meta_file.is_file() or not state_file.is_file():
        raise SavedModelError(folder, f"not a converted mace-torch model: {META_FILE} and {STATE_FILE} are expected "
                              f"(written by {EXPORT_SCRIPT.name})")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SavedModelError(meta_file, f"not JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SavedModelError(meta_file, f"not a converted mace-torch model (format is not {FORMAT!r})", field="format")
    if meta.get("format_version") != 1:
        raise SavedModelError(meta_file, f"format version {meta.get('format_version')!r}; this package reads 1", field="format_version")
    try:
        stored = torch.load(state_file, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or foreign file
        raise SavedModelError(state_file, f"cannot be read as tensors ({type(err).__name__}: {err})") from None
    if not isinstance(stored, dict) or not all(isinstance(v, torch.Tensor) for v in stored.values()):
        raise SavedModelError(state_file, "does not hold a dict of tensors")
    state = {k: v for k, v in stored.items() if not k.endswith(SPARSE_SUFFIXES)}
    for name, shape in meta.get("sparse", {}).items():
        indices, values = stored[name + SPARSE_SUFFIXES[0]], stored[name + SPARSE_SUFFIXES[1]]
        dense = torch.zeros(shape, dtype=values.dtype)
        dense[tuple(indices)] = values
        state[name] = dense
    for name, twin in meta.get("aliases", {}).items():
        state[name] = state[twin]
    return meta["hyperparameters"], state


# ---------------------------------------------------------------------------------- checks
def _unsupported(option: str, value: Any, why: str) -> ConversionError:
    return ConversionError("mace-torch model", f"{option}={value!r} has no counterpart in this package's MACE ({why}); "
                           "converting it would give a different model", option=option)


def _single(values: Any, option: str) -> float:
    flat = torch.as_tensor(values, dtype=torch.float64).flatten()
    if flat.numel() != 1:
        raise _unsupported(option, values, "one value per head: only single-head models convert")
    return float(flat[0])


def _check_supported(h: Mapping[str, Any]) -> None:
    """Refuse, by name, every option this package's MACE cannot reproduce exactly."""
    if h.get("model_class") not in _MODEL_CLASSES:
        raise _unsupported("model class", h.get("model_class"), f"the classes that convert are {list(_MODEL_CLASSES)}")
    if len(h.get("heads") or ["Default"]) != 1:
        raise _unsupported("heads", h["heads"], "multi-head models do not convert; only one head")
    for option, off in (("distance_transform", None), ("pair_repulsion", False), ("apply_cutoff", True),
                        ("use_so3", False), ("use_agnostic_product", False), ("use_last_readout_only", False),
                        ("use_edge_irreps_first", False), ("embedding_specs", None), ("embedding_readout", False),
                        ("lammps_mliap", False)):
        if h.get(option, off) != off:
            raise _unsupported(option, h[option], f"only {off!r} converts")
    for option in ("cueq_config", "oeq_config"):
        if h.get(option) and "enabled=False" not in str(h[option]):
            raise _unsupported(option, h[option], "convert the model back to e3nn with mace-torch first "
                               "(mace_cueq_to_e3nn / mace_oeq_to_e3nn)")
    if h.get("edge_irreps") not in (None, *h.get("interaction_node_irreps", [])[1:2]):
        raise _unsupported("edge_irreps", h["edge_irreps"], "the tensor product takes the node features as they are")
    if h.get("radial_type") != "BesselBasis":
        raise _unsupported("radial_type", h.get("radial_type"), "the radial basis is Bessel functions")
    if h.get("radial_mlp_activation") not in _RADIAL_ACTIVATIONS:
        raise _unsupported("radial_MLP activation", h.get("radial_mlp_activation"), f"known: {sorted(_RADIAL_ACTIVATIONS)}")
    if h.get("gate") not in _GATES:
        raise _unsupported("gate", h.get("gate"), f"known: {[g for g in _GATES if g]} or None")
    if not h.get("spherical_harmonics_normalize", True) or h.get("spherical_harmonics_normalization", "component") != "component":
        raise _unsupported("spherical harmonics", h.get("spherical_harmonics_normalization"), "normalised edge vectors, component normalisation")
    classes = list(h["interaction_classes"])
    for index, name in enumerate(classes):
        if name not in (_PLAIN, _RESIDUAL):
            raise _unsupported(f"interaction class of layer {index}", name, f"the classes that convert are {_PLAIN} and {_RESIDUAL}")
    if len(set(classes[1:])) > 1:
        raise _unsupported("interaction classes", classes, "the layers after the first share one class")
    if any(name != "EquivariantProductBasisBlock" for name in h.get("product_classes", [])):
        raise _unsupported("product class", h["product_classes"], "EquivariantProductBasisBlock only")
    layers = int(h["num_interactions"])
    readouts = ["LinearReadoutBlock"] * (layers - 1) + ["NonLinearReadoutBlock" if layers > 1 else "LinearReadoutBlock"]
    if list(h["readout_classes"]) != readouts:
        raise _unsupported("readouts", h["readout_classes"], f"a linear readout on every layer but the last, then a non-linear one: {readouts}")
    if len(set(h["avg_num_neighbors"])) != 1:
        raise _unsupported("avg_num_neighbors", h["avg_num_neighbors"], "one value for every layer")
    if h.get("model_class") == "ScaleShiftMACE":
        _single(h["scale"], "atomic_inter_scale")
        _single(h["shift"], "atomic_inter_shift")
    energies = torch.as_tensor(h["atomic_energies"], dtype=torch.float64)
    if energies.dim() > 1 and energies.shape[0] != 1:
        raise _unsupported("atomic_energies", list(energies.shape), "one set of E0s: single-head models only")


def _interactions(network: MACE) -> list[InteractionBlock]:
    return cast(list[InteractionBlock], list(network.interactions))


def _products(network: MACE) -> list[ProductBasisBlock]:
    return cast(list[ProductBasisBlock], list(network.products))


def _check_layout(h: Mapping[str, Any], network: MACE) -> None:
    """The irreps of every layer are the ones our network built (options such as
    ``keep_last_layer_irreps`` show up here)."""
    from e3nn import o3

    def same(a: Any, b: Any) -> bool:
        return o3.Irreps(str(a)).simplify() == o3.Irreps(str(b)).simplify()

    hidden = o3.Irreps(h["hidden_irreps"])
    if hidden != hidden.sort().irreps.simplify():
        raise _unsupported("hidden_irreps", h["hidden_irreps"], "irreps in sorted order")
    for index, (interaction, product) in enumerate(zip(_interactions(network), _products(network), strict=True)):
        target = _atomic_basis_irreps(interaction.channels, int(h["max_ell"]), hidden, first=index == 0)
        checks = (("interaction node irreps", h["interaction_node_irreps"][index], interaction.irreps_in),
                  ("interaction edge irreps", h["interaction_edge_irreps"][index], interaction.irreps_in),
                  ("interaction target irreps", h["interaction_target_irreps"][index], target),
                  ("product irreps", h["product_irreps"][index], product.contraction.irreps_out))
        for what, theirs, ours in checks:
            if not same(theirs, ours):
                raise _unsupported(f"{what} of layer {index}", theirs, f"this package's MACE has {ours} there")


def mace_torch_config(h: Mapping[str, Any], dtype: str | None = None, **fields: Any) -> dict[str, Any]:
    """The fields of a :class:`~physicsml_like.models.MACEModelConfig` for mace-torch's
    hyperparameters ``h`` (``fields`` are added: trainer, optimiser, ...)."""
    _check_supported(h)
    correlation = [int(c) for c in h["correlation"]]
    classes = list(h["interaction_classes"])
    scale_shift = h["model_class"] == "ScaleShiftMACE"
    datamodule = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": float(h["r_max"]),
                  **fields.pop("datamodule", {})}
    return {
        "datamodule": datamodule,
        "compute_forces": True,
        "compute_stress": True,
        "model_dtype": dtype or ("float64" if h.get("dtype") == "float64" else "float32"),
        "hidden_irreps": str(h["hidden_irreps"]),
        "max_ell": int(h["max_ell"]),
        "correlation": correlation if len(set(correlation)) > 1 else correlation[0],
        "num_interactions": int(h["num_interactions"]),
        "mlp_irreps": str(h["mlp_irreps"]) if h.get("mlp_irreps") else "16x0e",
        "num_bessel": int(h["num_bessel"]),
        "num_polynomial_cutoff": int(h["num_polynomial_cutoff"]),
        "avg_num_neighbours": float(h["avg_num_neighbors"][0]),
        "radial_mlp": [int(w) for w in h["radial_mlp"]],
        "radial_mlp_activation": _RADIAL_ACTIVATIONS[h["radial_mlp_activation"]],
        "gate": _GATES[h.get("gate")],
        "interaction_first": classes[0],
        "interaction": classes[1] if len(classes) > 1 else _RESIDUAL,
        "energy_scale": _single(h["scale"], "atomic_inter_scale") if scale_shift else 1.0,
        "energy_shift": _single(h["shift"], "atomic_inter_shift") if scale_shift else 0.0,
        **fields,
    }


# ---------------------------------------------------------------------------------- weights
class _State:
    """mace-torch's tensors, remembering which were used (a tensor left over means a part of
    the model that was not converted)."""

    IGNORED = ("atomic_numbers", "r_max", "num_interactions", "radial_embedding.bessel_fn.r_max",
               "radial_embedding.bessel_fn.prefactor", "radial_embedding.cutoff_fn.p", "radial_embedding.cutoff_fn.r_max",
               "atomic_energies_fn.atomic_energies", "scale_shift.scale", "scale_shift.shift")

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        self.state = state
        self.used: set[str] = set()

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.state:
            raise KeyError(f"mace-torch tensor {name!r} is missing from the converted state")
        self.used.add(name)
        return self.state[name]

    def __contains__(self, name: str) -> bool:
        return name in self.state

    def leftover(self) -> list[str]:
        return sorted(name for name, value in self.state.items()
                      if name not in self.used and name not in self.IGNORED and not name.endswith(("_zeroed", "output_mask"))
                      and "U_matrix" not in name and "._w3j_" not in name and value.numel() > 0)


def _copy(target: torch.Tensor, value: torch.Tensor, name: str) -> None:
    if target.shape != value.shape:
        raise ValueError(f"{name}: shape {tuple(value.shape)} does not fit {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(value.to(target.dtype))


def _linear(ours: IrrepsLinear, flat: torch.Tensor, name: str) -> None:
    """``o3.Linear``: one ``[c_in, c_out]`` block per (input, output) pair, by input irrep; the
    input blocks are sorted, so the blocks of each output irrep are consecutive, in the row order
    (copy, channel) of this package's matrix."""
    start = 0
    for weight in ours.weights:
        _copy(weight, flat[start : start + weight.numel()].reshape(weight.shape), name)
        start += weight.numel()
    if start != flat.numel():
        raise ValueError(f"{name}: {flat.numel()} weights, this network has {start}")


def _element_linear(ours: ElementLinear, flat: torch.Tensor, name: str) -> None:
    """``o3.FullyConnectedTensorProduct(features, one-hot, out)``: ``[c_in, elements, c_out]``
    per irrep; this package's rows are (element, channel)."""
    start = 0
    elements = ours.num_elements
    for weight in ours.weights:
        rows, columns = weight.shape
        block = flat[start : start + rows * columns].reshape(rows // elements, elements, columns)
        _copy(weight, block.transpose(0, 1).reshape(rows, columns), name)
        start += rows * columns
    if start != flat.numel():
        raise ValueError(f"{name}: {flat.numel()} weights, this network has {start}")


def _interaction(ours: InteractionBlock, state: _State, prefix: str, paths_by_output: bool) -> None:
    _linear(ours.linear_up, state[prefix + "linear_up.weight"], prefix + "linear_up")
    product = ours.tensor_product
    # mace-torch orders the tensor-product paths by output irrep (stable); this package, like
    # physicsml, in the order they are found, by input
    order: Iterable[int] = (sorted(range(product.num_paths), key=lambda k: product.path_irreps[k])
                            if paths_by_output else range(product.num_paths))
    position = {path: rank for rank, path in enumerate(order)}
    layers = list(ours.radial_mlp.weights)
    for index, weight in enumerate(layers):
        value = state[prefix + f"conv_tp_weights.layer{index}.weight"]
        if index == len(layers) - 1:
            c = product.channels
            value = torch.cat([value[:, position[k] * c : (position[k] + 1) * c] for k in range(product.num_paths)], dim=1)
        _copy(weight, value, prefix + f"conv_tp_weights.layer{index}")
    _linear(ours.linear, state[prefix + "linear.weight"], prefix + "linear")
    _element_linear(ours.skip, state[prefix + "skip_tp.weight"], prefix + "skip_tp")


def _path_transform(u_reference: torch.Tensor, order: int, irreps: str, irrep_out: str, name: str) -> torch.Tensor:
    """``T [K_ours, K_theirs]`` with ``U_theirs = U_ours T``: mace-torch's weights ``w`` of the
    coupling paths are ours as ``T w``. Solved by least squares and checked exact; for mace-torch's
    e3nn coefficients it is a signed permutation, and any other basis of the same paths works too."""
    ours = coupling_basis(irreps, order, irrep_out).to(torch.float64)
    reference = u_reference.to(torch.float64)
    if reference.dim() == order + 1:  # mace-torch drops the axis of a scalar output
        reference = reference.unsqueeze(0)
    mine = ours.reshape(-1, ours.shape[-1])
    theirs = reference.reshape(-1, reference.shape[-1])
    if mine.shape[0] != theirs.shape[0]:
        raise ValueError(f"{name}: coupling tensor of shape {tuple(reference.shape)}, this network's is {tuple(ours.shape)}")
    transform = torch.linalg.lstsq(mine, theirs, driver="gelsd").solution
    residual = float((mine @ transform - theirs).abs().max()) if theirs.numel() else 0.0
    if residual > 1e-8 * max(1.0, float(theirs.abs().max()) if theirs.numel() else 1.0):
        raise ValueError(f"{name}: mace-torch's coupling paths ({irrep_out}, order {order}) are not spanned by this "
                         f"package's (residual {residual:.2e})")
    return transform


def _product(ours: ProductBasisBlock, state: _State, prefix: str) -> None:
    contraction = ours.contraction
    coupling = " + ".join(str(ir) for _, ir in contraction.irreps_in)
    for index, ((_, ir), (_, weight_ids), paths) in enumerate(
        zip(contraction.irreps_out, contraction._outputs, contraction.num_paths, strict=True)
    ):
        base = prefix + f"symmetric_contractions.contractions.{index}."
        # mace-torch: weights_max for the highest order, then weights.0, weights.1, ... downwards
        by_order = {contraction.correlation: state[base + "weights_max"]}
        for j in range(contraction.correlation - 1):
            by_order[contraction.correlation - 1 - j] = state[base + f"weights.{j}"]
        ids = iter(weight_ids)
        for order in range(1, contraction.correlation + 1):
            theirs = by_order[order].to(torch.float64)
            u_name = base + f"U_matrix_{order}"
            if paths[order - 1] == 0:
                if theirs.numel() and float(state[u_name].abs().max()) > 0:
                    raise ValueError(f"{u_name}: mace-torch has coupling paths where this network has none")
                continue
            transform = _path_transform(state[u_name], order, coupling, str(ir), u_name)
            weight = contraction.weights[next(ids)]
            _copy(weight, torch.einsum("jk,ekc->ejc", transform, theirs), base + f"weights (order {order})")
    _linear(ours.linear, state[prefix + "linear.weight"], prefix + "linear")


def load_mace_torch_state(network: MACE, state: Mapping[str, torch.Tensor], paths_by_output: bool = True,
                          complete: bool = True) -> None:
    """Copy mace-torch's weights into ``network`` (built with the same hyperparameters and
    elements); a tensor that does not fit raises ``ValueError`` naming it. ``paths_by_output``:
    the radial network's outputs are in mace-torch's order of the tensor-product paths (sorted
    by output irrep), not physicsml's (as found). ``complete``: every weight of ``state`` must
    have found its place (off for a state that holds more than the network, say physicsml's)."""
    tensors = _State(state)
    elements = network.num_elements
    _copy(network.embedding.weights[0], tensors["node_embedding.linear.weight"].reshape(elements, -1), "node_embedding")
    frequencies = "radial_embedding.bessel_fn.bessel_weights"
    if frequencies in tensors:
        _copy(cast(torch.Tensor, network.radial.basis.frequencies), tensors[frequencies], frequencies)
    for index, block in enumerate(_interactions(network)):
        _interaction(block, tensors, f"interactions.{index}.", paths_by_output)
    for index, product in enumerate(_products(network)):
        _product(product, tensors, f"products.{index}.")
    for index, readout in enumerate(cast(list[Readout], list(network.readouts))):
        prefix = f"readouts.{index}."
        if readout.scalar_out is None:
            _copy(readout.scalar_in, tensors[prefix + "linear.weight"].reshape(readout.scalar_in.shape), prefix + "linear")
        else:
            _copy(readout.scalar_in, tensors[prefix + "linear_1.weight"].reshape(readout.scalar_in.shape), prefix + "linear_1")
            _copy(readout.scalar_out, tensors[prefix + "linear_2.weight"].reshape(readout.scalar_out.shape), prefix + "linear_2")
    if complete and tensors.leftover():
        raise ValueError(f"mace-torch tensors with no place in this package's MACE: {tensors.leftover()}")


# ---------------------------------------------------------------------------------- the model
def _statistics(h: Mapping[str, Any]) -> DatasetStatistics:
    """Statistics that carry mace-torch's numbers: its E0s as reference energies, its neighbour
    normaliser (no data was seen here, so the counts are zero)."""
    numbers = [int(z) for z in h["atomic_numbers"]]
    energies = torch.as_tensor(h["atomic_energies"], dtype=torch.float64).flatten().tolist()
    if len(energies) != len(numbers):
        raise ConfigError(f"mace-torch atomic_energies has {len(energies)} values for {len(numbers)} elements")
    return DatasetStatistics(
        num_structures=0, num_atoms=0, elements=sorted(numbers), element_counts=[0] * len(numbers),
        avg_num_neighbours=float(h["avg_num_neighbors"][0]), energy_key="energy",
        element_reference=dict(zip(numbers, energies, strict=True)),
    )


def _model_from_export(folder: Path, dtype: str | None, fields: dict[str, Any]) -> MACEModel:
    h, state = read_mace_torch_export(folder)
    try:
        config = mace_torch_config(h, dtype, **fields)
    except KeyError as err:
        raise SavedModelError(folder / META_FILE, "a hyperparameter is missing", field=str(err.args[0])) from None
    model = MACEModel(config)
    statistics = _statistics(h)
    mapping = ElementMapping(elements=tuple(int(z) for z in h["atomic_numbers"]))

    def load(network: Any) -> None:
        assert isinstance(network, MACE)
        _check_layout(h, network)
        cutoff = float(cast(Any, network.radial.basis).cutoff)
        if not math.isclose(cutoff, float(h["r_max"])):
            raise ConfigError(f"datamodule.cut_off must be mace-torch's r_max {h['r_max']}, got {cutoff}")
        load_mace_torch_state(network, state)

    model._hold_pretrained(statistics, mapping, output_spec(model.config, mapping, 0), load)
    return model


def from_mace_torch(path: str | Path, *, python: str | Path | None = None, dtype: str | None = None,
                    output: str | Path | None = None, **fields: Any) -> MACEModel:
    """A mace-torch ``MACE`` / ``ScaleShiftMACE`` model (MACE-MP-0 "small" and "medium", say) as
    this package's :class:`~physicsml_like.models.MACEModel`, with its weights, E0s (as
    per-element reference energies), scale, shift and neighbour normaliser.

    Parameters
    ----------
    path: a folder written by ``mace_torch_export.py`` (or its ``mace_torch.json``), or a
        mace-torch ``.model`` file, which is then exported first by running that script in
        mace-torch's Python.
    python: that Python (default: ``$PHYSICSML_LIKE_MACE_PYTHON``). Reading a ``.model`` file
        runs code from it (it is a pickle): only for files you trust.
    dtype: ``"float32"`` or ``"float64"`` (default: the mace-torch model's).
    output: where the export of a ``.model`` file is kept (default: a temporary folder, removed).
    **fields: further config fields (``trainer``, ``optimizer``, ``datamodule`` entries, ...) for
        fine-tuning with :meth:`~physicsml_like.training.wrapper.PhysicsMLModel.train`.

    Returns
    -------
    MACEModel
        A model that predicts energies, forces and stress at once (``predict``,
        ``to_ase_calculator``, ``export``), saves and loads like any model, and fine-tunes from
        mace-torch's weights with ``model.train(data, validation_data)``.

    Raises
    ------
    ConversionError
        An option of the mace-torch model with no counterpart here (distance transforms, ZBL
        pair repulsion, other interaction classes or radial bases, several heads, ...), named.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir() or path.name in (META_FILE, STATE_FILE):
        return _model_from_export(_export_folder(path), dtype, fields)
    if output is not None:
        return _model_from_export(export_mace_torch(path, output, python), dtype, fields)
    with tempfile.TemporaryDirectory(prefix="mace-torch-export-") as tmp:
        return _model_from_export(export_mace_torch(path, Path(tmp) / "export", python), dtype, fields)
