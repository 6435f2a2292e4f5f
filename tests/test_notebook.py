"""Digit Recognition.ipynb runs headless, top to bottom, with small parameters."""

import hashlib
import json
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest

from digits.predict import Classifier

REPOSITORY = Path(__file__).resolve().parent.parent
NOTEBOOK = REPOSITORY / "Digit Recognition.ipynb"
# Every figure the story promises: samples, balance, pixels, fonts, augmentation, curves,
# confusion matrix, misclassified digits, the example picture.
EXPECTED_FIGURES = 9


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def outputs_of(notebook, mime):
    return [
        output["data"][mime]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if mime in output.get("data", {})
    ]


def test_notebook_has_one_parameters_cell_near_the_top():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [
        index
        for index, cell in enumerate(notebook.cells)
        if "parameters" in cell.metadata.get("tags", [])
    ]
    assert len(tagged) == 1 and tagged[0] < 5


@pytest.mark.slow
@pytest.mark.mnist
def test_notebook_trains_a_small_model_into_a_temporary_folder(
    tmp_path, committed_model, monkeypatch
):
    # The kernel inherits this process's environment: with MPLBACKEND=Agg (bench.common sets it
    # when test_bench imports it) matplotlib draws off-screen and the notebook shows no figure.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    committed_before = digest(committed_model)
    model_path = tmp_path / "model.h5"
    executed = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(executed),
        parameters={
            "EPOCHS": 2,
            "TRAIN_SUBSET": 3000,
            "VALIDATION_SIZE": 500,
            "FONT_DIGITS": 300,
            "MODEL_PATH": str(model_path),
        },
        cwd=str(REPOSITORY),
        kernel_name="python3",
        progress_bar=False,
    )
    assert digest(committed_model) == committed_before, "the committed bestmodel.h5 was touched"

    classifier = Classifier.load(model_path)
    assert classifier.probabilities(np.zeros((1, 28, 28))).shape == (1, 10)

    notebook = nbformat.read(executed, as_version=4)
    assert len(outputs_of(notebook, "image/png")) >= EXPECTED_FIGURES
    summary = outputs_of(notebook, "application/json")[-1]
    summary = summary if isinstance(summary, dict) else json.loads(summary)
    assert 1 <= summary["epochs_run"] <= 2
    assert summary["test_accuracy"] > 0.8
    assert summary["model_file_bytes"] == model_path.stat().st_size
