"""Our recipe's training time with bfloat16 and without it: the same epoch of the notebook's
training in mixed_bfloat16 and in float32, each in a child process (`bench.train_once ours`), one
after the other on the same machine, and what the notebook's epochs would take in float32.

Where the CPU has no bfloat16 instructions, mixed_bfloat16 is emulated (the recipe then trains in
float32 by itself); the record says which the machine has.

    python -m bench.precision
"""

import json

from bench.common import (
    add_setting,
    finish,
    markdown_table,
    parse,
    parser_for,
    progress,
    ratio,
    run_child,
    times,
)
from bench.memory import training_command
from digits.training.config import TrainingConfig

NAME = "precision"
FULL = dict(epochs=1, train_subset=None, test_subset=500)
QUICK = dict(epochs=1, train_subset=10_000, test_subset=500)
DRY_RUN = dict(epochs=1, train_subset=512, test_subset=100)
POLICIES = ("mixed_bfloat16", "float32")


def build_parser():
    parser = parser_for(NAME, __doc__.split("\n\n")[0], FULL, QUICK, DRY_RUN)
    add_setting(parser, "--epochs", int, "epochs of each training")
    add_setting(parser, "--train-subset", int, "random training images; None = all 60,000")
    add_setting(parser, "--test-subset", int, "first N test images; None = all 10,000")
    return parser


def train_in(policy, settings):
    """One training of ours in `policy`, in a child process: its outcome's times."""
    progress(f"training ours in {policy} in a child process ...")
    command = [*training_command("ours", settings), "--dtype-policy", policy]
    outcome = json.loads(run_child(command, f"{policy} training").stdout.strip().splitlines()[-1])
    epochs = outcome["epochs_run"]
    return {
        "fit_seconds": outcome["fit_seconds"],
        "epochs_run": epochs,
        "seconds_per_epoch": outcome["fit_seconds"] / epochs,
        "dtype_policy": outcome["dtype_policy"],
    }


def slower(runs):
    """How many times longer an epoch takes in float32 than in mixed_bfloat16."""
    return ratio(runs["float32"]["seconds_per_epoch"], runs["mixed_bfloat16"]["seconds_per_epoch"])


def table(runs, notebook_epochs, estimate):
    rows = [
        (policy, f"{run['seconds_per_epoch']:.1f} s", f"{run['epochs_run']}")
        for policy, run in runs.items()
    ]
    rows.append(("float32 / mixed_bfloat16", times(slower(runs)), ""))
    rows.append((f"the notebook's {notebook_epochs} epochs in float32", f"{estimate:.0f} s", ""))
    return markdown_table(["training precision", "seconds per epoch", "epochs timed"], rows)


def main(argv=None):
    parser = build_parser()
    args, mode, output = parse(parser, argv)
    runs = {policy: train_in(policy, mode.settings) for policy in POLICIES}
    notebook_epochs = TrainingConfig.epochs
    estimate = notebook_epochs * runs["float32"]["seconds_per_epoch"]
    results = {
        "runs": runs,
        "float32_ratio": slower(runs),
        "notebook_epochs": notebook_epochs,
        "notebook_float32_seconds": estimate,
    }
    finish(NAME, mode, output, results, table(runs, notebook_epochs, estimate))


if __name__ == "__main__":
    main()
