"""Write the saved-model fixtures that ``test_saved_models.py`` reloads.

Each family is saved once (small architecture, untrained weights perturbed so that every output
is non-zero) together with its predictions on a fixed set of structures. The fixtures were made
with the package as it was before targets became typed objects and hyperparameters were renamed;
the test proves that such a folder still loads and predicts the same.

Run from the repository root: ``python tests/compat/make_saved_models.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent / "saved"

MOLECULE = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 4.0}
DIPOLE = {"y_graph_vector": "dipole", "y_node_scalars": ["charges"]}
PERIODIC = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "y_stress": "stress", "cut_off": 4.0}

# name -> (family, architecture, datamodule targets, extra config fields)
CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "egnn_molecule": ("egnn_model", {"c_hidden": 8, "num_layers": 2, "num_rbf": 4, "num_polynomial_cutoff": 6}, {**MOLECULE, **DIPOLE}, {}),
    "egnn_two_scalars": ("egnn_model", {"c_hidden": 8, "num_layers": 2, "num_rbf": 4}, {"y_graph_scalars": ["energy", "homo"], "cut_off": 4.0}, {"compute_forces": False}),
    "painn_periodic": ("painn_model", {"num_features": 8, "num_bessel": 4, "num_layers": 2}, PERIODIC, {"compute_stress": True}),
    "painn_molecule": ("painn_model", {"num_features": 8, "num_bessel": 4, "num_layers": 2}, {**MOLECULE, **DIPOLE}, {"uncertainty": "mean_var"}),
    "tensornet_molecule": ("tensornet_model", {"num_features": 8, "num_radial": 4, "num_interaction_layers": 2}, {**MOLECULE, "y_node_scalars": ["charges"]}, {}),
    "ani_molecule": ("ani_model", {"hidden_sizes": [16, 8], "which_ani": None}, {**MOLECULE, "y_node_scalars": ["charges"]}, {}),
    "mace_molecule": ("mace_model", {"hidden_irreps": "4x0e + 4x1o", "max_ell": 2, "correlation": 2, "num_interactions": 2, "radial_mlp": [8]}, {**MOLECULE, **DIPOLE}, {}),
    "mace_periodic": ("mace_model", {"hidden_irreps": "4x0e + 4x1o", "max_ell": 2, "correlation": 2, "num_interactions": 2, "radial_mlp": [8]}, PERIODIC, {"compute_stress": True, "ema": {"decay": 0.9}}),
    "nequip_molecule": ("nequip_model", {"num_features": 4, "num_layers": 2, "max_ell": 1, "radial_mlp": [8]}, {**MOLECULE, **DIPOLE}, {}),
    "allegro_periodic": ("allegro_model", {"env_embed_multiplicity": 4, "num_layers": 2, "max_ell": 1, "two_body_latent_mlp_latent_dimensions": [8], "latent_mlp_latent_dimensions": [8], "mlp_latent_dimensions": [8]}, PERIODIC, {"compute_stress": True}),
}


def structures(periodic: bool) -> list[Any]:
    from physicsml_like.datasets import load_dataset

    if periodic:
        frames = load_dataset("cu_emt")
        return [frames[0], frames[5]]
    frames = [load_dataset("ethanol")[i] for i in (0, 11, 40)]
    for i, frame in enumerate(frames):  # a second graph scalar that is not an energy
        frame.info["homo"] = i - 0.5
    return frames


def _lists(values: Any) -> Any:
    if isinstance(values, list):
        return [np.asarray(v).tolist() for v in values]
    return np.asarray(values).tolist()


def make(root: Path = HERE) -> None:
    from physicsml_like import load_from_dict

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for case, (family, arch, datamodule, extra) in CASES.items():
        periodic = "y_stress" in datamodule
        frames = structures(periodic)
        config = {
            "datamodule": {**datamodule, "train": {"batch_size": 4}},
            "compute_forces": extra.get("compute_forces", True),
            "model_dtype": "float64",
            "trainer": {"max_epochs": 1, "default_root_dir": str(root / "_runs"), "enable_progress_bar": False},
            **arch,
            **{k: v for k, v in extra.items() if k != "compute_forces"},
        }
        model = load_from_dict({"name": family, "config": config}).initialise(frames)
        network = model.module.inference_network()
        generator = torch.Generator().manual_seed(7)
        with torch.no_grad():  # untrained heads may start at zero: move every weight off it
            for parameter in network.parameters():
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
            if network is not model.module.network:
                model.module.network.load_state_dict(network.state_dict())
        model.save(root / case)
        prediction = model.predict(frames)
        (root / case / "expected.json").write_text(json.dumps({k: _lists(v) for k, v in prediction.items()}))
    shutil.rmtree(root / "_runs", ignore_errors=True)


if __name__ == "__main__":
    make()
