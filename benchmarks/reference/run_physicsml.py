"""Train physicsml's MACE or NequIP on one job of the reference comparison (runs in physicsml's
own virtual environment; see ``benchmarks/reference_comparison.py``).

physicsml reads a HuggingFace ``datasets.Dataset`` whose columns its datamodule names:
``physicsml_atom_numbers`` (each atom's element index, 0..num_elements-1),
``physicsml_coordinates`` and the label columns. It takes one cell for the whole dataset
(``datamodule.cell``/``pbc``), which is why the periodic benchmark keeps the cell fixed.

physicsml does not derive normalisation from the data: the per-element reference energies
(``physicsml_total_atomic_energy``, added to the predicted energy), the scale of the per-atom
outputs (``scaling_std``) and the neighbour-sum normaliser (``avg_num_neighbours``; 1 when not
given) come from the job, computed from the training split as the other codes compute them for
themselves.
"""

from __future__ import annotations

import time
from typing import Any

from _common import (
    ENERGY_KEY,
    FORCES_KEY,
    Stopwatch,
    prediction_errors,
    read_frames,
    read_job,
    set_threads,
    time_lightning_epochs,
    training_numbers,
    write_result,
)


def dataset(frames: list[Any], job: dict[str, Any]) -> Any:
    """The columns physicsml's datamodule reads, one row a structure."""
    import datasets

    slot = {z: k for k, z in enumerate(job["elements"])}
    reference = {int(z): e for z, e in job["statistics"]["element_energy"].items()}
    return datasets.Dataset.from_dict({
        "physicsml_atom_numbers": [[slot[int(z)] for z in f.numbers] for f in frames],
        "physicsml_coordinates": [f.positions.tolist() for f in frames],
        "physicsml_total_atomic_energy": [float(sum(reference[int(z)] for z in f.numbers)) for f in frames],
        "energy": [float(f.info[ENERGY_KEY]) for f in frames],
        "forces": [f.arrays[FORCES_KEY].tolist() for f in frames],
    })


def architecture(job: dict[str, Any]) -> dict[str, Any]:
    """physicsml's names for the job's hyperparameters."""
    arch = job["architecture"]
    if job["family"] == "mace":
        radial = arch["radial_mlp"]
        if radial != [64, 64, 64]:
            raise ValueError(f"physicsml's MACE has a fixed radial MLP [64, 64, 64], not {radial}")
        return {
            "hidden_irreps": arch["hidden_irreps"], "max_ell": arch["max_ell"], "correlation": arch["correlation"],
            "num_interactions": arch["num_interactions"], "num_bessel": arch["num_bessel"],
            "num_polynomial_cutoff": arch["num_polynomial_cutoff"], "mlp_irreps": arch["mlp_irreps"],
        }
    if arch["radial_mlp"] != [64, 64]:
        raise ValueError(f"physicsml's NequIP has a fixed radial MLP [64, 64], not {arch['radial_mlp']}")
    return {
        "num_layers": arch["num_layers"], "num_features": arch["num_features"], "max_ell": arch["max_ell"],
        "parity": arch["parity"], "num_bessel": arch["num_bessel"], "bessel_basis_trainable": arch["bessel_basis_trainable"],
        "num_polynomial_cutoff": arch["num_polynomial_cutoff"], "self_connection": True, "resnet": True,
        "mlp_irreps": f"{arch['readout_features']}x0e",
    }


def main() -> None:
    job = read_job()
    set_threads(job)
    from molflux.modelzoo import load_from_dict

    stopwatch = Stopwatch()
    time_lightning_epochs(stopwatch)
    train, validation, test = (read_frames(job[split]) for split in ("train", "validation", "test"))
    stats = job["statistics"]
    batch = {"batch_size": job["batch_size"]}
    config = {
        "x_features": ["physicsml_atom_numbers", "physicsml_coordinates", "physicsml_total_atomic_energy"],
        "y_features": ["energy", "forces"],
        "compute_forces": True,
        "datamodule": {
            "y_graph_scalars": ["energy"], "y_node_vector": "forces", "num_elements": len(job["elements"]),
            "cut_off": job["cutoff"], "pbc": tuple(job["pbc"]) if job["cell"] is not None else None, "cell": job["cell"],
            "pre_batch": "in_memory", "train": batch, "validation": batch, "predict": batch,
        },
        **architecture(job),
        "num_node_feats": len(job["elements"]),  # the one-hot element encoding is the node input
        "avg_num_neighbours": stats["avg_num_neighbours"],
        "scaling_mean": 0.0,
        "scaling_std": stats["force_rms"],
        # total energy, mean over structures; force components, mean over all of them
        "y_graph_scalars_loss_config": {"name": "MSELoss", "weight": job["energy_weight"]},
        "y_node_vector_loss_config": {"name": "MSELoss", "weight": job["forces_weight"]},
        "optimizer": {"name": "Adam", "config": {"lr": job["lr"], "amsgrad": True}},
        "scheduler": None,  # constant learning rate (the default would be ReduceLROnPlateau)
        "trainer": {
            "max_epochs": job["epochs"], "accelerator": "cpu", "devices": 1, "logger": False,
            "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False,
            "num_sanity_val_steps": 0, "default_root_dir": job["workdir"],
        },
    }
    model = load_from_dict({"name": f"{job['family']}_model", "config": config})
    start = time.perf_counter()
    model.train(train_data=dataset(train, job), validation_data=dataset(validation, job))
    result = training_numbers(job, stopwatch, time.perf_counter() - start)
    result["parameters"] = sum(p.numel() for p in model.module.parameters() if p.requires_grad)

    test_data = dataset(test, job)
    start = time.perf_counter()
    predictions = model.predict(test_data)
    result["predict_structures_per_s"] = len(test) / (time.perf_counter() - start)
    energy = next(v for k, v in predictions.items() if k.endswith("::energy"))
    forces = next(v for k, v in predictions.items() if k.endswith("::forces"))
    result.update(prediction_errors(test, energy, forces))
    result["code"] = "physicsml"
    write_result(job, result)


if __name__ == "__main__":
    main()
