"""SevenNet checkpoints as NequIP models of this package, weight for weight.

SevenNet (Park et al. 2024) is a NequIP: gated interaction blocks of a ``"uvu"`` convolution
with the edges' spherical harmonics. Its checkpoints (``checkpoint_*.pth``) hold a config dict
and e3nn state dicts. :func:`from_sevennet` reads one *without running pickled code* (only
numpy's array and dtype globals are allowed to unpickle), maps every config option onto
:class:`~physicsml_like.models.nequip.config.NequIPModelConfig` and moves every tensor into the
network of ours that computes the same function: e3nn's flat ``Linear`` and tensor-product
weights are re-cut between the two layouts of channels, the radial network's last layer is
reordered path by path. Nothing is refitted. An option with no counterpart here raises a
:class:`~physicsml_like.errors.ConversionError` naming it.

What maps (SevenNet key -> ours): ``channel``/``irreps_manual`` -> ``num_features`` and
``features_per_ell``; ``lmax``, ``is_parity``, ``num_convolution_layer``; Bessel basis
(``bessel_basis_num``, trainable frequencies, prefactor ``2 / r_c``); ``poly_cut`` (``p``) or
``XPLOR`` (``cutoff_on``) envelope on the basis only; ``weight_nn_hidden_neurons`` and
``act_radial``; ``conv_denominator`` ``d`` -> ``avg_num_neighbours = d**2`` (we divide by its
root); ``self_connection_type`` ``nequip`` (per element) or ``linear``; no residual; gates;
``reduce_input_to_hidden`` / ``reduce_hidden_to_energy`` -> the energy head; per-element shift
-> float64 reference energies, a scale shared by all elements -> ``energy_scale``; ``_type_map``
-> the element slots; ``cutoff``. Checkpoints before SevenNet 0.11 are read as SevenNet reads
them (old module names, radial weights in unsorted path order, Wigner-3j signs of old e3nn).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from e3nn import o3

from ..data.graphs import ElementMapping
from ..data.statistics import DatasetStatistics
from ..errors import ConversionError
from ..models.nequip.model import NequIPModel
from ..targets import output_spec

__all__ = ["SHIPPED_SEVENNET", "from_sevennet", "read_sevennet_checkpoint", "shipped_sevennet_path"]

#: Names of the checkpoints shipped in the ``sevenn`` wheel -> (folder, file) under
#: ``sevenn/pretrained_potentials``.
SHIPPED_SEVENNET: dict[str, tuple[str, str]] = {
    "sevennet-0": ("SevenNet_0__11Jul2024", "checkpoint_sevennet_0.pth"),
    "sevennet-0-11jul2024": ("SevenNet_0__11Jul2024", "checkpoint_sevennet_0.pth"),
    "sevennet-0-22may2024": ("SevenNet_0__22May2024", "checkpoint_sevennet_0.pth"),
    "sevennet-l3i5": ("SevenNet_l3i5", "checkpoint_l3i5.pth"),
    "sevennet-mf-0": ("SevenNet_MF_0", "checkpoint_sevennet_mf_0.pth"),
}

_ACTIVATIONS = {"silu": "SiLU", "tanh": "tanh", "relu": "relu", "sigmoid": "sigmoid", "elu": "elu"}
# SevenNet's defaults for keys an older checkpoint may lack (sevenn/_const.py)
_DEFAULTS: dict[str, Any] = {
    "lmax_edge": -1, "lmax_node": -1, "is_parity": True, "irreps_manual": False, "interaction_type": "nequip",
    "self_connection_type": "nequip", "use_bias_in_linear": False, "readout_as_fcn": False, "act_radial": "silu",
    "act_scalar": {"e": "silu", "o": "tanh"}, "act_gate": {"e": "silu", "o": "tanh"},
    "weight_nn_hidden_neurons": [64, 64], "use_modality": False,
}
_MODAL_LINEARS = ("use_modal_node_embedding", "use_modal_self_inter_intro", "use_modal_self_inter_outro", "use_modal_output_block")
# what the conversion decides; a config override may not change it
_ARCHITECTURE = (
    "num_layers", "num_features", "features_per_ell", "max_ell", "parity", "num_bessel", "bessel_basis_trainable",
    "bessel_prefactor", "num_polynomial_cutoff", "envelope", "envelope_on", "radial_envelope_on_hidden", "radial_mlp",
    "radial_mlp_activation", "nonlinearity_scalars", "nonlinearity_gates", "self_connection", "self_connection_type",
    "resnet", "avg_num_neighbours", "readout_features", "normalize_edge_sh", "energy_scale", "energy_shift",
)


# ---------------------------------------------------------------------- reading
def _numpy_globals() -> list[Any]:
    """The only globals a SevenNet checkpoint may unpickle: numpy arrays (``shift``, ``scale``
    of the config) and their float/int dtypes. ``_reconstruct`` is named as the file names it
    (``numpy.core``, numpy 1) even under numpy 2."""
    import importlib

    core = "numpy._core.multiarray" if importlib.util.find_spec("numpy._core") else "numpy.core.multiarray"
    reconstruct = importlib.import_module(core)._reconstruct
    allowed: list[Any] = [np.ndarray, np.dtype, (reconstruct, "numpy.core.multiarray._reconstruct"),
                          (reconstruct, "numpy._core.multiarray._reconstruct")]
    allowed += [type(np.dtype(name)) for name in ("float32", "float64", "int64", "int32", "bool")]
    return allowed


def read_sevennet_checkpoint(path: str | Path) -> dict[str, Any]:
    """A SevenNet checkpoint's ``config`` and ``model_state_dict`` (on the CPU), read with
    ``weights_only=True`` plus numpy's array globals only: no pickled code runs.

    Raises :class:`ConversionError` for a file that needs any other global, or that is not a
    SevenNet checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SevenNet checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler refuses a global, or the file is no torch file
        raise ConversionError(path, f"not a SevenNet checkpoint readable without running pickled code ({error})") from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("config"), dict) or not isinstance(
        checkpoint.get("model_state_dict"), dict
    ):
        raise ConversionError(path, "not a SevenNet checkpoint: no 'config' and 'model_state_dict'")
    config = checkpoint["config"]
    if config.get("_model_type", "E3_equivariant_model") != "E3_equivariant_model" or "version" not in config:
        raise ConversionError(path, "not a SevenNet checkpoint: its config has no SevenNet version / model type", option="_model_type")
    return {"config": config, "state": dict(checkpoint["model_state_dict"])}


