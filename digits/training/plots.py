"""Figures for the notebook and the README; each function returns its matplotlib Figure."""

import matplotlib.pyplot as plt
import numpy as np


def digit_grid(images, titles, columns=10, title=None):
    """Show images (N, 28, 28) in a grid, each with its title; ink is drawn dark on white."""
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, caption in zip(axes.flat, images, titles, strict=False):
        axis.imshow(np.squeeze(image), cmap="gray_r")
        axis.set_title(caption, fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def class_balance(train_labels, test_labels):
    """Bar chart of how many examples of each digit the training and test sets hold."""
    figure, axis = plt.subplots(figsize=(8, 3))
    digits = np.arange(10)
    width = 0.4
    sets = ((-width / 2, train_labels, "train"), (width / 2, test_labels, "test"))
    for offset, labels, name in sets:
        counts = np.bincount(labels, minlength=10)
        axis.bar(digits + offset, counts / counts.sum(), width, label=f"{name} ({len(labels):,})")
    axis.set_xticks(digits)
    axis.set_xlabel("digit")
    axis.set_ylabel("share of the set")
    axis.legend()
    figure.tight_layout()
    return figure


def pixel_histogram(images):
    """Histogram of pixel intensities (log scale): mostly black background, saturated ink."""
    figure, axis = plt.subplots(figsize=(8, 3))
    axis.hist(np.asarray(images).ravel(), bins=64, log=True, color="tab:gray")
    axis.set_xlabel("pixel value (0 = background, 255 = ink)")
    axis.set_ylabel("pixels")
    figure.tight_layout()
    return figure


def training_curves(history):
    """Loss, accuracy and learning rate per epoch, training against validation."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    panels = [("loss", "loss"), ("accuracy", "accuracy")]
    has_rate = "learning_rate" in history
    figure, axes = plt.subplots(1, 2 + has_rate, figsize=(5 * (2 + has_rate), 3.5))
    for axis, (metric, label) in zip(axes, panels, strict=False):
        axis.plot(epochs, history[metric], "o-", label="training")
        axis.plot(epochs, history[f"val_{metric}"], "o-", label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.legend()
    axes[0].set_yscale("log")
    if has_rate:
        axes[2].plot(epochs, history["learning_rate"], "o-", color="tab:green")
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel("learning rate (end of epoch)")
    figure.tight_layout()
    return figure


def confusion_heatmap(counts):
    """Heat map of a confusion matrix; the diagonal is hidden so the errors stand out."""
    errors = counts.astype(float)
    np.fill_diagonal(errors, np.nan)
    figure, axis = plt.subplots(figsize=(6, 5))
    image = axis.imshow(errors, cmap="Reds")
    for true_digit in range(10):
        for predicted_digit in range(10):
            value = counts[true_digit, predicted_digit]
            if value:
                colour = "black" if true_digit != predicted_digit else "tab:blue"
                axis.text(
                    predicted_digit,
                    true_digit,
                    value,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=colour,
                )
    axis.set_xticks(range(10))
    axis.set_yticks(range(10))
    axis.set_xlabel("predicted digit")
    axis.set_ylabel("true digit")
    figure.colorbar(image, ax=axis, label="misclassified test digits")
    figure.tight_layout()
    return figure


def error_vs_time(runs):
    """Test error (log scale) against training wall time, one line per run.

    `runs` maps a name to a list of (seconds, test_error) points.
    """
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, points in runs.items():
        seconds, errors = zip(*points, strict=True)
        axis.plot(seconds, np.asarray(errors) * 100, "o-", label=name)
    axis.set_yscale("log")
    axis.set_xlabel("training wall time (s)")
    axis.set_ylabel("test error (%)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure
