"""Models saved by earlier versions of the package still load and predict the same.

The folders under ``saved/`` were written by ``make_saved_models.py`` before targets became
typed objects and family hyperparameters got shared names; each holds the predictions it made
then (``expected.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from physicsml_like import load_model

from .make_saved_models import CASES, HERE, structures


def _flat(values: object) -> np.ndarray:
    if isinstance(values, list) and values and isinstance(values[0], list | np.ndarray):
        return np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in values])
    return np.asarray(values, dtype=np.float64).reshape(-1)


@pytest.mark.filterwarnings("ignore:.*the old name still loads:DeprecationWarning")  # saved with the old names
@pytest.mark.parametrize("case", sorted(CASES))
def test_saved_model_predicts_as_before(case: str, tmp_path: Path) -> None:
    folder = HERE / case
    expected = json.loads((folder / "expected.json").read_text())
    model = load_model(folder)
    periodic = "y_stress" in CASES[case][2]
    predicted = model.predict(structures(periodic), trainer_config={"default_root_dir": str(tmp_path)})
    assert set(predicted) == set(expected)
    for name, values in expected.items():
        old, new = _flat(values), _flat(predicted[name])
        assert np.abs(old).max() > 1e-6, f"{case}: {name} is trivially zero"
        np.testing.assert_allclose(new, old, rtol=1e-6, atol=1e-6, err_msg=f"{case}: {name}")
