"""Write a mace-torch ``.model`` file as plain tensors and a JSON of its hyperparameters.

Run this file with the Python of an environment that has mace-torch, never with this package's::

    /path/to/mace-env/bin/python mace_torch_export.py MODEL.model OUTPUT_FOLDER

It is a standalone script: it imports nothing of this package (this package's environment never
imports mace-torch, which pins its own e3nn and switches off PyTorch's safe loading). A
``.model`` file is a pickle of mace-torch's classes, so reading it runs code from the file: it
is read here with ``torch.load(weights_only=False)``, in the separate mace-torch process, and
must be a file you trust. What it writes is safe to read anywhere: ``state.pt`` holds plain
tensors only (read back with ``torch.load(weights_only=True)``) and ``mace_torch.json`` the
hyperparameters; :func:`physicsml_like.pretrained.from_mace_torch` turns the folder into a
model of this package. The folder is written under a temporary name and renamed, so an
interrupted export never leaves a folder that reads as complete.

Every option of the model that shapes its computation is recorded, including those this package
has no counterpart for (distance transforms, pair repulsion, other interaction classes, radial
bases, several heads, ...), so that the converter can refuse them by name.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

FORMAT = "physicsml_like/mace-torch-state"
FORMAT_VERSION = 1
STATE_FILE = "state.pt"
META_FILE = "mace_torch.json"
SPARSE_SUFFIXES = (":indices", ":values")
"""A tensor kept as its non-zero entries: ``name:indices`` ``[ndim, nnz]`` and ``name:values``."""


def _name(function: Any) -> str | None:
    """The name of an activation as mace-torch keeps it (a function, maybe inside e3nn's
    ``normalize2mom``)."""
    if function is None:
        return None
    inner = getattr(function, "f", function)
    return str(getattr(inner, "__name__", type(inner).__name__))


def _irreps(value: Any) -> str | None:
    return None if value is None else str(value)


def _tolist(value: Any) -> Any:
    return value.detach().cpu().double().tolist() if hasattr(value, "detach") else value


def hyperparameters(model: Any) -> dict[str, Any]:
    """Everything of ``model`` that the converter checks or uses, as JSON values."""
    import torch

    interactions = list(model.interactions)
    products = list(model.products)
    readouts = list(model.readouts)
    radial = model.radial_embedding
    first_radial_mlp = interactions[0].conv_tp_weights
    radial_layers = [m for name, m in first_radial_mlp.named_children() if name.startswith("layer")]
    radial_act = next((layer.act for layer in radial_layers if getattr(layer, "act", None) is not None), None)
    last = readouts[-1] if readouts else None
    gate = None
    if last is not None and hasattr(last, "non_linearity"):
        acts = getattr(last.non_linearity, "acts", None)
        gate = _name(acts[0]) if acts else None
    correlations = []
    for product in products:
        contraction = product.symmetric_contractions.contractions[0]
        correlations.append(int(getattr(contraction, "correlation", len(contraction.weights) + 1)))
    atomic_energies = model.atomic_energies_fn.atomic_energies
    scale_shift = getattr(model, "scale_shift", None)
    parameters = next(model.parameters())
    return {
        "model_class": type(model).__name__,
        "dtype": str(parameters.dtype).removeprefix("torch."),
        "r_max": float(model.r_max),
        "num_interactions": int(model.num_interactions),
        "atomic_numbers": [int(z) for z in model.atomic_numbers.tolist()],
        "atomic_energies": _tolist(atomic_energies),
        "avg_num_neighbors": [float(block.avg_num_neighbors) for block in interactions],
        "scale": _tolist(scale_shift.scale) if scale_shift is not None else None,
        "shift": _tolist(scale_shift.shift) if scale_shift is not None else None,
        "heads": list(getattr(model, "heads", ["Default"])),
        # radial basis and envelope
        "radial_type": type(radial.bessel_fn).__name__,
        "num_bessel": int(radial.out_dim),
        "num_polynomial_cutoff": int(radial.cutoff_fn.p),
        "distance_transform": type(radial.distance_transform).__name__ if hasattr(radial, "distance_transform") else None,
        "apply_cutoff": bool(getattr(radial, "apply_cutoff", True)),
        "pair_repulsion": hasattr(model, "pair_repulsion_fn"),
        # edges
        "max_ell": int(model.spherical_harmonics._lmax),
        "spherical_harmonics_irreps": _irreps(model.spherical_harmonics.irreps_out),
        "spherical_harmonics_normalize": bool(getattr(model.spherical_harmonics, "normalize", True)),
        "spherical_harmonics_normalization": str(getattr(model.spherical_harmonics, "normalization", "component")),
        # layers
        "node_embedding": _irreps(model.node_embedding.linear.irreps_out),
        "interaction_classes": [type(block).__name__ for block in interactions],
        "interaction_node_irreps": [_irreps(block.node_feats_irreps) for block in interactions],
        "interaction_edge_irreps": [_irreps(getattr(block, "edge_irreps", block.node_feats_irreps)) for block in interactions],
        "interaction_target_irreps": [_irreps(block.target_irreps) for block in interactions],
        "radial_mlp": [int(h) for h in first_radial_mlp.hs[1:-1]],
        "radial_mlps": [[int(h) for h in block.conv_tp_weights.hs] for block in interactions],
        "radial_mlp_activation": _name(radial_act),
        "product_classes": [type(product).__name__ for product in products],
        "product_irreps": [_irreps(product.linear.irreps_out) for product in products],
        "product_use_sc": [bool(product.use_sc) for product in products],
        "correlation": correlations,
        "hidden_irreps": _irreps(products[0].linear.irreps_out),
        "readout_classes": [type(readout).__name__ for readout in readouts],
        "mlp_irreps": _irreps(getattr(last, "hidden_irreps", None)),
        "gate": gate,
        # options of newer mace-torch versions; absent from older files means off
        "use_reduced_cg": bool(getattr(model, "use_reduced_cg", False)),
        "use_so3": bool(getattr(model, "use_so3", False)),
        "use_agnostic_product": bool(getattr(model, "use_agnostic_product", False)),
        "use_last_readout_only": bool(getattr(model, "use_last_readout_only", False)),
        "use_edge_irreps_first": bool(getattr(model, "use_edge_irreps_first", False)),
        "edge_irreps": _irreps(getattr(model, "edge_irreps", None)),
        "embedding_specs": sorted(getattr(model, "embedding_specs", None) or []) or None,
        "embedding_readout": hasattr(model, "embedding_readout"),
        "cueq_config": repr(getattr(model, "cueq_config", None)) if getattr(model, "cueq_config", None) is not None else None,
        "oeq_config": repr(getattr(model, "oeq_config", None)) if getattr(model, "oeq_config", None) is not None else None,
        "lammps_mliap": bool(getattr(model, "lammps_mliap", False)),
        "torch_version": torch.__version__,
    }


def export(model: Any, output: Path, source: str = "") -> Path:
    """Write ``model`` (a loaded mace-torch model) into the folder ``output``."""
    import torch

    try:
        import importlib.metadata as metadata

        mace_version = metadata.version("mace-torch")
    except Exception:
        mace_version = "unknown"
    meta: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "mace_torch_version": mace_version,
                            "source": source, "hyperparameters": hyperparameters(model)}
    state: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    sparse: dict[str, list[int]] = {}
    seen: list[tuple[str, torch.Tensor]] = []
    for name, tensor in model.state_dict().items():
        value = tensor.detach().cpu().contiguous().clone()
        # the coupling coefficients of the product basis are the largest tensors of a small
        # model, over 99% zeros, and repeat from layer to layer: each distinct one is kept once,
        # as its non-zero entries (SPARSE_SUFFIXES) and its shape
        if "U_matrix" in name:
            twin = next((other for other, kept in seen if kept.shape == value.shape and kept.dtype == value.dtype
                         and torch.equal(kept, value)), None)
            if twin is not None:
                aliases[name] = twin
                continue
            seen.append((name, value))
            indices = torch.nonzero(value).T.contiguous()
            state[name + SPARSE_SUFFIXES[0]] = indices.to(torch.int64)
            state[name + SPARSE_SUFFIXES[1]] = value[tuple(indices)].contiguous()
            sparse[name] = list(value.shape)
            continue
        state[name] = value
    meta["aliases"] = aliases
    meta["sparse"] = sparse
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir()
    try:
        torch.save(state, tmp / STATE_FILE)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        if output.exists():
            old = output.with_name(f".{output.name}.{uuid.uuid4().hex[:8]}.old")
            output.rename(old)
            tmp.rename(output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python mace_torch_export.py MODEL.model OUTPUT_FOLDER", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    model_file, output = Path(argv[0]), Path(argv[1])
    if not model_file.is_file():
        print(f"no such file: {model_file}", file=sys.stderr)
        return 1
    try:
        import mace.modules  # noqa: F401  (the classes the pickle names)
    except ImportError:
        print(f"mace-torch is not installed in {sys.executable}; run this script with the Python of an "
              "environment that has it (pip install mace-torch)", file=sys.stderr)
        return 1
    # a .model file is a pickled module: this runs code from the file (trusted files only)
    model = torch.load(model_file, map_location="cpu", weights_only=False)
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "interactions"):
        print(f"{model_file} does not hold a mace-torch model (found {type(model).__name__})", file=sys.stderr)
        return 1
    export(model, output, source=model_file.name)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
