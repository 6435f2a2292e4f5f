"""Reading a line of digits with the string model: its frames, and the digits they spell.

The string model (`stringmodel.h5`) reads a line from `mnist_style.to_line` — 28 rows, any width
that is a multiple of 4 — and gives one frame per few columns (its poolings decide how many):
eleven probabilities, the ten digits and the CTC blank ("no new digit here"). Decoding is greedy:
each frame's most likely class, repeats collapsed, blanks dropped. A digit's *run* is the stretch
of frames whose most likely class it is.

- A digit's ten probabilities are its run's digit probabilities summed over the run's frames
  (blank left out) and renormalised: the frames that say most clearly that a digit is there
  count most.
- A digit that greedy decoding found is dropped again when the reading without it is more
  likely over all alignments (the CTC forward algorithm): a wide single digit sometimes fires
  two runs, while the whole-line probability knows one digit explains the frames better.
- Each digit owns the columns from the cut before it to the cut after it, a cut being the
  column with the least ink between two neighbouring runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits.reading.keras_file import CLASSES, STRING_MODEL, load_network

BLANK = CLASSES  # the eleventh class


@dataclass(frozen=True)
class LineDigit:
    """One digit read in a line."""

    digit: int
    probabilities: np.ndarray  # (10,) float32, index = digit, sums to 1
    frames: tuple[int, int]  # its run, first and last frame
    centre: float  # the line column its run is centred on
    columns: tuple[int, int]  # [x0, x1) of the line that belong to it


class StringModel:
    """The string model loaded from a Keras .h5 file through the safe reader; read-only, so
    threads may share it."""

    def __init__(self, network):
        self.network = network

    @classmethod
    def load(cls, path) -> StringModel:
        """The model in `path`; ModelError (one line) when it is missing, corrupt or refused."""
        return cls(load_network(path, STRING_MODEL))

    def read(self, line: np.ndarray) -> list[LineDigit]:
        """The digits in a (28, W) line from `to_line`, left to right."""
        frames = self.network(line[None, :, :, None])[0, 0]
        return digits_in_frames(frames, line)


def digits_in_frames(frames: np.ndarray, line: np.ndarray) -> list[LineDigit]:
    """The digits that (T, 11) frame probabilities spell in their (28, 4·T) line."""
    runs = [run for run in _runs(np.argmax(frames, axis=-1)) if run[0] != BLANK]
    runs = _most_likely_runs(frames, runs)
    if not runs:
        return []
    centres = [_frame_centre(line, frames, (first + last) / 2) for _, first, last in runs]
    cuts = _cuts(line, centres)
    digits = []
    spans = zip(runs, centres, cuts[:-1], cuts[1:], strict=True)
    for (label, first, last), centre, start, stop in spans:
        mass = frames[first : last + 1, :BLANK].sum(axis=0)
        digits.append(LineDigit(label, mass / mass.sum(), (first, last), centre, (start, stop)))
    return digits


def greedy_labels(frames: np.ndarray) -> list[int]:
    """Greedy CTC: each frame's most likely class, repeats collapsed, blanks dropped."""
    return [label for label, _, _ in _runs(np.argmax(frames, axis=-1)) if label != BLANK]


def _runs(best: np.ndarray) -> list[tuple[int, int, int]]:
    """(label, first, last) of each stretch of equal frame labels, blanks included."""
    starts = np.flatnonzero(np.diff(best, prepend=-1) != 0)
    ends = np.append(starts[1:], len(best)) - 1
    return [(int(best[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def _most_likely_runs(frames: np.ndarray, runs: list) -> list:
    """The greedy runs, or the runs less one when that reading is more probable."""
    if len(runs) < 2:
        return runs
    candidates = [runs] + [runs[:i] + runs[i + 1 :] for i in range(len(runs))]
    return max(candidates, key=lambda kept: sequence_probability(frames, [r[0] for r in kept]))


def _frame_centre(line: np.ndarray, frames: np.ndarray, frame: float) -> float:
    """The line column on which a frame's view is centred: a frame stands for `step` columns
    (the poolings' stride), and poolings of 'same' convolutions centre it on their middle."""
    step = line.shape[1] / len(frames)
    return step * frame + (step - 1) / 2


def _cuts(line: np.ndarray, centres: list[float]) -> list[int]:
    """Column boundaries of the digits centred on `centres`: the ink's first column, the emptiest
    column between each pair of neighbours (a column away from either centre, where a thin
    digit's own faint edge would otherwise look emptiest), the ink's end."""
    ink = line.sum(axis=0)
    columns = np.flatnonzero(ink > 0.1 * ink.max()) if ink.max() > 0 else [0, len(ink) - 1]
    cuts = [min(int(columns[0]), int(centres[0]))]
    for left, right in zip(centres[:-1], centres[1:], strict=True):
        low, high = int(np.ceil(left + 1)), int(np.floor(right - 1)) + 1
        if high <= low:
            cut = round((left + right) / 2)
        else:
            between = ink[low:high]
            candidates = np.flatnonzero(between == between.min()) + low
            # Ties go to the middle.
            cut = int(candidates[np.argmin(np.abs(candidates - (left + right) / 2))])
        cuts.append(max(cut, cuts[-1] + 1))
    cuts.append(max(int(columns[-1]) + 1, cuts[-1] + 1))
    return cuts


def sequence_probability(frames: np.ndarray, labels: list[int]) -> float:
    """P(labels | frames) under CTC: the sum over all alignments (the forward algorithm)."""
    extended = [BLANK]
    for label in labels:
        extended += [label, BLANK]
    states = len(extended)
    # A state may skip the blank before it when it is a digit unlike the digit two states back.
    skip = np.array(
        [s >= 2 and extended[s] != BLANK and extended[s] != extended[s - 2] for s in range(states)]
    )
    alpha = np.zeros(states)
    alpha[0] = frames[0, BLANK]
    if states > 1:
        alpha[1] = frames[0, extended[1]]
    log_scale = 0.0
    for t in range(1, len(frames)):
        previous = alpha
        alpha = previous.copy()
        alpha[1:] += previous[:-1]
        alpha[2:] += np.where(skip[2:], previous[:-2], 0.0)
        alpha *= frames[t, extended]
        total = alpha.sum()
        if total <= 0:
            return 0.0
        alpha /= total  # rescaled against underflow; the scales multiply back in log space
        log_scale += np.log(total)
    ending = alpha[-1] + (alpha[-2] if states > 1 else 0.0)
    return float(np.exp(log_scale) * ending) if ending > 0 else 0.0
