"""Readings and their JSON shape."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from digits.reading.readings import UNCERTAIN_BELOW, reading_from

TOLERANCE = 1e-4  # max abs difference allowed between our probabilities and Keras's


def fake_digit(box):
    return SimpleNamespace(pixels=np.zeros((28, 28), np.float32), box=box)


def probabilities_row(digit: int, confidence: float) -> np.ndarray:
    row = np.full(10, (1 - confidence) / 9, np.float32)
    row[digit] = confidence
    return row


def test_reading_json_has_the_documented_fields():
    rows = np.stack([probabilities_row(4, 0.99), probabilities_row(2, 0.6)])
    reading = reading_from([fake_digit((1, 2, 30, 40)), fake_digit((35, 2, 60, 41))], rows)

    answer = json.loads(json.dumps(reading.to_json("number.png")))

    assert set(answer) == {"file", "prediction", "confidence", "uncertain", "digits"}
    assert answer["file"] == "number.png"
    assert answer["prediction"] == "42"
    assert answer["confidence"] == pytest.approx(0.99 * 0.6)
    assert answer["uncertain"] is True
    first, second = answer["digits"]
    assert set(first) == {"digit", "confidence", "probabilities", "box", "uncertain"}
    assert (first["digit"], first["box"], first["uncertain"]) == (4, [1, 2, 30, 40], False)
    assert first["confidence"] == pytest.approx(0.99)
    assert len(first["probabilities"]) == 10 and sum(first["probabilities"]) == pytest.approx(1)
    assert (second["digit"], second["uncertain"]) == (2, True)


def test_uncertain_means_top_probability_below_the_documented_threshold():
    assert UNCERTAIN_BELOW == 0.80
    for confidence, uncertain in [(0.79, True), (0.81, False)]:
        reading = reading_from([fake_digit((0, 0, 1, 1))], probabilities_row(3, confidence)[None])
        assert reading.digits[0].uncertain is uncertain
        assert reading.uncertain is uncertain


def test_a_picture_without_digits_reads_as_empty():
    reading = reading_from([], np.empty((0, 10)))
    assert reading.to_json("blank.png") == {
        "file": "blank.png",
        "prediction": "",
        "confidence": 0,
        "uncertain": False,
        "digits": [],
    }
