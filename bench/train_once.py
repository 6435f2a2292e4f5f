"""Train one contender once and print its outcome as one JSON line: the child process whose peak
memory bench.memory measures. Not a benchmark by itself.

    python -m bench.train_once {ours,reference} [--epochs N] [--train-subset N] [--test-subset N]
"""

import argparse
import json


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m bench.train_once", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("contender", choices=("ours", "reference"))
    parser.add_argument("--epochs", type=int, default=1, help="epochs to train (default: 1)")
    parser.add_argument(
        "--train-subset", type=int,
        help="random training images (seeded) (default: all 60,000)",
    )
    parser.add_argument(
        "--test-subset", type=int, help="first N test images (default: all 10,000)"
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from bench.common import notebook_parameters
    from bench.contenders import TestAccuracyMonitor, load_data, train_ours, train_reference

    parameters = notebook_parameters()
    train_data, test = load_data(args.train_subset, args.test_subset, parameters["SEED"])
    monitor = TestAccuracyMonitor(test=None)  # the clock only: no evaluations during training
    if args.contender == "ours":
        outcome = train_ours(train_data, test, monitor, parameters, epochs=args.epochs)
    else:
        outcome = train_reference(
            train_data, test, monitor, epochs=args.epochs, seed=parameters["SEED"]
        )
    print(json.dumps(outcome.to_json()))


if __name__ == "__main__":
    main()
