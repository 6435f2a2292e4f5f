"""The CNN that reads one digit.

The network is a small VGG-style stack sized for a laptop CPU: two 3×3 convolutions at each of
three resolutions (28×28, 14×14, 7×7), batch normalisation, then dropout and a dense softmax over
the 7×7 feature maps. Most of the cost sits at full resolution, so the 28×28 convolutions are narrow
and normalised only after pooling, and the width is spent at 7×7 where it is cheap.
"""

import keras
from keras import layers

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def build_model(dropout=0.3, dtype="float32"):
    """Return the uncompiled classifier: (28, 28, 1) floats in [0, 1] → 10 probabilities.

    `dtype` is a Keras dtype policy; "mixed_bfloat16" trains faster on CPUs with bfloat16
    instructions (see `recipe.fastest_dtype_policy`). The softmax always runs in float32.
    """

    def convolution(filters):
        # No bias: batch normalisation, which follows, adds its own shift.
        return layers.Conv2D(filters, 3, padding="same", use_bias=False, dtype=dtype)

    def normalise_and_activate():
        # The statistics follow the batches faster than Keras's default (momentum 0.99), which would
        # lag behind the weights in a run of only a few thousand steps and spoil validation.
        return [
            layers.BatchNormalization(momentum=0.9, dtype=dtype),
            layers.Activation("relu", dtype=dtype),
        ]

    def pool():
        return layers.MaxPooling2D(dtype=dtype)

    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            # Batch normalisation at 28×28 would take a quarter of the step time: the first
            # convolution goes without, the second is normalised after pooling, on a quarter of
            # the values.
            layers.Conv2D(16, 3, padding="same", activation="relu", dtype=dtype),
            convolution(32),
            pool(),
            *normalise_and_activate(),
            convolution(64),
            *normalise_and_activate(),
            convolution(64),
            pool(),
            *normalise_and_activate(),
            convolution(128),
            *normalise_and_activate(),
            convolution(128),
            *normalise_and_activate(),
            layers.Flatten(dtype=dtype),
            layers.Dropout(dropout, dtype=dtype),
            layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
        ],
        name="digit_cnn",
    )
