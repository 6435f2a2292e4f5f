"""Training, side by side: the Keras example "Simple MNIST convnet" against the notebook's training.

Both train on the same MNIST training images (the example with its validation_split 0.1, ours
with the recipe's validation set, `digits.training.config.TrainingConfig`), one after the other
in this process, and are
tested on the same test images. Reported: training wall time, epochs, test accuracy and error,
the error and time ratios, and test accuracy after every epoch (clock paused while measuring it),
drawn as error_vs_time.png.

    python -m bench.training            # full: ~15 epochs each on all 60,000 images
"""

from bench.common import (
    LABELS,
    add_training_settings,
    config_record,
    finish,
    markdown_table,
    parse,
    parser_for,
    percent,
    ratio,
    seconds,
    times,
)
from digits.training.config import MNIST_TRAINING_IMAGES

NAME = "training"
FULL = dict(epochs=None, train_subset=None, test_subset=None)
QUICK = dict(epochs=2, train_subset=10_000, test_subset=None)
DRY_RUN = dict(epochs=1, train_subset=512, test_subset=500)
FIGURE = "error_vs_time.png"


def build_parser():
    parser = parser_for(NAME, __doc__.split("\n\n")[0], FULL, QUICK, DRY_RUN)
    add_training_settings(parser, "epochs for both")
    return parser


def table(reference, ours):
    best = f" (best {ours.details['best_epoch']})"
    rows = [
        (
            "training wall time",
            seconds(reference.seconds),
            seconds(ours.seconds),
            times(ratio(ours.seconds, reference.seconds)),
        ),
        ("epochs run", reference.epochs_run, f"{ours.epochs_run}{best}", ""),
        ("test accuracy", percent(reference.test_accuracy), percent(ours.test_accuracy), ""),
        (
            "test error",
            percent(1 - reference.test_accuracy),
            percent(1 - ours.test_accuracy),
            times(ratio(1 - ours.test_accuracy, 1 - reference.test_accuracy)),
        ),
        ("parameters", f"{reference.parameters:,}", f"{ours.parameters:,}", ""),
        ("computes in", reference.dtype_policy, ours.dtype_policy, ""),
    ]
    return markdown_table(["", LABELS["reference"], LABELS["ours"], "ours / reference"], rows)


def draw(reference, ours, path):
    """Test error against training wall time, one line per training."""
    from digits.training.plots import error_vs_time

    runs = {
        LABELS[outcome.name]: [(s, 1 - accuracy) for s, _, accuracy in outcome.points]
        for outcome in (reference, ours)
    }
    error_vs_time(runs).savefig(path, dpi=150)


def main(argv=None):
    parser = build_parser()
    _, mode, output = parse(parser, argv)
    from bench.contenders import train_both

    reference, ours, config, test_size = train_both(mode.settings)
    draw(reference, ours, output / FIGURE)
    results = {
        "reference": reference.to_json(),
        "ours": ours.to_json(),
        "time_ratio": ratio(ours.seconds, reference.seconds),
        "error_ratio": ratio(1 - ours.test_accuracy, 1 - reference.test_accuracy),
        "config": config_record(config),
        "training_images": config.train_subset or MNIST_TRAINING_IMAGES,
        "test_images": test_size,
        "figure": FIGURE,
    }
    finish(NAME, mode, output, results, table(reference, ours))


if __name__ == "__main__":
    main()