def shipped_sevennet_path(name: str) -> Path:
    """The file of a checkpoint shipped in the ``sevenn`` wheel (found with
    ``importlib.util.find_spec``; nothing of sevenn is imported)."""
    folder, file = SHIPPED_SEVENNET[name]
    spec = importlib.util.find_spec("sevenn")
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError(name, "the shipped SevenNet checkpoints come with the 'sevenn' wheel: pip install sevenn "
                              "(or give the path of a checkpoint file; converting one needs only torch)")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained_potentials" / folder / file
    if not path.is_file():
        raise ConversionError(name, f"the installed sevenn has no {folder}/{file}")
    return path


def _version(config: dict[str, Any]) -> tuple[int, int, int, str]:
    parts = str(config["version"]).split(".")
    numbers = [int("".join(ch for ch in part if ch.isdigit()) or 0) for part in parts[:3]]
    return numbers[0], numbers[1], numbers[2], parts[3] if len(parts) > 3 else ""


def _modernised_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Module names of SevenNet before 0.10 (``"0 convolution"``) as the current ones."""
    renames = {"EdgeEmbedding": "edge_embedding", "reducing nn input to hidden": "reduce_input_to_hidden",
               "reducing nn hidden to energy": "reduce_hidden_to_energy", "rescale atomic energy": "rescale_atomic_energy"}
    for i in range(10):
        for old in ("self connection intro", "convolution", "self interaction 2", "equivariant gate"):
            renames[f"{i} {old}"] = f"{i}_{old.replace(' ', '_')}"
    out = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        out[f"{renames.get(head, head)}.{rest.replace('denumerator', 'denominator')}"] = value
    return out


# ---------------------------------------------------------------------- architecture
def _infer_irreps_out(irreps_x: o3.Irreps, irreps_filter: o3.Irreps, lmax: int, even_only: bool, multiplicity: int | None) -> o3.Irreps:
    """SevenNet's ``util.infer_irreps_out``: the irreps of ``x (x) filter`` up to ``lmax``."""
    out = o3.FullTensorProduct(irreps_x, irreps_filter).irreps_out.simplify()
    kept = [(multiplicity or mul, ir) for mul, ir in out if ir.l <= lmax and not (even_only and ir.p == -1)]
    return o3.Irreps(kept)


