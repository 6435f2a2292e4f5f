"""CTC decoding of the string model's frames: greedy labels, the sequence probability, the drop-one
rescoring, and each digit's probabilities and columns."""

import itertools

import numpy as np
import pytest

from digits.reading.ctc import BLANK, digits_in_frames, greedy_labels, sequence_probability


def frames_of(path: list[int], certainty: float = 0.9) -> np.ndarray:
    """Frames whose most likely classes follow `path`, each with probability `certainty`."""
    frames = np.full((len(path), BLANK + 1), (1 - certainty) / BLANK)
    frames[np.arange(len(path)), path] = certainty
    return frames


def collapsed(path) -> list[int]:
    return [label for label, _ in itertools.groupby(path) if label != BLANK]


def brute_force_probability(frames: np.ndarray, labels: list[int]) -> float:
    """The sum over every path of classes that collapses to `labels`."""
    total = 0.0
    for path in itertools.product(range(BLANK + 1), repeat=len(frames)):
        if collapsed(path) == labels:
            total += np.prod(frames[np.arange(len(frames)), path])
    return total


def test_greedy_decoding_collapses_repeats_and_drops_blanks():
    frames = frames_of([BLANK, 3, 3, BLANK, 3, BLANK, 5, 5, 7])
    assert greedy_labels(frames) == [3, 3, 5, 7]


@pytest.mark.parametrize("labels", [[], [2], [2, 2], [4, 1], [1, 1, 1]])
def test_sequence_probability_sums_over_every_alignment(labels):
    rng = np.random.default_rng(len(labels))
    frames = rng.dirichlet(np.ones(BLANK + 1), size=5)
    assert sequence_probability(frames, labels) == pytest.approx(
        brute_force_probability(frames, labels), rel=1e-9
    )


def test_a_doubtful_extra_digit_is_dropped_when_the_line_is_likelier_without_it():
    frames = frames_of([BLANK, 4, 4, 4, 7, BLANK, BLANK, BLANK])
    # The 7 wins its frame narrowly; "no new digit" and "still the 4" share the rest.
    frames[4] = 0.0
    frames[4, 7], frames[4, BLANK], frames[4, 4] = 0.35, 0.33, 0.32
    line = np.zeros((28, 32), np.float32)
    line[4:24, 4:20] = 1
    assert greedy_labels(frames) == [4, 7]
    assert sequence_probability(frames, [4]) > sequence_probability(frames, [4, 7])
    assert [digit.digit for digit in digits_in_frames(frames, line)] == [4]


def test_each_digit_gets_its_runs_probabilities_and_the_columns_up_to_the_emptiest_cut():
    frames = frames_of([BLANK, 7, 7, BLANK, BLANK, 2, BLANK, BLANK])
    frames[2, 1] += 0.05  # a little doubt about the 7, which the run's mass keeps
    frames[2] /= frames[2].sum()
    line = np.zeros((28, 32), np.float32)
    line[4:24, 3:13] = 1  # the 7's ink
    line[4:24, 15:25] = 1  # the 2's ink; columns 13 and 14 are blank
    seven, two = digits_in_frames(frames, line)
    assert (seven.digit, two.digit) == (7, 2)
    assert seven.probabilities.sum() == pytest.approx(1)
    assert seven.probabilities[1] > seven.probabilities[3] > 0
    assert seven.columns == (3, 14) and two.columns == (14, 25)


def test_a_line_without_digits_reads_nothing():
    assert digits_in_frames(frames_of([BLANK] * 6), np.zeros((28, 24), np.float32)) == []
