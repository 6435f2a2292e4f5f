"""A model file cannot reach outside itself: external storage and links, soft links leading out,
virtual datasets and filter plugins are refused; only the arrays the layers need are read, within
a byte budget. tests/test_reliability_models.py shows, through the command line, that the other
file is never even opened."""

import h5py
import numpy as np
import pytest

from digits.reading import hdf5_safety
from digits.reading.engine import ModelError
from digits.reading.hdf5_safety import SealedFile
from digits.reading.keras_file import Classifier
from tests.reading.hostile_files import (
    KERNEL,
    KERNEL_SHAPE,
    REACHING_OUT,
    target_file,
    unread_hostile_dataset,
)
from tests.reading.model_files import dense_model, input_layer, layer, softmax, write_model


@pytest.fixture
def kernel():
    return np.random.default_rng(3).normal(size=KERNEL_SHAPE).astype(np.float32)


@pytest.mark.parametrize(("make", "refusal"), REACHING_OUT.values(), ids=REACHING_OUT)
def test_h5py_itself_takes_the_kernel_from_the_other_file(tmp_path, kernel, make, refusal):
    # The files are hostile: read the plain way, their kernel is the other file's content.
    target = target_file(tmp_path / "target", make, kernel)
    model = make(tmp_path / "model.h5", target)
    with h5py.File(model, "r") as file:
        np.testing.assert_array_equal(np.asarray(file[KERNEL]), kernel)


@pytest.mark.parametrize(("make", "refusal"), REACHING_OUT.values(), ids=REACHING_OUT)
def test_a_model_file_that_reaches_outside_itself_is_refused(tmp_path, kernel, make, refusal):
    target = target_file(tmp_path / "target", make, kernel)
    with pytest.raises(ModelError, match=refusal) as refused:
        Classifier.load(make(tmp_path / "model.h5", target))
    assert str(refused.value).startswith("refused: ")
    assert "\n" not in str(refused.value)


def test_datasets_no_layer_needs_are_never_looked_at(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(np.ones(10, "<f4").tobytes())
    model = unread_hostile_dataset(tmp_path / "model.h5", target)
    with h5py.File(model, "r") as file:
        kernel = np.asarray(file[KERNEL])
        bias = np.asarray(file["model_weights/dense/sequential/dense/bias"])
    images = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)

    probabilities = Classifier.load(model).probabilities(images)

    expected = softmax(images.reshape(4, 784).astype(np.float64) @ kernel + bias)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def model_with_kernel(path, **dataset_options):
    """The dense model, its kernel rewritten with h5py's dataset options (filters, chunks)."""
    _, kernel, _ = dense_model(path)
    with h5py.File(path, "r+") as file:
        del file[KERNEL]
        file.create_dataset(KERNEL, data=kernel, **dataset_options)
    return path, kernel


def test_hdf5s_own_filters_are_read(tmp_path):
    path, kernel = model_with_kernel(
        tmp_path / "gzip.h5", compression="gzip", shuffle=True, fletcher32=True
    )
    reference, _, _ = dense_model(tmp_path / "plain.h5")
    images = np.random.default_rng(1).random((3, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(
        Classifier.load(path).probabilities(images),
        Classifier.load(reference).probabilities(images),
    )


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        ({"compression": "lzf"}, r"the HDF5 filter 32000 \('lzf'\)"),
        (  # Blosc's registered number: HDF5 would look for a plugin to load
            {"compression": 32001, "allow_unknown_filter": True},
            r"the HDF5 filter 32001 .*no plugin is loaded",
        ),
        ({"chunks": (1024, 1024), "maxshape": (None, None)}, "chunks of 4,194,304 bytes"),
    ],
    ids=["lzf", "plugin", "outsized chunk"],
)
def test_unexpected_storage_is_refused_before_reading(tmp_path, options, refusal):
    path, _ = model_with_kernel(tmp_path / "stored.h5", **options)
    with pytest.raises(ModelError, match=refusal):
        Classifier.load(path)


def test_a_small_file_cannot_claim_a_huge_kernel(tmp_path):
    units = 100_000  # 784 × 100,000 float32: 314 MB, over the budget
    layers = [input_layer(), layer("Flatten", "flatten"), layer("Dense", "dense", units=units)]
    path = write_model(tmp_path / "huge.h5", layers)
    with h5py.File(path, "r+") as file:
        group = file["model_weights"].create_group("dense")
        # Chunked and never written: HDF5 stores nothing, the file stays a few kilobytes.
        group.create_dataset("sequential/dense/kernel", (784, units), "<f4", chunks=(784, 100))
        group.attrs["weight_names"] = ["sequential/dense/kernel"]
    assert path.stat().st_size < 20_000
    with pytest.raises(ModelError, match="over 200 MB"):
        Classifier.load(path)


def test_the_budget_counts_every_array_read(tmp_path):
    with h5py.File(tmp_path / "two.h5", "w") as file:
        file["first"] = np.ones(1000, np.float32)
        file["second"] = np.ones(1000, np.float32)
    with h5py.File(tmp_path / "two.h5", "r") as file:
        sealed = SealedFile(file, max_bytes=6000)
        assert sealed.read(sealed.get("first"), "first").sum() == 1000
        with pytest.raises(ModelError, match="'second' would take the weights over"):
            sealed.read(sealed.get("second"), "'second'")


def test_the_budget_holds_a_few_digit_models(committed_model):
    assert 10 * committed_model.stat().st_size < hdf5_safety.MAX_WEIGHT_BYTES
