"""Classification scores with numpy alone: confusion matrix, per-class precision and recall."""

import numpy as np


def confusion_matrix(true_labels, predicted_labels, num_classes=10):
    """counts[i, j] = how many examples of class i were predicted as class j."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(true_labels), np.asarray(predicted_labels)), 1)
    return counts


def per_class_scores(counts):
    """Precision, recall and support of each class, from a confusion matrix."""
    correct = np.diag(counts).astype(np.float64)
    predicted = counts.sum(axis=0)
    actual = counts.sum(axis=1)
    # A class never predicted has no precision to speak of; report 0 rather than divide by zero.
    precision = np.divide(correct, predicted, out=np.zeros_like(correct), where=predicted > 0)
    recall = np.divide(correct, actual, out=np.zeros_like(correct), where=actual > 0)
    return precision, recall, actual


def format_report(counts):
    """A small text table: one line per class, then overall accuracy."""
    precision, recall, support = per_class_scores(counts)
    lines = ["digit  precision  recall  support"]
    for digit in range(len(counts)):
        lines.append(
            f"{digit:>5}  {precision[digit]:>9.4f}  {recall[digit]:>6.4f}  {support[digit]:>7}"
        )
    accuracy = np.trace(counts) / counts.sum()
    lines.append(f"accuracy {accuracy:.4%} on {counts.sum()} digits")
    return "\n".join(lines)
