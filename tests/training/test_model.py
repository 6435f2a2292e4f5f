"""The network, and the committed bestmodel.h5."""

import keras
import numpy as np
import pytest

from digits.training.model import build_model
from digits.training.recipe import to_model_input

# The README's figure for the committed model is 99.66%; this guards it. The target of
# 99.70% is not reached yet: raise this bound to 0.9970 with the model that reaches it.
REQUIRED_TEST_ACCURACY = 0.9960


def test_model_maps_28x28_images_to_10_probabilities():
    model = build_model()
    probabilities = model.predict(np.random.default_rng(0).random((3, 28, 28, 1)), verbose=0)
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_mixed_precision_model_still_outputs_float32():
    model = build_model(dtype="mixed_bfloat16")
    assert model.layers[0].compute_dtype == "bfloat16"
    assert model.layers[-1].compute_dtype == "float32"


@pytest.mark.mnist
@pytest.mark.slow
def test_committed_model_meets_the_accuracy_target(mnist, committed_model):
    _, (x_test, y_test) = mnist
    model = keras.models.load_model(committed_model)
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)
    probabilities = model.predict(to_model_input(x_test), batch_size=1000, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    accuracy = (probabilities.argmax(axis=1) == y_test).mean()
    assert accuracy >= REQUIRED_TEST_ACCURACY, f"test accuracy {accuracy:.4%}"
