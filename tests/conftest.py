"""Fixtures shared by the test modules: the real MNIST and the committed model."""

from pathlib import Path

import pytest

from digits.reading import Reader
from digits.reading.keras_file import Classifier
from digits.training.mnist import load_mnist
from tests.reading.helpers import committed_string_model

# The product's model: every test that needs a trained model uses this one file, and fails (never
# skips, never falls back to another model) when it is missing.
COMMITTED_MODEL = Path(__file__).resolve().parent.parent / "bestmodel.h5"


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST as load_mnist() gives it, read-only so no test can change it for the others.

    ((x_train, y_train), (x_test, y_test)); CI fills the default cache beforehand.
    """
    splits = load_mnist()
    for array in (array for split in splits for array in split):
        array.flags.writeable = False
    return splits


@pytest.fixture(scope="session")
def committed_model() -> Path:
    """The path of the committed bestmodel.h5; fails when it is missing."""
    if not COMMITTED_MODEL.is_file():
        pytest.fail(f"{COMMITTED_MODEL} is missing: the tests need the committed model")
    return COMMITTED_MODEL


@pytest.fixture(scope="session")
def classifier(committed_model) -> Classifier:
    """The committed model, loaded once by the numpy engine."""
    return Classifier.load(committed_model)


@pytest.fixture(scope="session")
def reader(classifier) -> Reader:
    """The reading API with the committed models, as interface.py and the board use it."""
    return Reader(classifier, committed_string_model())
