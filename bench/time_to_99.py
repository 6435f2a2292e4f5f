"""Time to 99.0% test accuracy: the Keras example "Simple MNIST convnet" against the notebook's
training, on the same data, one after the other.

Test accuracy is checked several times per epoch with the training clock paused while it is
measured; each training stops at its first check at or above the target, or at its epoch budget
(the recipe's epochs for ours, the example's 15). Ours keeps its full learning-rate schedule for
that budget: stopping early is the only change. (--dry-run aims at 0% so that it stops.)

    python -m bench.time_to_99
"""

from bench.common import (
    LABELS,
    add_setting,
    add_training_settings,
    config_record,
    finish,
    markdown_table,
    parse,
    parser_for,
    percent,
    plural,
    ratio,
    seconds,
    times,
)

NAME = "time_to_99"
FULL = dict(target=0.99, checks_per_epoch=4, epochs=None, train_subset=None, test_subset=None)
QUICK = dict(target=0.98, checks_per_epoch=4, epochs=3, train_subset=10_000, test_subset=None)
DRY_RUN = dict(target=0.0, checks_per_epoch=2, epochs=1, train_subset=512, test_subset=500)


def build_parser():
    parser = parser_for(NAME, __doc__.split("\n\n")[0], FULL, QUICK, DRY_RUN)
    add_setting(parser, "--target", float, "test accuracy to reach")
    add_setting(parser, "--checks-per-epoch", int, "test accuracy checks per epoch")
    add_training_settings(parser, "epoch budget for both")
    return parser


def run(settings):
    """Train the reference, then ours, each until the target; return their Outcomes."""
    from bench.contenders import train_both

    checks = {"checks_per_epoch": settings["checks_per_epoch"], "stop_at": settings["target"]}
    reference, ours, config, _ = train_both(settings, checks)
    return reference, ours, config


def reached_seconds(outcome):
    return outcome.reached[0] if outcome.reached else None


def describe(outcome, what):
    """One cell: the value at the target, or that it was not reached within the budget."""
    if outcome.reached is None:
        return f"not reached in {plural(outcome.epochs_run, 'epoch')} ({outcome.seconds:.1f} s)"
    seconds_, epochs, _ = outcome.reached
    return seconds(seconds_) if what == "seconds" else f"{epochs:.2f}"


def table(reference, ours, target):
    best = {o.name: max((a for _, _, a in o.points), default=None) for o in (reference, ours)}
    time_ratio = ratio(reached_seconds(ours), reached_seconds(reference))
    rows = [
        (
            f"time to {target:.1%} test accuracy",
            describe(reference, "seconds"),
            describe(ours, "seconds"),
            times(time_ratio),
        ),
        (f"epochs to {target:.1%}", describe(reference, "epochs"), describe(ours, "epochs"), ""),
        ("best test accuracy checked", percent(best["reference"]), percent(best["ours"]), ""),
    ]
    return markdown_table(["", LABELS["reference"], LABELS["ours"], "ours / reference"], rows)


def main(argv=None):
    parser = build_parser()
    _, mode, output = parse(parser, argv)
    reference, ours, config = run(mode.settings)
    results = {
        "target": mode.settings["target"],
        "reference": reference.to_json(),
        "ours": ours.to_json(),
        "time_ratio": ratio(reached_seconds(ours), reached_seconds(reference)),
        "config": config_record(config),
    }
    finish(NAME, mode, output, results, table(reference, ours, mode.settings["target"]))


if __name__ == "__main__":
    main()