class _Layer:
    """One SevenNet interaction block's irreps and convolution paths, as SevenNet builds them."""

    def __init__(self, irreps_x: o3.Irreps, irreps_filter: o3.Irreps, irreps_out: o3.Irreps, last: bool) -> None:
        self.irreps_x, self.irreps_out = irreps_x, irreps_out
        self.irreps_tp = _infer_irreps_out(irreps_x, irreps_filter, irreps_out.lmax, last, None)
        created = []  # (key, channels) of each path in creation order
        for i, (mul, ir_x) in enumerate(irreps_x):
            for j, (_, ir_f) in enumerate(irreps_filter):
                for ir_out in ir_x * ir_f:
                    if ir_out in self.irreps_tp:
                        created.append(((ir_x, ir_f, ir_out), mul, (i, j)))
        mid = o3.Irreps([(mul, key[2]) for key, mul, _ in created])
        _, permutation, _ = mid.sort()
        self.created = created
        self.sorted_slots = [created[k] for k in sorted(range(len(created)), key=lambda k: permutation[k])]
        # input of SevenNet's EquivariantGate: scalars, one gate per gated irrep, gated
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l > 0])
        self.gate_in = _gate_blocks(scalars, gated, "0e" in [str(ir) for _, ir in scalars])


Block = tuple[o3.Irrep, list[Hashable]]  # an irreps block and the label of each of its channels
Layout = list[Block]


def _labelled(tag: str, irreps: o3.Irreps) -> Layout:
    return [(ir, [((tag, ir), u) for u in range(mul)]) for mul, ir in irreps]


def _sorted_merged(blocks: Layout) -> Layout:
    """e3nn's ``irreps.sort().irreps.simplify()`` on labelled blocks (a stable sort by irrep)."""
    out: Layout = []
    for ir, labels in sorted(blocks, key=lambda block: block[0]):
        if out and out[-1][0] == ir:
            out[-1] = (ir, out[-1][1] + labels)
        else:
            out.append((ir, list(labels)))
    return out


def _gate_blocks(scalars: o3.Irreps, gated: o3.Irreps, even_gates: bool) -> Layout:
    """The input of an e3nn ``Gate`` (scalars, then one gate scalar per gated irrep, then the
    gated irreps; sorted and merged by irrep as ``Gate`` does), channels labelled by role."""
    gate_ir = o3.Irrep("0e") if even_gates else o3.Irrep("0o")
    gates: Layout = [(gate_ir, [(("g", ir), u) for u in range(mul)]) for mul, ir in gated]
    return _sorted_merged(_labelled("s", scalars) + gates + _labelled("x", gated))


def _our_gate(block: Any) -> Layout:
    gate = block.gate
    even = any(ir == o3.Irrep("0e") for _, ir in gate.irreps_gates) or len(gate.irreps_gates) == 0
    layout = _gate_blocks(gate.irreps_scalars, gate.irreps_gated, even)
    if [(len(labels), ir) for ir, labels in layout] != [(mul, ir) for mul, ir in gate.irreps_in]:
        raise ConversionError("gate", f"our gate input {gate.irreps_in} is not laid out as expected")
    return layout


