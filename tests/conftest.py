"""Fixtures shared by the test modules."""

import pytest

from digits.data import load_mnist


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST as load_mnist() gives it, read-only so no test can change it for the others.

    ((x_train, y_train), (x_test, y_test)); CI fills the default cache beforehand.
    """
    splits = load_mnist()
    for array in (array for split in splits for array in split):
        array.flags.writeable = False
    return splits
