"""The README states only what a committed record shows.

Every figure in its prose (outside code) — percentages, seconds, MiB and MB, images/s, ratios (×),
epochs, picture sizes and counts of kinds, pictures, parameters, cores ... — must be one of:
- a figure of the benchmarks' records, bench/results/*.json, at the precision the README gives;
- in the paragraph marked as the notebook's, a figure of the Summary the committed notebook
  stores (skipped, and said so, while the notebook holds no run);
- a figure that is not a measurement but documents a constant, listed in CONSTANTS with the
  check of that constant.
The results table must be exactly what `python -m bench.report` prints from the records, the exit
statuses those of interface.py, and every path and name in code spans must exist. A failure names
the README line and the figure, so a changed record or constant shows where the README must follow.
"""

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from bench import report, strings
from bench.common import RESULTS

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
NOTEBOOK = REPO / "Digit Recognition.ipynb"
# The HTML comment that opens the paragraph whose figures come from the notebook's Summary.
NOTEBOOK_MARK = "<!-- The figures of this paragraph come from the Summary of the notebook's"

NUMBER = r"(?<![\w.,/×-])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
# A number with a unit written right after it.
MEASURE = re.compile(NUMBER + r" ?(%|×(?!\d)|images/s|s\b|ms\b|MiB|MB|GiB|GB|kB)")
# A number counting something, up to two words before the noun ("600 generated realistic
# pictures"), or "2-core", or "epoch 18".
COUNT_NOUNS = "epochs?|kinds|pictures|parameters|examples|megapixels|cores|uploads|digits|images"
COUNT = re.compile(NUMBER + rf"(-core\b| (?:[a-z]+ ){{0,2}}(?:{COUNT_NOUNS})\b)")
EPOCH_NUMBER = re.compile(r"\b(epoch) (\d+)\b")
DIMENSIONS = re.compile(r"(?<![\w.])\d+×\d+\b")
# Figures in words would escape the check: the README writes measurements in digits.
WORD_FIGURE = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twenty|hundred)\s+"
    r"(?:times|seconds?|minutes?|hours?|epochs?)\b|\ba (?:half|third|quarter|fifth|seventh|tenth)\b"
)


@dataclass(frozen=True)
class Figure:
    line: int
    text: str  # as the README writes it, e.g. "1,241 MiB"
    value: float
    decimals: int
    unit: str  # "%", "s", "MiB", "×", "epochs", "pictures", "-core", "epoch", "dimensions" ...

    def where(self) -> str:
        return f"README.md:{self.line}: {self.text!r}"


