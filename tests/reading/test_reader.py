"""The reading API: batching many pictures' digits through the network."""

import numpy as np

from digits.reading.keras_file import Classifier
from digits.reading.reader import SPLIT_DIGIT_MODEL_WEIGHT, UNSURE_SPLIT, Reader
from digits.reading.segment import DigitImage
from tests.reading.helpers import committed_string_model
from tests.reading.model_files import dense_model

TOLERANCE = 1e-4  # max abs difference allowed between our probabilities and Keras's


def test_read_digit_images_answers_each_picture_in_one_batch(tmp_path):
    classifier = Classifier.load(dense_model(tmp_path / "dense.h5")[0])
    rng = np.random.default_rng(3)
    pictures = [
        [DigitImage(rng.random((28, 28), dtype=np.float32), (i, 0, i + 1, 1))] * count
        for i, count in enumerate([2, 0, 3])
    ]
    readings = Reader(classifier, committed_string_model()).read_digit_images(pictures)

    assert [len(reading.digits) for reading in readings] == [2, 0, 3]
    for picture, reading in zip(pictures, readings, strict=True):
        for digit_image, digit in zip(picture, reading.digits, strict=True):
            expected = classifier.probabilities(digit_image.pixels[None])[0]
            np.testing.assert_allclose(digit.probabilities, expected, atol=1e-7)
            assert digit.digit == int(np.argmax(expected))
            assert digit.box == digit_image.box


def test_digits_the_string_model_read_keep_its_probabilities(tmp_path):
    classifier = Classifier.load(dense_model(tmp_path / "dense.h5")[0])
    pixels = np.zeros((28, 28), np.float32)
    split = np.full(10, 0.01, np.float32)
    split[6] = 0.91
    pictures = [[DigitImage(pixels, (0, 0, 5, 9), split), DigitImage(pixels, (5, 0, 9, 9))]]
    (reading,) = Reader(classifier, committed_string_model()).read_digit_images(pictures)
    first, second = reading.digits
    assert first.digit == 6 and first.probabilities == [float(p) for p in split]
    np.testing.assert_allclose(
        second.probabilities, classifier.probabilities(pixels[None])[0], atol=1e-7
    )


def test_a_split_digit_the_string_model_is_unsure_of_is_read_by_the_digit_model_too(tmp_path):
    classifier = Classifier.load(dense_model(tmp_path / "dense.h5")[0])
    pixels = np.zeros((28, 28), np.float32)
    digit_model = classifier.probabilities(pixels[None])[0]
    # The string model leans to the digit the digit model finds least likely, unsure of it.
    least, most = int(np.argmin(digit_model)), int(np.argmax(digit_model))
    split = np.full(10, 0.03, np.float32)
    split[least], split[most] = 0.4, 0.36
    assert split.max() < UNSURE_SPLIT
    pictures = [[DigitImage(pixels, (0, 0, 5, 9), split / split.sum())]]
    ((digit,),) = [
        r.digits for r in Reader(classifier, committed_string_model()).read_digit_images(pictures)
    ]
    weighted = split / split.sum() * digit_model.astype(np.float64) ** SPLIT_DIGIT_MODEL_WEIGHT
    np.testing.assert_allclose(digit.probabilities, weighted / weighted.sum(), rtol=1e-5)
    assert digit.digit == most


def test_a_whole_digit_both_models_read_gets_their_normalised_product(tmp_path):
    classifier = Classifier.load(dense_model(tmp_path / "dense.h5")[0])
    pixels = np.zeros((28, 28), np.float32)
    digit_model = classifier.probabilities(pixels[None])[0]
    # The string model is sure of the digit the digit model finds least likely.
    least = int(np.argmin(digit_model))
    string_reading = np.full(10, 1e-6, np.float32)
    string_reading[least] = 1 - 9e-6
    pictures = [[DigitImage(pixels, (0, 0, 5, 9), None, string_reading)]]
    ((digit,),) = [
        r.digits for r in Reader(classifier, committed_string_model()).read_digit_images(pictures)
    ]
    expected = digit_model * string_reading / (digit_model * string_reading).sum()
    np.testing.assert_allclose(digit.probabilities, expected, rtol=1e-5)
    assert digit.digit == least


# --- against Keras itself (imports TensorFlow, once for the module) ---
