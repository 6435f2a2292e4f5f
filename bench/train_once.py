"""Train one contender once and print its outcome as one JSON line: the child process whose peak
memory bench.memory measures. Not a benchmark by itself.

    python -m bench.train_once {ours,reference} [--epochs N] [--train-subset N] [--test-subset N]
                                [--model-path PATH] [--dtype-policy POLICY]
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m bench.train_once", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("contender", choices=("ours", "reference"))
    parser.add_argument("--epochs", type=int, default=1, help="epochs to train (default: 1)")
    parser.add_argument(
        "--train-subset",
        type=int,
        help="random training images (seeded) (default: all 60,000)",
    )
    parser.add_argument("--test-subset", type=int, help="first N test images (default: all 10,000)")
    parser.add_argument(
        "--model-path",
        type=Path,
        help="ours only: where to save the model it trains (default: a temporary file)",
    )
    parser.add_argument(
        "--dtype-policy",
        choices=("mixed_bfloat16", "float32"),
        help="ours only: the precision to train in (default: the fastest this CPU has)",
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from bench.contenders import TestAccuracyMonitor, benchmark_data, train_ours, train_reference

    settings = {
        "epochs": args.epochs,
        "train_subset": args.train_subset,
        "test_subset": args.test_subset,
    }
    config, mnist_train, test = benchmark_data(settings)
    if args.dtype_policy:
        config = replace(config, dtype_policy=args.dtype_policy)
    monitor = TestAccuracyMonitor(test=None)  # the clock only: no evaluations during training
    if args.contender == "ours":
        outcome = train_ours(config, mnist_train, test, monitor, model_path=args.model_path)
    else:
        outcome = train_reference(config, mnist_train, test, monitor, epochs=args.epochs)
    print(json.dumps(outcome.to_json()))


if __name__ == "__main__":
    main()