# ---------------------------------------------------------------------- e3nn weight layouts
def _recut(
    weight: torch.Tensor, source_in: Layout, source_out: Layout, target_in: Layout, target_out: Layout, middle: int, what: str
) -> torch.Tensor:
    """e3nn ``Linear`` (``middle=1``) or element-wise ``FullyConnectedTensorProduct`` with a
    ``middle``-slot one-hot (``x (x) Nx0e``) weights, from one block layout to another.

    Every pair of an input and an output block of the same irrep is one instruction with a
    ``[mul_in, middle, mul_out]`` block of the flat weight (in e3nn's order). The weights are
    gathered per irrep into one matrix over labelled channels, then cut again for the target
    blocks. The normalisation (one over the root of each output's fan-in) stays the same only if
    each output irrep is fed by the same input channels on both sides, which is checked."""
    def instructions(blocks_in: Layout, blocks_out: Layout) -> list[tuple[int, int]]:
        return [(i, o) for i, (ir_i, _) in enumerate(blocks_in) for o, (ir_o, _) in enumerate(blocks_out) if ir_i == ir_o]

    def positions(blocks: Layout) -> dict[o3.Irrep, dict[Hashable, int]]:
        out: dict[o3.Irrep, dict[Hashable, int]] = {}
        for ir, labels in blocks:
            table = out.setdefault(ir, {})
            for label in labels:
                table[label] = len(table)
        return out

    rows, cols = positions(source_in), positions(source_out)
    dense = {ir: weight.new_zeros(len(rows.get(ir, {})), middle, len(table)) for ir, table in cols.items()}
    flat = weight.reshape(-1)
    offset = 0
    for i, o in instructions(source_in, source_out):
        (ir, labels_in), (_, labels_out) = source_in[i], source_out[o]
        size = len(labels_in) * middle * len(labels_out)
        r = torch.tensor([rows[ir][label] for label in labels_in])
        c = torch.tensor([cols[ir][label] for label in labels_out])
        dense[ir][r[:, None], :, c[None, :]] = flat[offset : offset + size].reshape(len(labels_in), middle, len(labels_out)).permute(0, 2, 1)
        offset += size
    if offset != flat.numel():
        raise ConversionError(what, f"weight has {flat.numel()} entries, the SevenNet layout {offset}")
    ours = positions(target_in)
    for ir, _ in target_out:
        if set(ours.get(ir, {})) != set(rows.get(ir, {})):
            raise ConversionError(what, f"the inputs of {ir} differ between SevenNet and ours")
    pieces = []
    for i, o in instructions(target_in, target_out):
        (ir, labels_in), (_, labels_out) = target_in[i], target_out[o]
        try:
            r = torch.tensor([rows[ir][label] for label in labels_in])
            c = torch.tensor([cols[ir][label] for label in labels_out])
        except KeyError as missing:
            raise ConversionError(what, f"SevenNet has no channel {missing}") from None
        pieces.append(dense[ir][r[:, None], :, c[None, :]].permute(0, 2, 1).reshape(-1))
    return torch.cat(pieces) if pieces else flat.new_zeros(0)


def _conv_output_layout(conv: Any, sh: o3.Irreps) -> Layout:
    """Our convolution's output: one block per output irrep, path after path (our path order)."""
    blocks: Layout = []
    for ir, _, _ in conv.paths.groups():
        labels: list[Hashable] = []
        for p in conv.paths.paths:
            if p.ir_out == ir:
                key = (conv.irreps_in[p.i1].ir, sh[p.i2].ir, p.ir_out)
                labels += [(("p", key), u) for u in range(conv.muls[p.i1])]
        blocks.append((ir, labels))
    return blocks


def _radial_last(source: torch.Tensor, layer: _Layer, conv: Any, sh: o3.Irreps, signs: dict[Any, float], old_order: bool) -> torch.Tensor:
    """SevenNet's last radial layer ``[hidden, paths * U]`` (instruction order) -> ours (weight
    slots block after block, channels within), each path's columns times its Wigner-3j sign."""
    order = layer.created if old_order else layer.sorted_slots
    columns: dict[Any, torch.Tensor] = {}
    offset = 0
    for key, mul, _ in order:
        columns[key] = source[:, offset : offset + mul] * signs.get(key, 1.0)
        offset += mul
    if offset != source.shape[1]:
        raise ConversionError("weight_nn", f"radial network gives {source.shape[1]} weights, the paths need {offset}")
    pieces = []
    for k in conv.weight_paths.tolist():
        p = conv.paths.paths[k]
        key = (conv.irreps_in[p.i1].ir, sh[p.i2].ir, p.ir_out)
        if key not in columns:
            raise ConversionError("weight_nn", f"SevenNet has no convolution path {key}")
        pieces.append(columns[key])
    return torch.cat(pieces, dim=1)