# --- reading the README -------------------------------------------------------------------------


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line outside fenced code, without inline code spans."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield number, re.sub(r"`[^`]*`", "", line)


def unit_of(match: re.Match) -> str:
    """The unit of a COUNT match: its noun (plural), or "-core"."""
    words = match.group(3).split()
    noun = words[-1] if words else match.group(3)
    return "epochs" if noun == "epoch" else noun


def figures_in(line_number: int, line: str) -> Iterator[Figure]:
    for pattern in (MEASURE, COUNT):
        for match in pattern.finditer(line):
            whole, fraction = match.group(1).replace(",", ""), match.group(2)
            value = float(f"{whole}.{fraction}" if fraction else whole)
            unit = match.group(3) if pattern is MEASURE else unit_of(match)
            yield Figure(line_number, match.group(0), value, len(fraction or ""), unit)
    for match in EPOCH_NUMBER.finditer(line):
        yield Figure(line_number, match.group(0), float(match.group(2)), 0, "epoch")
    for match in DIMENSIONS.finditer(line):
        yield Figure(line_number, match.group(0), 0.0, 0, "dimensions")


def blank_out(text: str, part: str) -> str:
    """`text` with `part` replaced by as many empty lines, so that line numbers stay."""
    return text.replace(part, "\n" * part.count("\n"))


def results_block() -> str:
    """What `python -m bench.report` prints from the committed records."""
    return report.report(report.load(RESULTS))


def notebook_lines(text: str) -> set[int]:
    """The line numbers of the paragraph under NOTEBOOK_MARK (after its comment)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(NOTEBOOK_MARK))
    while not lines[start].rstrip().endswith("-->"):
        start += 1
    end = start + 1
    while end < len(lines) and lines[end].strip():
        end += 1
    return set(range(start + 2, end + 1))


def readme_figures() -> list[Figure]:
    """Every figure in the README's prose, the results table (checked whole) and comments aside."""
    text = blank_out(readme_text(), results_block())
    for comment in re.findall(r"<!--.*?-->", text, flags=re.S):
        text = blank_out(text, comment)
    return [figure for number, line in prose_lines(text) for figure in figures_in(number, line)]


# --- what the records say ----------------------------------------------------------------------

# unit → the values a figure in that unit may state; percentages as fractions.
Known = dict[str, list[float]]


def known(pairs) -> Known:
    values: Known = {}
    for unit, value in pairs:
        if value is not None:
            values.setdefault(unit, []).append(float(value))
    return values


def records() -> dict:
    return {path.stem: json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))}


def benchmark_figures(documents: dict) -> Known:
    """The figures the benchmarks' records hold, by unit."""
    training, time_to_99 = documents["training"]["results"], documents["time_to_99"]["results"]
    cold, throughput = documents["cold_start"]["results"], documents["throughput"]["results"]
    memory, realistic = documents["memory"]["results"], documents["realistic"]["results"]
    pairs = []
    for run in (training["ours"], training["reference"]):
        pairs += [("s", run["seconds"]), ("epochs", run["epochs_run"])]
        pairs += [("%", run["test_accuracy"]), ("%", run["test_error"])]
    pairs += [("×", training["time_ratio"]), ("×", training["error_ratio"])]
    pairs += [("images", training["training_images"]), ("digits", training["test_images"])]
    pairs += [("%", time_to_99["target"]), ("×", time_to_99["time_ratio"])]
    for run in (time_to_99["ours"], time_to_99["reference"]):
        if run["reached"]:
            pairs += [("s", run["reached"]["seconds"]), ("epochs", run["reached"]["epochs"])]
    for program in ("interface", "tutorial"):
        pairs += [("s", cold[program][key]) for key in ("median", "min", "max")]
    pairs += [("×", cold["ratio"]), ("×", 1 / cold["ratio"])]
    for run in throughput["cli"]:
        pairs += [("images/s", run["images_per_second"]), ("s", run["seconds"])]
    call = throughput["realistic"]
    pairs += [("s", call["seconds"]), ("s", call["decoding_seconds"]), ("%", call["accuracy"])]
    pairs += [("images/s", call["images_per_second"]), ("×", call["decoding_ratio"])]
    pairs.append(("pictures", call["files"]))
    for by_code in throughput["stages"].values():
        for profile in by_code.values():
            pairs += [("s", seconds) for seconds in profile["seconds"].values()]
            pairs.append(("s", sum(profile["seconds"].values())))  # the stage table's total
    api = throughput["api"]
    pairs += [("images/s", api["ours"]["images_per_second"]), ("×", api["speed_ratio"])]
    pairs += [("images/s", api["keras"]["images_per_second"])]
    pairs += [("MiB", run["peak_rss_mib"]) for run in memory["training"].values()]
    pairs += [("MiB", run["median_mib"]) for run in memory["cli"].values()]
    pairs += [("×", memory["training_ratio"]), ("×", memory["cli_ratio"])]
    pairs += [("×", 1 / memory["cli_ratio"])]
    for result in (realistic["ours"], realistic["tutorial"]):
        for kind in ("single_digits", "numbers"):
            pairs.append(("%", result[f"{kind}_read"] / result[kind]))
    pairs.append(("pictures", documents["realistic"]["settings"]["pictures"]))
    for kind in documents["strings"]["results"]["kinds"].values():
        others = list(kind.get("other_seeds", {}).values())
        for reading in (kind["now"], kind.get("before"), *others):
            if reading:
                pairs += [
                    ("%", reading["read"] / reading["numbers"]),
                    ("numbers", reading["numbers"]),
                ]
        read, numbers = strings.all_seeds(kind)
        pairs += [("%", read / numbers), ("numbers", numbers)]
    pairs += [("%", goal) for goal in strings.GOALS.values()]
    six = documents["strings"]["results"]["six_digit_overlapping"]
    pairs += [("ms", six["median_ms"]), ("ms", six["max_ms"])]
    precision = documents["precision"]["results"]
    pairs += [("s", run["seconds_per_epoch"]) for run in precision["runs"].values()]
    pairs += [("×", precision["float32_ratio"]), ("s", precision["notebook_float32_seconds"])]
    pairs.append(("epochs", precision["notebook_epochs"]))
    string_model = documents["number_training"]["results"]
    pairs += [("s", string_model["seconds"]), ("epochs", string_model["epochs_run"])]
    pairs += [("%", string_model["validation_exact"]), ("parameters", string_model["parameters"])]
    machines = [document["machine"] for document in documents.values()]
    pairs += [(unit, machine["cores"]) for machine in machines for unit in ("cores", "-core")]
    pairs += [("GiB", machine["ram_gib"]) for machine in machines]
    return known(pairs)


def stored_summary() -> dict | None:
    """The Summary cell's JSON of the committed notebook, or None while it holds no run."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    summaries = [
        output["data"]["application/json"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "application/json" in output.get("data", {})
    ]
    if not summaries:
        return None
    summary = summaries[-1]
    return summary if isinstance(summary, dict) else json.loads(summary)


def notebook_figures(summary: dict) -> Known:
    return known(
        [
            ("epochs", summary["epochs_run"]),
            ("epoch", summary["best_epoch"]),
            ("s", summary["training_seconds"]),
            ("%", summary["test_accuracy"]),
            ("parameters", summary["parameters"]),
            ("MB", summary["model_file_bytes"] / 1e6),
            ("-core", summary.get("machine", {}).get("cores")),
        ]
    )


def stated(figure: Figure, values: Known) -> bool:
    """Whether one of the values, rounded as the README rounds, is the figure."""
    scale = 100 if figure.unit == "%" else 1
    return any(
        math.isclose(round(value * scale, figure.decimals), figure.value)
        for value in values.get(figure.unit, [])
    )


# --- figures that document constants -----------------------------------------------------------


def corpus_names() -> str:
    from tests.test_reliability_inputs import CORPUS

    return " ".join(CORPUS)


def constant_checks() -> dict:
    """Figure text → a check that the constant it documents has that value."""
    from digits.board import server
    from digits.reading import hdf5_safety, images, mnist_style, readings
    from tests.board import test_load
    from tests.test_reliability_fuzz import FUZZ, MAX_SIDE
    from tests.test_reliability_inputs import (
        ADDRESS_SPACE_LIMIT,
        CORPUS,
        GOOD_NUMBERS,
        MEMORY_BOUND,
    )

    return {
        "20×20": lambda: mnist_style.BOX == 20,
        "28×28": lambda: mnist_style.FIELD == 28,
        "80%": lambda: readings.UNCERTAIN_BELOW == 0.80,
        "1×1": lambda: "1×1" in corpus_names(),
        "4000×1": lambda: "4000×1" in corpus_names(),
        "20000×20000": lambda: "20000×20000" in corpus_names(),
        "6000×4000": lambda: "6000×4000" in corpus_names(),
        "300×300": lambda: MAX_SIDE == 300,
        "33 kinds": lambda: len(CORPUS) == 33,
        "2 GiB": lambda: ADDRESS_SPACE_LIMIT == 2 * 2**30,
        "400 MB": lambda: MEMORY_BOUND == 400 * 2**20,
        "100 distinct pictures": lambda: len(GOOD_NUMBERS) == 100,
        "150 examples": lambda: FUZZ.max_examples == 150,
        "200 MB": lambda: hdf5_safety.MAX_WEIGHT_BYTES == 200 * 2**20,
        "2 pictures": lambda: server.READS_IN_FLIGHT == 2,
        "40 megapixels": lambda: images.MAX_PIXELS == 40_000_000 == math.prod(test_load.LARGEST),
        "2 s": lambda: server.READ_WAIT_S == 2,
        "32 uploads": lambda: test_load.UPLOADS == 32,
        "1.25 GiB": lambda: test_load.MEMORY_BOUND == 1.25 * 2**30,
        "10 MB": lambda: server.MAX_UPLOAD_BYTES == 10 * 2**20,
    }


# --- the tests ----------------------------------------------------------------------------------


def unbacked(figures: list[Figure], values: Known, constants: dict) -> list[str]:
    return [
        f"{figure.where()} matches no record and no constant"
        for figure in figures
        if figure.text not in constants and not stated(figure, values)
    ]


def test_the_results_table_is_what_bench_report_prints():
    block = results_block()
    if block not in readme_text():
        line = next(
            (number for number, text in enumerate(readme_text().splitlines(), 1)
             if text.startswith("| measure")),
            0,
        )  # fmt: skip
        pytest.fail(
            f"README.md:{line}: the results table and the lines under it are not what "
            f"`python -m bench.report` prints from bench/results/*.json; paste its output:\n{block}"
        )


def test_every_figure_outside_the_notebooks_paragraph_is_a_record_or_a_constant():
    from_notebook = notebook_lines(readme_text())
    figures = [figure for figure in readme_figures() if figure.line not in from_notebook]
    assert figures, "no figure found: the extraction is broken"
    failures = unbacked(figures, benchmark_figures(records()), constant_checks())
    assert not failures, "\n".join(failures)


def test_the_notebooks_figures_are_its_stored_summary():
    from_notebook = notebook_lines(readme_text())
    figures = [figure for figure in readme_figures() if figure.line in from_notebook]
    assert len(figures) >= 5, "the notebook's paragraph lost its figures"
    summary = stored_summary()
    if summary is None:
        pytest.skip(
            "the committed notebook holds no run yet (no Summary output): its figures "
            + ", ".join(figure.text for figure in figures)
            + " are checked once it is run"
        )
    failures = unbacked(figures, notebook_figures(summary), {})
    assert not failures, "\n".join(failures)


def test_every_constant_figure_is_the_constants_value():
    constants = constant_checks()
    stale = [text for text, check in constants.items() if not check()]
    assert not stale, f"the README's {stale} no longer match the constants they document"
    unstated = constants.keys() - {figure.text for figure in readme_figures()}
    assert not unstated, f"allow-listed figures the README no longer states: {sorted(unstated)}"


def test_no_figure_is_written_in_words():
    lines = [
        f"README.md:{number}: {match.group(0)!r}"
        for number, line in prose_lines(readme_text())
        for match in WORD_FIGURE.finditer(line)
    ]
    assert not lines, "write measurements in digits, so that they are checked:\n" + "\n".join(lines)


def test_the_exit_statuses_are_interface_pys():
    import interface

    paragraph = next(
        block for block in readme_text().split("\n\n") if block.startswith("Exit status:")
    )
    statuses = {int(code) for code in re.findall(r"(?:^Exit status:|;) (\d+) ", paragraph)}
    defined = {value for name, value in vars(interface).items() if name.startswith("EXIT_")}
    documented = {int(code) for code in re.findall(r"^  (\d+) ", interface.__doc__, re.M)}
    assert statuses == defined == documented


def code_spans(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        for span in re.findall(r"`([^`\n]+)`", line):
            yield number, span


def missing_paths(text: str) -> list[str]:
    """Repository paths (`digits/...`, `tests/...::test_name` ...) in code spans that do not
    exist, and test names in code spans that no test defines."""
    tests_source = "\n".join(path.read_text() for path in (REPO / "tests").rglob("*.py"))
    missing = []
    for number, span in code_spans(text):
        path, _, name = span.partition("::")
        if re.fullmatch(r"(digits|tests|bench|docs|\.ci)/[\w./*-]*", path):
            if not any(REPO.glob(path.rstrip("/"))):
                missing.append(f"README.md:{number}: {path!r} does not exist")
            elif name and f"def {name}(" not in (REPO / path).read_text():
                missing.append(f"README.md:{number}: {path} has no {name}")
        elif re.fullmatch(r"test_\w+", span) and f"def {span}(" not in tests_source:
            missing.append(f"README.md:{number}: no test is named {span}")
    return missing


def test_every_path_and_test_the_readme_names_exists():
    assert not missing_paths(readme_text()), "\n".join(missing_paths(readme_text()))


# --- the checker itself --------------------------------------------------------------------------


def test_a_changed_record_is_caught_with_its_line_and_figure():
    figures = list(figures_in(7, "it reads 99.7% of single digits in 0.32 s, 9.5× faster"))
    assert [(f.text, f.value, f.decimals, f.unit) for f in figures] == [
        ("99.7%", 99.7, 1, "%"),
        ("0.32 s", 0.32, 2, "s"),
        ("9.5×", 9.5, 1, "×"),
    ]
    as_recorded = {"%": [0.99675], "s": [0.3227], "×": [9.53]}
    assert unbacked(figures, as_recorded, {}) == []
    changed = {**as_recorded, "%": [0.9951]}
    assert unbacked(figures, changed, {}) == [
        "README.md:7: '99.7%' matches no record and no constant"
    ]


def test_counts_sizes_and_epoch_numbers_are_found():
    line = "600 generated realistic pictures, a 2-core CPU, 28×28, best validation epoch 18"
    assert {(f.text, f.unit) for f in figures_in(1, line)} == {
        ("600 generated realistic pictures", "pictures"),
        ("2-core", "-core"),
        ("28×28", "dimensions"),
        ("epoch 18", "epoch"),
    }


def test_the_notebooks_paragraph_is_checked_against_a_summary():
    # The summary is stored only once the notebook is run: check the check on one made from the
    # paragraph's own figures, then on one whose training time differs.
    from_notebook = notebook_lines(readme_text())
    figures = [figure for figure in readme_figures() if figure.line in from_notebook]
    stated_as = {figure.unit: figure.value for figure in figures}
    summary = {
        "epochs_run": stated_as["epochs"],
        "best_epoch": stated_as["epoch"],
        "training_seconds": stated_as["s"],
        "test_accuracy": stated_as["%"] / 100,
        "parameters": stated_as["parameters"],
        "model_file_bytes": stated_as["MB"] * 1e6,
        "machine": {"cores": stated_as["-core"]},
    }
    assert unbacked(figures, notebook_figures(summary), {}) == []
    slower = {**summary, "training_seconds": stated_as["s"] + 30}
    (failure,) = unbacked(figures, notebook_figures(slower), {})
    assert re.fullmatch(r"README\.md:\d+: '\d+ s' matches no record and no constant", failure)
