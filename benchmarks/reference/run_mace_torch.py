"""Train mace-torch's MACE on one job of the reference comparison, or time molecular dynamics
with the model it trained (runs in mace-torch's own virtual environment; see
``benchmarks/reference_comparison.py``).

Training goes through mace-torch's command-line entry point (``mace_run_train``) in this
process, so its own data pipeline, statistics (``--E0s average``, ``--scaling
rms_forces_scaling``, average neighbour count) and training loop run as a user would run them.
The only addition is a stopwatch around its ``train_one_epoch``, which leaves validation out of
the epoch time as for the other codes.

Settings that differ from mace-torch's defaults, so that every code trains the same way:

- ``--loss weighted`` averages the squared energy error per atom; every structure of a dataset
  here has the same atom count ``N``, so ``--energy_weight w N²`` is exactly a loss on the total
  energy with weight ``w``. Forces: the mean over all components, as the others.
- constant learning rate: ``--scheduler ExponentialLR --lr_scheduler_gamma 1.0`` (the default
  ReduceLROnPlateau would not fire in so few epochs, but this makes it certain);
- no gradient clipping (``--clip_grad None``; default 10), no weight decay (default 5e-7),
  no EMA and no SWA (their defaults are off);
- the model of the last epoch, as the other codes give: mace-torch saves a checkpoint only when
  the validation loss improves and ends with the latest one, the best epoch's, unless told
  ``--save_all_checkpoints``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    ENERGY_KEY,
    FORCES_KEY,
    Stopwatch,
    md_frames,
    prediction_errors,
    read_frames,
    read_job,
    set_threads,
    time_md,
    training_numbers,
    write_result,
)

NAME = "mace"


def command_line(job: dict[str, Any]) -> list[str]:
    """``mace_run_train`` arguments for the job."""
    arch = job["architecture"]
    sizes = {len(f) for f in read_frames(job["train"])}
    if len(sizes) != 1:
        raise ValueError(f"the total-energy loss needs one atom count per dataset, found {sorted(sizes)}")
    n_atoms = sizes.pop()
    work = Path(job["workdir"])
    return [
        f"--name={NAME}", f"--work_dir={work}", f"--log_dir={work / 'logs'}", f"--model_dir={work}",
        f"--checkpoints_dir={work / 'checkpoints'}", f"--results_dir={work / 'results'}",
        f"--train_file={job['train']}", f"--valid_file={job['validation']}",
        f"--energy_key={ENERGY_KEY}", f"--forces_key={FORCES_KEY}", "--E0s=average",
        "--model=MACE", "--interaction_first=RealAgnosticInteractionBlock",
        "--interaction=RealAgnosticResidualInteractionBlock",
        f"--hidden_irreps={arch['hidden_irreps']}", f"--max_ell={arch['max_ell']}",
        f"--correlation={arch['correlation']}", f"--num_interactions={arch['num_interactions']}",
        f"--num_radial_basis={arch['num_bessel']}", f"--num_cutoff_basis={arch['num_polynomial_cutoff']}",
        f"--MLP_irreps={arch['mlp_irreps']}", f"--radial_MLP={arch['radial_mlp']}", f"--r_max={job['cutoff']}",
        "--scaling=rms_forces_scaling",
        f"--batch_size={job['batch_size']}", f"--valid_batch_size={job['batch_size']}",
        f"--max_num_epochs={job['epochs']}", "--eval_interval=1",
        "--loss=weighted", f"--energy_weight={job['energy_weight'] * n_atoms**2}", f"--forces_weight={job['forces_weight']}",
        "--optimizer=adam", f"--lr={job['lr']}", "--amsgrad", "--weight_decay=0.0",
        "--scheduler=ExponentialLR", "--lr_scheduler_gamma=1.0", "--clip_grad=None",
        "--default_dtype=float32", "--device=cpu", f"--seed={job['seed']}", "--num_workers=0",
        "--error_table=TotalMAE", "--save_cpu", "--plot=False", "--save_all_checkpoints",
    ]


def load(job: dict[str, Any], workdir: str) -> Any:
    import torch

    return torch.load(Path(workdir) / f"{NAME}.model", map_location="cpu", weights_only=False)


def predict(model: Any, frames: list[Any], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Energies and forces as ``mace_eval_configs`` computes them: mace-torch's own graphs,
    batches and forward pass."""
    from mace import data
    from mace.cli.eval_configs import get_model_output
    from mace.tools import torch_geometric, utils

    configs = [data.config_from_atoms(atoms) for atoms in frames]
    table = utils.AtomicNumberTable([int(z) for z in model.atomic_numbers])
    graphs = [data.AtomicData.from_config(c, z_table=table, cutoff=float(model.r_max), heads=getattr(model, "heads", None)) for c in configs]
    loader = torch_geometric.dataloader.DataLoader(dataset=graphs, batch_size=batch_size, shuffle=False, drop_last=False)
    energies, forces = [], []
    for batch in loader:
        output = get_model_output(model, batch.to_dict(), False, False)
        energies.append(output["energy"].detach().numpy())
        forces.append(output["forces"].detach().numpy())
    return np.concatenate(energies), np.concatenate(forces)


def train(job: dict[str, Any]) -> None:
    import importlib

    from mace.cli import run_train

    # the module itself: ``mace.tools.train`` as an attribute is the function of that name
    mace_train = importlib.import_module("mace.tools.train")

    stopwatch = Stopwatch()
    one_epoch = mace_train.train_one_epoch
    initial: list[Any] = []

    def timed_epoch(*args: Any, **kwargs: Any) -> None:
        if not initial:  # the weights before training, to count those it changes
            initial.extend(p.detach().clone() for p in kwargs["model"].parameters() if p.requires_grad)
        stopwatch.start()
        one_epoch(*args, **kwargs)
        stopwatch.stop()

    mace_train.train_one_epoch = timed_epoch
    sys.argv = ["mace_run_train", *command_line(job)]
    start = time.perf_counter()
    run_train.main()
    result = training_numbers(job, stopwatch, time.perf_counter() - start)

    model = load(job, job["workdir"])
    trainable = [p.detach() for p in model.parameters() if p.requires_grad]
    result["parameters"] = sum(p.numel() for p in trainable)
    result["updated_parameters"] = int(sum((a != b).sum() for a, b in zip(initial, trainable, strict=True)))
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    test = read_frames(job["test"])
    start = time.perf_counter()
    energy, forces = predict(model, test, job["batch_size"])
    result["predict_structures_per_s"] = len(test) / (time.perf_counter() - start)
    result.update(prediction_errors(test, energy, forces))
    result["code"] = "mace-torch"
    write_result(job, result)


def molecular_dynamics(job: dict[str, Any]) -> None:
    from mace.calculators import MACECalculator

    atoms = md_frames(job)
    atoms.calc = MACECalculator(model_paths=str(Path(job["trained_workdir"]) / f"{NAME}.model"), device="cpu",
                                default_dtype=job["md"]["dtype"])
    timing = time_md(atoms, job)
    # MACECalculator computes the stress at every step of a MACE model
    result: dict[str, Any] = {"code": "mace-torch", "md_dtype": job["md"]["dtype"]}
    result.update({f"{key}[forces_stress]": value for key, value in timing.items()})
    result["peak_rss_gib"] = timing["peak_rss_gib"]
    write_result(job, result)


def main() -> None:
    job = read_job()
    set_threads(job)
    {"train": train, "md": molecular_dynamics}[job["task"]](job)


if __name__ == "__main__":
    main()