def _w3j_signs(state: dict[str, torch.Tensor], prefix: str, layer: _Layer) -> dict[Any, float]:
    """-1 for paths whose stored Wigner-3j symbol (old e3nn) is the negative of today's."""
    signs = {}
    for key, _, _ in layer.created:
        ls = (key[0].l, key[1].l, key[2].l)
        stored = state.get(f"{prefix}.convolution._compiled_main_left_right._w3j_{ls[0]}_{ls[1]}_{ls[2]}")
        if stored is None or min(ls) == 0:
            continue
        now = o3.wigner_3j(*ls, dtype=stored.dtype)
        if torch.allclose(stored, now, atol=1e-6):
            continue
        if not torch.allclose(stored, -now, atol=1e-6):
            raise ConversionError(prefix, f"stored Wigner-3j symbol {ls} is neither today's nor its negative")
        signs[key] = -1.0
    return signs


# ---------------------------------------------------------------------- conversion
def _option(config: dict[str, Any], key: str) -> Any:
    return config.get(key, _DEFAULTS.get(key))


def _activation(source: str, value: str, option: str) -> str:
    if value not in _ACTIVATIONS:
        raise ConversionError(source, f"activation {value!r} has no counterpart here (have {sorted(_ACTIVATIONS)})", option=option)
    return _ACTIVATIONS[value]


