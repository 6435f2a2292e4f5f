"""The training recipe's settings: the one place to change one.

The notebook's parameters cell, the benchmarks and the tests all start from `TrainingConfig()`
and override fields of it; nothing else holds a default.
"""

from dataclasses import dataclass, replace
from pathlib import Path

from digits.paths import DEFAULT_MODEL

MNIST_TRAINING_IMAGES = 60_000


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 18  # upper bound; early stopping may end sooner
    batch_size: int = 128
    train_subset: int | None = None  # None trains on all 60,000 images, a number on a random subset
    validation_size: int = 5000  # carved from the training set; the test set is never used
    font_digits: int = 0  # printed digits rendered from fonts to mix into training, e.g. 4000
    patience: int = 5  # epochs without a better validation accuracy before training stops
    seed: int = 42
    dtype_policy: str | None = None  # None: mixed_bfloat16 where the CPU has bfloat16, else float32
    augment: bool = True  # small random rotations, shifts and zooms of the training batches
    peak_learning_rate: float = 2e-3
    label_smoothing: float = 0.1  # the target is 0.91 for the label and 0.01 for each other class
    dropout: float = 0.3
    model_path: Path = DEFAULT_MODEL

    def scaled_to(self, train_subset: int | None) -> "TrainingConfig":
        """The same recipe on `train_subset` images (None: all), with the validation set and the
        font digits scaled so that they keep their share of the training images."""
        size = train_subset or MNIST_TRAINING_IMAGES

        def scaled(count):
            return max(1, round(count * size / MNIST_TRAINING_IMAGES)) if count else 0

        return replace(
            self,
            train_subset=train_subset,
            validation_size=scaled(self.validation_size),
            font_digits=scaled(self.font_digits),
        )
