"""Digit Recognition.ipynb: one parameters cell, outputs that come from its code, a headless run
with small settings, and the same model as the benchmarks' path from the same settings."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest

from digits.reading.keras_file import Classifier

REPOSITORY = Path(__file__).resolve().parent.parent
NOTEBOOK = REPOSITORY / "Digit Recognition.ipynb"
# Every figure the story promises: samples, balance, pixels, augmentation, curves, confusion
# matrix, misclassified digits, the example picture's digits.
EXPECTED_FIGURES = 8
# Small settings that the benchmarks' path reaches as `--epochs 2 --train-subset 3000`: the recipe
# scales the validation set (5,000 of 60,000) to 250 of 3,000.
SMALL = {"EPOCHS": 2, "TRAIN_SUBSET": 3000, "VALIDATION_SIZE": 250, "FONT_DIGITS": 0}


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


def summary_of(notebook) -> dict:
    summary = outputs_of(notebook, "application/json")[-1]
    return summary if isinstance(summary, dict) else json.loads(summary)


def code_digest(notebook) -> str:
    """The hash the summary cell computes of the code its kernel ran, from the cells themselves."""
    sources = [cell.source.strip() for cell in notebook.cells if cell.cell_type == "code"]
    return hashlib.sha256("\n\0".join(sources).encode()).hexdigest()


def model_weights(path) -> list:
    """The model's weight arrays in layer order (names differ with how many models a process
    built before, so they are not compared)."""
    import keras

    return keras.models.load_model(path, compile=False).get_weights()


def test_notebook_has_one_parameters_cell_near_the_top():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [
        index
        for index, cell in enumerate(notebook.cells)
        if "parameters" in cell.metadata.get("tags", [])
    ]
    assert len(tagged) == 1 and tagged[0] < 5


def test_the_committed_outputs_come_from_the_committed_code():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code_cells] == list(range(1, len(code_cells) + 1))
    summary = summary_of(notebook)
    assert summary["code_sha256"] == code_digest(notebook), (
        "a code cell changed after the committed run: run the notebook again "
        '(papermill "Digit Recognition.ipynb" "Digit Recognition.ipynb")'
    )


def test_the_committed_model_is_the_notebooks():
    summary = summary_of(nbformat.read(NOTEBOOK, as_version=4))
    assert summary["model_sha256"] == digest(REPOSITORY / "bestmodel.h5")
    assert summary["config"]["model_path"] == "bestmodel.h5"


@pytest.mark.slow
@pytest.mark.mnist
def test_a_small_run_matches_the_benchmarks_path_weight_for_weight(
    tmp_path, committed_model, monkeypatch
):
    # The kernel inherits this process's environment: with MPLBACKEND=Agg (bench.common sets it
    # when test_bench imports it) matplotlib draws off-screen and the notebook shows no figure.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    committed_before = digest(committed_model)
    model_path = tmp_path / "notebook.h5"
    executed = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(executed),
        parameters={**SMALL, "MODEL_PATH": str(model_path)},
        cwd=str(REPOSITORY),
        kernel_name="python3",
        progress_bar=False,
    )
    assert digest(committed_model) == committed_before, "the committed bestmodel.h5 was touched"

    classifier = Classifier.load(model_path)
    assert classifier.probabilities(np.zeros((1, 28, 28))).shape == (1, 10)
    notebook = nbformat.read(executed, as_version=4)
    assert len(outputs_of(notebook, "image/png")) >= EXPECTED_FIGURES
    summary = summary_of(notebook)
    assert 1 <= summary["epochs_run"] <= 2
    assert summary["test_accuracy"] > 0.8
    assert summary["model_file_bytes"] == model_path.stat().st_size
    assert summary["code_sha256"] == code_digest(notebook)  # papermill's injected cell included

    bench_path = tmp_path / "bench.h5"
    subprocess.run(
        [sys.executable, "-m", "bench.train_once", "ours", "--epochs", str(SMALL["EPOCHS"]),
         "--train-subset", str(SMALL["TRAIN_SUBSET"]), "--test-subset", "100",
         "--model-path", str(bench_path)],
        cwd=REPOSITORY, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    ours, theirs = model_weights(model_path), model_weights(bench_path)
    assert len(ours) == len(theirs) > 10
    for index, (weights, same) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_array_equal(weights, same, err_msg=f"weight array {index}")