def _architecture(source: str, config: dict[str, Any], state: dict[str, torch.Tensor], modal: str | None) -> tuple[dict[str, Any], list[_Layer], dict[str, Any]]:
    """Our NequIP config fields, SevenNet's layers and the energy statistics of a checkpoint."""
    for key, wanted in (("interaction_type", "nequip"), ("use_bias_in_linear", False), ("readout_as_fcn", False)):
        if _option(config, key) != wanted:
            raise ConversionError(source, f"{key}={_option(config, key)!r} has no counterpart in the NequIP family (only {wanted!r})", option=key)
    if config.get("cuequivariance_config", {}).get("use") or config.get("use_flash_tp") or config.get("use_oeq"):
        raise ConversionError(source, "checkpoints saved with an accelerated backend (cuEquivariance, FlashTP, "
                              "OpenEquivariance) have other weight layouts; convert the e3nn checkpoint", option="cuequivariance_config")
    if _option(config, "use_modality"):
        modal_map = config.get("_modal_map", {})
        linear = [key for key in _MODAL_LINEARS if config.get(key)]
        if linear:
            raise ConversionError(
                source,
                f"a multi-fidelity model (fidelities {sorted(modal_map)}) whose fidelity one-hot is an input of its "
                f"linear layers ({', '.join(linear)}): that is a per-fidelity bias on the scalar channels, with its own "
                "fan-in normalisation, which the NequIP family does not have, so no modal (argument modal=) converts it exactly",
                option=linear[0],
            )
        if modal is None or modal not in modal_map:
            raise ConversionError(source, f"a multi-fidelity model: choose one of {sorted(modal_map)} with modal=", option="modal")
    elif modal is not None:
        raise ConversionError(source, f"modal={modal!r} given, but the model has one fidelity only", option="modal")
    radial = config["radial_basis"]
    if radial.get("radial_basis_name") != "bessel":
        raise ConversionError(source, f"radial basis {radial.get('radial_basis_name')!r} (only bessel)", option="radial_basis")
    envelope = config["cutoff_function"]
    cutoff = float(config["cutoff"])
    fields: dict[str, Any] = {}
    if envelope.get("cutoff_function_name") == "poly_cut":
        fields.update(envelope="polynomial", num_polynomial_cutoff=int(envelope.get("poly_cut_p_value", 6)))
    elif envelope.get("cutoff_function_name") == "XPLOR":
        fields.update(envelope="xplor", envelope_on=float(envelope["cutoff_on"]))
    else:
        raise ConversionError(source, f"cutoff function {envelope.get('cutoff_function_name')!r} (poly_cut, XPLOR)", option="cutoff_function")
    lmax = int(config["lmax"])
    num_layers = int(config["num_convolution_layer"])
    for key in ("lmax_edge", "lmax_node"):
        if int(_option(config, key)) not in (-1, lmax):
            raise ConversionError(source, f"{key} differs from lmax; our NequIP has one max_ell", option=key)
    sc_types = _option(config, "self_connection_type")
    sc_types = [sc_types] * num_layers if isinstance(sc_types, str) else list(sc_types)
    if len(set(sc_types)) != 1 or sc_types[0] not in ("nequip", "linear"):
        raise ConversionError(source, f"self-connection types {sc_types}: one type for all layers (nequip or linear)", option="self_connection_type")
    parity = bool(_option(config, "is_parity"))
    irreps_filter = o3.Irreps.spherical_harmonics(lmax, p=-1 if parity else 1)
    manual = _option(config, "irreps_manual")
    channel = int(config["channel"])
    if manual is not False:
        irreps = [o3.Irreps(ir) for ir in manual]
    else:
        irreps = [o3.Irreps(f"{channel}x0e")]
        for t in range(num_layers):
            last = t == num_layers - 1
            irreps.append(_infer_irreps_out(irreps[-1], irreps_filter, 0 if last else lmax, last, channel))
    layers = [_Layer(irreps[t], irreps_filter, irreps[t + 1], t == num_layers - 1) for t in range(num_layers)]
    per_ell: dict[int, set[int]] = {}
    for mul, ir in sum(irreps[1:-1], o3.Irreps()):
        per_ell.setdefault(ir.l, set()).add(mul)
    if any(len(m) > 1 for m in per_ell.values()):
        raise ConversionError(source, f"channels differ between parities or layers ({per_ell}); ours have one count per l", option="irreps_manual")
    scalar = irreps[0][0].mul if len(irreps[0]) == 1 and irreps[0][0].ir == o3.Irrep("0e") else None
    if scalar is None or any(m != {scalar} for ell, m in per_ell.items() if ell == 0) or irreps[-1] != o3.Irreps(f"{scalar}x0e"):
        raise ConversionError(source, f"irreps {manual}: ours start and end with the same number of 0e channels", option="irreps_manual")
    features_per_ell = [scalar] + [next(iter(per_ell.get(ell, {scalar}))) for ell in range(1, lmax + 1)]
    denominators = {float(state[f"{t}_convolution.denominator"].reshape(-1)[0]) for t in range(num_layers)}
    if len(denominators) != 1:
        raise ConversionError(source, f"one convolution denominator per layer ({sorted(denominators)}); ours share one", option="conv_denominator")
    denominator = denominators.pop()
    act_scalar, act_gate = _option(config, "act_scalar"), _option(config, "act_gate")
    fields.update(
        num_layers=num_layers, num_features=scalar, max_ell=lmax, parity=parity,
        features_per_ell=None if len(set(features_per_ell)) == 1 else features_per_ell,
        num_bessel=int(radial.get("bessel_basis_num", 8)),
        bessel_basis_trainable=bool(radial.get("trainable_coeff", True)), bessel_prefactor=2.0 / cutoff,
        radial_envelope_on_hidden=False, radial_mlp=[int(n) for n in _option(config, "weight_nn_hidden_neurons")],
        radial_mlp_activation=_activation(source, _option(config, "act_radial"), "act_radial"),
        nonlinearity_scalars={k: _activation(source, act_scalar.get(k, "tanh" if k == "o" else "silu"), "act_scalar") for k in "eo"},
        nonlinearity_gates={k: _activation(source, act_gate.get(k, "tanh" if k == "o" else "silu"), "act_gate") for k in "eo"},
        self_connection=True, self_connection_type="element" if sc_types[0] == "nequip" else "linear", resnet=False,
        avg_num_neighbours=denominator**2, readout_features=irreps[-1].dim // 2,
        # SevenNet before 0.10 took the harmonics of the raw edge vectors
        normalize_edge_sh=bool(config.get("_normalize_sph", _version(config)[:2] > (0, 9))),
    )
    # energy: E = sum_i scale[Z_i] * head_i + shift[Z_i]
    shift = state["rescale_atomic_energy.shift"].double()
    scale = state["rescale_atomic_energy.scale"].double().reshape(-1)
    if _option(config, "use_modality") and config.get("use_modal_wise_shift"):
        shift = shift[config["_modal_map"][modal]]
    if _option(config, "use_modality") and config.get("use_modal_wise_scale"):
        scale = scale.reshape(len(config["_modal_map"]), -1)[config["_modal_map"][modal]]
    if not torch.all(scale == scale[0]):
        raise ConversionError(source, "a per-element energy scale; ours scale every element's energy by one number", option="scale")
    energy = {"scale": float(scale[0]), "shift": shift.reshape(-1)}
    return fields, layers, energy


