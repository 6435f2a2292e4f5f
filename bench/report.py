"""Print the README's results table (markdown) from the benchmarks' JSON files, each row naming
the command that reproduces it, followed by the machine and the date of each measurement.

    python -m bench.report [--results DIR]
"""

import argparse
import json
from pathlib import Path

from bench.common import RESULTS, markdown_table, percent, plural, ratio, times
from bench.strings import all_seeds

BENCHMARKS = (
    "training",
    "time_to_99",
    "cold_start",
    "throughput",
    "memory",
    "realistic",
    "strings",
)


def load(folder):
    """The JSON documents found in `folder`, by benchmark name."""
    found = {}
    for name in BENCHMARKS:
        path = Path(folder) / f"{name}.json"
        if path.is_file():
            found[name] = json.loads(path.read_text())
    return found


def command(document):
    """The reproducing command, with the mode spelled out when it is not a full run."""
    text = f"`{document['command']}`"
    return text if document["mode"] == "full" else f"{text} ({document['mode']}, not for citing)"


def training_rows(document):
    results = document["results"]
    ours, reference = results["ours"], results["reference"]
    images = f"{results['training_images']:,} training images"
    return [
        (
            f"training wall time ({images})",
            f"{ours['seconds']:.0f} s, {plural(ours['epochs_run'], 'epoch')}",
            f"{reference['seconds']:.0f} s, {plural(reference['epochs_run'], 'epoch')}",
            times(results["time_ratio"]),
        ),
        (
            f"test error ({results['test_images']:,} test digits)",
            percent(ours["test_error"]),
            percent(reference["test_error"]),
            times(results["error_ratio"]),
        ),
    ]


def time_to_99_rows(document):
    results = document["results"]

    def cell(outcome):
        if outcome["reached"] is None:
            return f"not reached ({plural(outcome['epochs_run'], 'epoch')})"
        reached = outcome["reached"]
        return f"{reached['seconds']:.0f} s ({reached['epochs']:.2f} epochs)"

    return [
        (
            f"time to {results['target']:.1%} test accuracy",
            cell(results["ours"]),
            cell(results["reference"]),
            times(results["time_ratio"]),
        )
    ]


def cold_start_rows(document):
    results = document["results"]
    ours, reference = results["interface"], results["tutorial"]
    runs = len(ours["samples"])

    def cell(stats):
        return f"{stats['median']:.2f} s ({stats['min']:.2f}–{stats['max']:.2f})"

    return [
        (
            f"one picture from the command line, cold start (median of {runs}, min–max)",
            cell(ours),
            cell(reference),
            times(ratio(ours["median"], reference["median"])),
        )
    ]


def throughput_rows(document):
    results = document["results"]
    rows = [
        (
            f"`interface.py` on {run['files']:,} picture files, one call",
            f"{run['images_per_second']:,.0f} images/s ({run['seconds']:.1f} s)",
            "–",
            "",
        )
        for run in results["cli"]
    ]
    realistic = results["realistic"]
    rows.append(
        (
            f"`interface.py` on {realistic['files']:,} realistic pictures, one call, "
            "against decoding them (Pillow, one process)",
            f"{realistic['images_per_second']:,.0f} images/s ({realistic['seconds']:.1f} s)",
            f"{realistic['decoding_seconds']:.2f} s",
            times(realistic["decoding_ratio"]),
        )
    )
    api = results["api"]
    rows.append(
        (
            f"in-process prediction, {api['images']:,} test digits",
            f"{api['ours']['images_per_second']:,.0f} images/s",
            f"{api['keras']['images_per_second']:,.0f} images/s",
            times(api["speed_ratio"]),
        )
    )
    return rows


def memory_rows(document):
    results = document["results"]
    settings = document["settings"]
    images = f"{settings['train_subset']:,}" if settings["train_subset"] else "60,000"
    training, cli = results["training"], results["cli"]
    return [
        (
            f"peak memory, training {plural(settings['epochs'], 'epoch')} on {images} images",
            f"{training['ours']['peak_rss_mib']:,.0f} MiB",
            f"{training['reference']['peak_rss_mib']:,.0f} MiB",
            times(results["training_ratio"]),
        ),
        (
            "peak memory, one picture from the command line",
            f"{cli['interface']['median_mib']:,.0f} MiB",
            f"{cli['tutorial']['median_mib']:,.0f} MiB",
            times(results["cli_ratio"]),
        ),
    ]


def realistic_rows(document):
    results = document["results"]
    ours, tutorial = results["ours"], results["tutorial"]

    def read(result, kind):
        return f"{percent(result[f'{kind}_read'] / result[kind])} of {result[kind]}"

    return [
        (
            "realistic pictures: single digits read exactly",
            read(ours, "single_digits"),
            read(tutorial, "single_digits") + " (tutorial resize)",
            "",
        ),
        ("realistic pictures: whole numbers read exactly", read(ours, "numbers"), "–", ""),
    ]


def strings_rows(document):
    kinds = document["results"]["kinds"]
    names = " / ".join(kinds)

    def shares(which):
        results = [kind.get(which) for kind in kinds.values()]
        if any(result is None for result in results):
            return "–"
        return " / ".join(percent(r["read"] / r["numbers"], 1) for r in results)

    def pooled(kind):
        read, numbers = all_seeds(kind)
        return read / numbers

    numbers = next(iter(kinds.values()))["now"]["numbers"]
    six = document["results"]["six_digit_overlapping"]
    seeds = [document["settings"]["seed"], *document["results"].get("other_seeds", [])]
    rows = [
        (
            f"whole numbers of MNIST test digits read exactly, {numbers} per kind: {names}",
            shares("now"),
            shares("before") + " (before the string model)",
            "",
        )
    ]
    if len(seeds) > 1:
        rows.append(
            (
                f"the same, composer seeds {', '.join(map(str, seeds))} together, "
                f"{numbers * len(seeds):,} per kind",
                " / ".join(percent(pooled(kind), 1) for kind in kinds.values()),
                "–",
                "",
            )
        )
    return rows + [
        (
            "one 6-digit overlapping number, read in process (median)",
            f"{six['median_ms']:.0f} ms",
            "–",
            "",
        ),
    ]


ROWS = {
    "training": training_rows,
    "time_to_99": time_to_99_rows,
    "cold_start": cold_start_rows,
    "throughput": throughput_rows,
    "memory": memory_rows,
    "realistic": realistic_rows,
    "strings": strings_rows,
}


def report(documents):
    """The results table, then one line per measurement: machine, date, commit."""
    rows = [
        (*row, command(document))
        for name, document in documents.items()
        for row in ROWS[name](document)
    ]
    headers = ["measure", "ours", "reference", "ours / reference", "reproduce with"]
    lines = [markdown_table(headers, rows, left=-1), ""]
    for name, document in documents.items():
        machine, git = document["machine"], document["git"]
        commit = (git["commit"] or "no commit")[:10] + (" (modified)" if git["dirty"] else "")
        lines.append(
            f"- `{name}`: {document['date']}, {machine['cores']} cores {machine['cpu_model']}, "
            f"{machine['ram_gib']} GiB RAM, TensorFlow {document['versions'].get('tensorflow')}, "
            f"{commit}"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="folder holding the benchmarks' JSON files (default: bench/results)",
    )
    args = parser.parse_args(argv)
    documents = load(args.results)
    missing = [name for name in BENCHMARKS if name not in documents]
    if not documents:
        parser.error(f"no results in {args.results}: run the benchmarks first")
    print(report(documents))
    for name in missing:
        print(f"\nnot measured yet: python -m bench.{name}")


if __name__ == "__main__":
    main()
