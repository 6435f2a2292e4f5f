"""Reliability of `python interface.py` against hostile and broken model files (--model, and the
default bestmodel.h5 beside the script): each gives one line on standard error and exit status 2,
and no code in a file ever runs.

tests/test_predict.py proves the engine's refusals (every layer off the whitelist, shapes,
damaged files, a Keras-built Lambda that Keras itself would run) and tests/test_interface.py the
command line's for a missing, non-HDF5, truncated, dummy-Lambda and wrong-input file; this adds
what neither covers: a Lambda whose stored code is live (it would create a file), the wrong
number of outputs, a model_config nested deeply enough to exhaust a recursive parser, non-finite
weights, a bad default model beside a copy of interface.py, and files that point outside
themselves (tests/reading/hostile_files.py), whose other file is shown never to be opened.
"""

import base64
import json
import marshal
import os
import re
import shutil
import types
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.reading.hostile_files import REACHING_OUT, unread_hostile_dataset, watched_fifo
from tests.test_reliability_inputs import EXIT_OK, error_lines, number, random_model, run_cli

REPO = Path(__file__).resolve().parent.parent
EXIT_USAGE = 2


def payload(x, path):
    """What the hostile Lambda runs: leaves a file behind as proof, passes its input on."""
    open(path, "w").close()  # noqa: SIM115 - the file is the evidence
    return x


def stored_function(function) -> dict:
    """A function as Keras stores a Lambda's: its marshalled bytecode, base64 (func_dump)."""
    code = base64.b64encode(marshal.dumps(function.__code__)).decode("ascii")
    return {"class_name": "__lambda__", "config": {"code": code, "defaults": None, "closure": None}}


def loaded_function(stored: dict):
    """What Keras's func_load does with it when a file is loaded with safe_mode=False."""
    code = marshal.loads(base64.b64decode(stored["config"]["code"]))
    return types.FunctionType(code, {"open": open})


def rewrite_config(path: Path, change) -> Path:
    """The model file with its model_config JSON passed through change(config)."""
    with h5py.File(path, "r+") as file:
        config = json.loads(file.attrs["model_config"])
        change(config)
        file.attrs["model_config"] = json.dumps(config)
    return path


def hostile_model(path: Path, marker: Path) -> Path:
    lambda_layer = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": "payload",
            "function": stored_function(payload),
            "function_type": "lambda",
            "arguments": {"path": str(marker)},
        },
        "registered_name": None,
    }
    return rewrite_config(
        random_model(path), lambda config: config["config"]["layers"].insert(1, lambda_layer)
    )


def twelve_outputs(path: Path) -> Path:
    with h5py.File(random_model(path), "r+") as file:
        config = json.loads(file.attrs["model_config"])
        config["config"]["layers"][-1]["config"]["units"] = 12
        file.attrs["model_config"] = json.dumps(config)
        group = file["model_weights/dense"]
        kernel, bias = (
            name.decode() if isinstance(name, bytes) else name
            for name in group.attrs["weight_names"]
        )
        del group[kernel], group[bias]
        group.create_dataset(kernel, data=np.zeros((784, 12), np.float32))
        group.create_dataset(bias, data=np.zeros(12, np.float32))
    return path


def deeply_nested_config(path: Path) -> Path:
    with h5py.File(random_model(path), "r+") as file:
        file.attrs["model_config"] = "[" * 200_000 + "]" * 200_000
    return path


def non_finite_weights(path: Path) -> Path:
    with h5py.File(random_model(path), "r+") as file:
        kernel = file["model_weights/dense/sequential/dense/kernel"]
        kernel[0, 0], kernel[1, 1] = np.nan, np.inf
    return path


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    """A folder holding one picture with a digit (the model must be refused before it is read)."""
    folder = tmp_path_factory.mktemp("picture")
    number("7").save(folder / "seven.png")
    return folder


def assert_refused(outcome, model_name: str, message: str) -> None:
    assert outcome.status == EXIT_USAGE, outcome
    assert outcome.stdout == ""
    errors = error_lines(outcome.stderr)
    assert list(errors) == [model_name]
    assert message in errors[model_name]


def test_a_lambda_with_live_code_is_refused_and_its_code_never_runs(picture, tmp_path):
    marker = tmp_path / "the_lambda_ran"
    model = hostile_model(tmp_path / "hostile.h5", marker)
    # The stored code is live: loaded as Keras loads it, it leaves the marker.
    with h5py.File(model) as file:
        stored = json.loads(file.attrs["model_config"])["config"]["layers"][1]["config"]
    loaded_function(stored["function"])(0, **stored["arguments"])
    assert marker.exists()
    marker.unlink()

    outcome = run_cli(picture, "seven.png", model=model)

    assert_refused(outcome, str(model), "refused: layer 'payload' is a 'Lambda'")
    assert not marker.exists()


BROKEN = {
    "12 outputs": (twelve_outputs, "model gives 12 outputs; this program needs 28×28×1 → 10"),
    "model_config nested 200000 deep": (deeply_nested_config, "not valid JSON"),
}


@pytest.mark.parametrize(("make", "message"), BROKEN.values(), ids=BROKEN)
def test_a_broken_model_is_refused_with_one_line(picture, tmp_path, make, message):
    model = make(tmp_path / "broken.h5")
    assert_refused(run_cli(picture, "seven.png", model=model), str(model), message)


def test_non_finite_weights_are_refused(picture, tmp_path):
    model = non_finite_weights(tmp_path / "nan.h5")
    assert_refused(run_cli(picture, "seven.png", model=model), str(model), "NaN or infinity")


@pytest.fixture
def interface_copy(tmp_path) -> Path:
    """interface.py copied into a fresh folder with the package beside it, and no model there."""
    folder = tmp_path / "app"
    folder.mkdir()
    shutil.copy(REPO / "interface.py", folder)
    os.symlink(REPO / "digits", folder / "digits")
    return folder


def garbage(path: Path, _marker: Path) -> Path:
    path.write_bytes(b"<html>404 Not Found</html>\n")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [(garbage, "not a model file (not HDF5)"), (hostile_model, "is a 'Lambda'")],
    ids=["not HDF5", "live Lambda"],
)
def test_a_bad_default_bestmodel_is_refused(picture, interface_copy, tmp_path, make, message):
    marker = tmp_path / "the_lambda_ran"
    default = make(interface_copy / "bestmodel.h5", marker)
    outcome = run_cli(picture, "seven.png", model=None, interface=interface_copy / "interface.py")
    assert_refused(outcome, str(default), message)
    assert not marker.exists()


@pytest.mark.parametrize(("make", "refusal"), REACHING_OUT.values(), ids=REACHING_OUT)
def test_a_model_pointing_outside_itself_is_refused_and_the_other_file_never_opened(
    picture, tmp_path, make, refusal
):
    model = make(tmp_path / "model.h5", tmp_path / "target")
    with watched_fifo(tmp_path / "target") as opened:
        outcome = run_cli(picture, "seven.png", model=model)
    assert opened == []
    assert_refused(outcome, str(model), "refused: ")
    assert re.search(refusal, error_lines(outcome.stderr)[str(model)])


def test_a_pointer_outside_the_file_that_no_layer_needs_is_never_followed(picture, tmp_path):
    model = unread_hostile_dataset(tmp_path / "model.h5", tmp_path / "target")
    with watched_fifo(tmp_path / "target") as opened:
        outcome = run_cli(picture, "seven.png", model=model)
    assert opened == []
    assert outcome.status == EXIT_OK, outcome
    assert outcome.stdout.startswith("seven.png: ")