def from_sevennet(
    checkpoint: str | Path, *, modal: str | None = None, model_dtype: str = "float32", **config_overrides: Any
) -> NequIPModel:
    """A SevenNet checkpoint as a ready :class:`~physicsml_like.models.NequIPModel`.

    Parameters
    ----------
    checkpoint: a SevenNet ``checkpoint_*.pth`` file (needs only torch), or the name of one
        shipped in the ``sevenn`` wheel (:data:`SHIPPED_SEVENNET`).
    modal: the fidelity of a multi-fidelity checkpoint.
    model_dtype: ``"float32"`` (SevenNet's) or ``"float64"``.
    **config_overrides: other config fields of the model (``trainer``, ``optimizer``,
        ``datamodule`` batch sizes, ...); the architecture is the checkpoint's.

    The model predicts energy, forces and stress (``predict``, ``to_ase_calculator``), saves
    and loads like any other, and ``train(data, validation_data)`` fine-tunes it from the
    pretrained weights (the element slots and energy references stay the checkpoint's), with
    the options of a ``transfer_learning={...}`` override (adapters such as LoRA, the
    references refit, replay) and no ``pretrained`` folder: the converted weights are the start.
    """
    source = str(checkpoint)
    path = shipped_sevennet_path(source) if source in SHIPPED_SEVENNET else Path(checkpoint)
    raw = read_sevennet_checkpoint(path)
    config = {**raw["config"]}
    state = _modernised_state(raw["state"])
    version = _version(config)
    fields, layers, energy = _architecture(str(path), config, state, modal)
    touched = sorted(set(config_overrides) & set(_ARCHITECTURE))
    if touched:
        raise ConversionError(path, f"{touched} are set by the checkpoint's architecture and cannot be overridden", option=touched[0])
    type_map = {int(z): int(slot) for z, slot in config["_type_map"].items()}
    elements = sorted(type_map, key=type_map.__getitem__)
    datamodule = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "y_stress": "stress",
                  **config_overrides.pop("datamodule", {}), "cut_off": float(config["cutoff"]), "elements": elements}
    model = NequIPModel(
        datamodule=datamodule, compute_forces=True, compute_stress=True, model_dtype=model_dtype,
        energy_scale=energy["scale"], energy_shift=0.0, **fields, **config_overrides,
    )
    mapping = ElementMapping(elements=tuple(elements))
    references = {z: float(energy["shift"][slot]) for z, slot in type_map.items()}
    statistics = DatasetStatistics(
        num_structures=0, num_atoms=0, elements=sorted(elements), element_counts=[0] * len(elements),
        avg_num_neighbours=fields["avg_num_neighbours"], energy_key="energy", element_reference=references,
    )
    old = version[:3] < (0, 11, 0) or (version[:3] == (0, 11, 0) and version[3] == "dev0")

    def load(network: Any) -> None:
        weights = _network_weights(str(path), state, layers, network, old=old)
        ours = network.state_dict()
        missing = [k for k, v in ours.items() if k not in weights and v.numel() and not k.endswith(("output_mask", ".bias"))]
        if missing:
            raise ConversionError(path, f"no SevenNet tensor for {missing}")
        with torch.no_grad():
            for key, value in weights.items():
                if ours[key].shape != value.shape:
                    raise ConversionError(path, f"{key}: SevenNet gives {tuple(value.shape)}, ours is {tuple(ours[key].shape)}")
                ours[key].copy_(value.to(ours[key].dtype))

    model._hold_pretrained(statistics, mapping, output_spec(model.config, mapping, 0), load)
    return model


