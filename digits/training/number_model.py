"""The string model: a small fully-convolutional network that reads a line of digits with CTC.

Input: a line from `digits.reading.mnist_style.to_line`, (28, W, 1) floats in [0, 1], W a multiple
of 4. Output: (1, W/2, 11) probabilities, one frame per FRAME_STRIDE = 2 columns; classes 0–9
are the digits and 10 is the CTC blank. Two frames per 4 columns, because CTC needs a blank frame
between two equal digits: two 1s that touch stand 4–6 columns apart in a line, which one frame
per 4 columns cannot spell as "11" (the second pooling halves the rows only).

Only layers on the numpy engine's whitelist are used (Conv2D, Dense, BatchNormalization,
Activation, MaxPooling2D, Dropout, in one Sequential chain), so no Reshape: the last convolution's
kernel spans the remaining 7 rows and collapses them, and the Dense layer acts on the last axis of
every frame.

Cost: about 517 k multiply-adds per input column (14.5 M per 28 columns, 0.6 of the digit model's
25 M per digit). Two convolutions at 14 rows, then three at 7 rows give each frame a receptive
field 24 columns wide, more than a digit: enough to see where a digit ends and its neighbour
begins. (In the prototype, the second 14-row convolution was worth more than widening
the 7-row ones at twice their cost, or a hidden per-frame Dense layer.)
"""

import keras
from keras import layers

from digits.reading.ctc import BLANK
from digits.reading.mnist_style import FIELD

NUM_CLASSES = BLANK + 1  # ten digits and the blank
FRAME_STRIDE = 2  # line columns per output frame: the poolings' strides along the width


def build_model(dropout=0.2, dtype="float32", softmax=True):
    """The uncompiled network. `softmax=False` ends in logits, which the CTC loss wants; the saved
    model ends in a softmax, as the numpy engine requires. Same weights either way."""

    def convolution(filters, kernel=3, padding="same"):
        # No bias: batch normalisation, which follows, adds its own shift.
        return layers.Conv2D(filters, kernel, padding=padding, use_bias=False, dtype=dtype)

    def normalise_and_activate():
        # momentum 0.9, as in the digit model: the statistics keep up within a short run.
        return [
            layers.BatchNormalization(momentum=0.9, dtype=dtype),
            layers.Activation("relu", dtype=dtype),
        ]

    return keras.Sequential(
        [
            keras.Input((FIELD, None, 1)),
            # Full resolution is the costliest: one narrow convolution, normalised nowhere.
            layers.Conv2D(16, 3, padding="same", activation="relu", dtype=dtype),
            layers.MaxPooling2D(dtype=dtype),
            convolution(32),
            *normalise_and_activate(),
            convolution(48),
            layers.MaxPooling2D((2, 1), dtype=dtype),  # normalising after pooling costs half
            *normalise_and_activate(),
            convolution(64),
            *normalise_and_activate(),
            convolution(64),
            *normalise_and_activate(),
            convolution(64),
            *normalise_and_activate(),
            # The remaining 7 rows collapse into one: a frame's features see the whole height.
            convolution(128, kernel=(7, 1), padding="valid"),
            *normalise_and_activate(),
            layers.Dropout(dropout, dtype=dtype),
            layers.Dense(NUM_CLASSES, activation="softmax" if softmax else None, dtype="float32"),
        ],
        name="string_cnn",
    )


def ctc_loss(targets, logits):
    """CTC loss of (N, 2 + max digits) targets against (N, 1, T, 11) logits.

    Each target row is [frames, digits, d1 …] as `number_lines.number_lines` makes it: the line's
    own frame count (padding frames past it do not count) and its digits.
    """
    targets = keras.ops.cast(targets, "int32")
    return keras.ops.ctc_loss(
        targets[:, 2:],
        keras.ops.squeeze(logits, axis=1),
        target_length=targets[:, 1],
        output_length=targets[:, 0],
        mask_index=BLANK,
    )