def _network_weights(source: str, state: dict[str, torch.Tensor], layers: list[_Layer], network: Any, old: bool) -> dict[str, torch.Tensor]:
    """Our network's tensors from SevenNet's state dict."""
    out: dict[str, torch.Tensor] = {"radial.basis.frequencies": state["edge_embedding.basis_function.coeffs"].reshape(-1)}
    sh = network.irreps_sh
    num_attrs = network.embedding.irreps_in.dim
    attrs: Layout = [(o3.Irrep("0e"), [("z", z) for z in range(num_attrs)])]
    out["embedding.weight"] = _recut(state["onehot_to_feature_x.linear.weight"], attrs, _labelled("x", layers[0].irreps_x),
                                     attrs, _labelled("x", network.embedding.irreps_out), 1, "onehot_to_feature_x")
    if len(network.blocks) != len(layers):
        raise ConversionError(source, "layer count differs", option="num_convolution_layer")
    for t, (layer, block) in enumerate(zip(layers, network.blocks, strict=True)):
        if sorted(map(str, block.irreps_out)) != sorted(map(str, layer.irreps_out)):
            raise ConversionError(source, f"layer {t}: SevenNet gives {layer.irreps_out}, ours {block.irreps_out}", option="irreps_manual")
        prefix = f"blocks.{t}"
        x_theirs, x_ours = _labelled("x", layer.irreps_x), _labelled("x", block.irreps_in)
        out[f"{prefix}.linear_1.weight"] = _recut(state[f"{t}_self_interaction_1.linear.weight"], x_theirs, x_theirs,
                                                  x_ours, x_ours, 1, f"{t}_self_interaction_1")
        conv = block.conv
        mid_theirs: Layout = [(key[2], [(("p", key), u) for u in range(mul)]) for key, mul, _ in layer.sorted_slots]
        out[f"{prefix}.linear_2.weight"] = _recut(state[f"{t}_self_interaction_2.linear.weight"], mid_theirs, layer.gate_in,
                                                  _conv_output_layout(conv, sh), _our_gate(block), 1, f"{t}_self_interaction_2")
        gate_ours = _our_gate(block)
        if block.self_connection_type == "linear":
            out[f"{prefix}.self_connection.weight"] = _recut(state[f"{t}_self_connection_intro.linear.weight"], x_theirs, layer.gate_in,
                                                             x_ours, gate_ours, 1, f"{t}_self_connection_intro")
        else:
            out[f"{prefix}.self_connection.weight"] = _recut(state[f"{t}_self_connection_intro.fc_tensor_product.weight"], x_theirs,
                                                             layer.gate_in, x_ours, gate_ours, num_attrs, f"{t}_self_connection_intro")
        hidden = conv.radial.hidden.weights
        for k in range(len(hidden)):
            out[f"{prefix}.conv.radial.hidden.weights.{k}"] = state[f"{t}_convolution.weight_nn.layer{k}.weight"]
        signs = _w3j_signs(state, f"{t}_convolution", layer) if old else {}
        last = state[f"{t}_convolution.weight_nn.layer{len(hidden)}.weight"]
        out[f"{prefix}.conv.radial.last"] = _radial_last(last, layer, conv, sh, signs, old)
    final = _labelled("x", layers[-1].irreps_out)
    head_in = _labelled("x", network.energy_head[0].irreps_in)
    hidden_head = _labelled("x", network.energy_head[0].irreps_out)
    out["energy_head.0.weight"] = _recut(state["reduce_input_to_hidden.linear.weight"], final, hidden_head, head_in, hidden_head, 1, "reduce_input_to_hidden")
    energy_out = _labelled("x", network.energy_head[1].irreps_out)
    out["energy_head.1.weight"] = _recut(state["reduce_hidden_to_energy.linear.weight"], hidden_head, energy_out, hidden_head, energy_out, 1, "reduce_hidden_to_energy")
    return out

