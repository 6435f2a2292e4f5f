"""Tests for bench/: each benchmark's --dry-run end to end (tiny sizes, the real code path, a
temporary output folder), the report built from their JSON, and the helpers the numbers rest on.

The dry-runs train and start TensorFlow in child processes, so they are marked `slow` (they still
run in CI, which runs every test); together they take about a minute on a 2-core machine. The
ones that read pictures use the committed bestmodel.h5 (conftest's committed_model).
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import (
    breakdown,
    cold_start,
    common,
    memory,
    precision,
    realistic,
    report,
    strings,
    throughput,
    time_to_99,
    training,
)

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "training": training,
    "time_to_99": time_to_99,
    "cold_start": cold_start,
    "throughput": throughput,
    "memory": memory,
    "realistic": realistic,
    "strings": strings,
    "precision": precision,
}
NEEDS_MODEL = {"cold_start", "throughput", "memory", "realistic", "strings"}
# Records that training writes beside the benchmarks' (python -m digits.training.train_numbers).
TRAINING_RECORDS = {"number_training"}
RECORD_KEYS = {
    "benchmark",
    "command",
    "mode",
    "date",
    "git",
    "machine",
    "versions",
    "settings",
    "results",
    "table",
}
MACHINE_KEYS = {"cores", "cpu_model", "ram_gib"}
VERSION_KEYS = {"python", "tensorflow", "keras", "numpy", "pillow"}
RESULT_KEYS = {
    "training": {"reference", "ours", "time_ratio", "error_ratio", "figure"},
    "time_to_99": {"target", "reference", "ours", "time_ratio"},
    "cold_start": {"interface", "tutorial", "ratio", "outputs"},
    "throughput": {"cli", "realistic", "stages", "api", "figure"},
    "memory": {"training", "training_ratio", "cli", "cli_ratio"},
    "realistic": {"ours", "tutorial", "model"},
    "strings": {"kinds", "six_digit_overlapping", "baseline", "other_seeds", "model", "figure"},
    "precision": {"runs", "float32_ratio", "notebook_epochs", "notebook_float32_seconds"},
}
OUTCOME_KEYS = {"seconds", "epochs_run", "test_accuracy", "test_error", "points", "reached"}
DRY_RUN_TIMEOUT_S = 300


def results_snapshot():
    """Names and modification times of everything in bench/results."""
    return {p: p.stat().st_mtime_ns for p in common.RESULTS.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory):
    """run(name, model) → (finished process, seconds, output folder); each script runs once."""
    folder = tmp_path_factory.mktemp("bench-results")
    finished = {}

    def run(name, model=None):
        if name not in finished:
            command = [sys.executable, "-m", f"bench.{name}", "--dry-run", "--output", folder]
            if model is not None:
                command += ["--model", model]
            started = time.perf_counter()
            done = subprocess.run(
                [str(part) for part in command],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=DRY_RUN_TIMEOUT_S,
            )
            finished[name] = (done, time.perf_counter() - started)
        return (*finished[name], folder)

    before = results_snapshot()
    yield run
    assert results_snapshot() == before, "a dry run wrote to bench/results"


def run_dry(name, dry_runs, request):
    model = request.getfixturevalue("committed_model") if name in NEEDS_MODEL else None
    done, seconds, folder = dry_runs(name, model)
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stderr[-3000:]}"
    return done, seconds, folder, json.loads((folder / f"{name}.json").read_text())


# --- the dry runs -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.mnist
@pytest.mark.parametrize("name", SCRIPTS)
def test_dry_run_prints_a_table_and_writes_its_record(name, dry_runs, request):
    done, seconds, folder, document = run_dry(name, dry_runs, request)
    table_lines = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(table_lines) >= 3 and table_lines[1].startswith("| :--"), done.stdout
    assert document["table"] in done.stdout
    assert document.keys() >= RECORD_KEYS
    assert document["benchmark"] == name and document["mode"] == "dry-run"
    assert document["command"].startswith(f"python -m bench.{name} --dry-run")
    assert document["machine"].keys() >= MACHINE_KEYS
    assert document["versions"].keys() >= VERSION_KEYS
    assert RESULT_KEYS[name] <= document["results"].keys()
    assert document["settings"] == SCRIPTS[name].DRY_RUN
    assert absolute_paths(document) == []
    print(f"bench.{name} --dry-run took {seconds:.1f} s")


@pytest.mark.slow
@pytest.mark.mnist
def test_training_dry_run_measures_both_and_draws_the_figure(dry_runs, request):
    _, _, folder, document = run_dry("training", dry_runs, request)
    results = document["results"]
    for name in ("reference", "ours"):
        outcome = results[name]
        assert outcome.keys() >= OUTCOME_KEYS
        assert outcome["epochs_run"] == 1 and len(outcome["points"]) == 1
        assert 0 < outcome["points"][0]["seconds"] <= outcome["seconds"] <= outcome["fit_seconds"]
        # The share of the test digits read right: a whole number of them, and its complement.
        correct = outcome["test_accuracy"] * results["test_images"]
        assert correct == pytest.approx(round(correct), abs=1e-6)
        assert outcome["test_error"] == pytest.approx(1 - outcome["test_accuracy"])
    # The reference's final test is of the model its last check measured: the same figure.
    reference = results["reference"]
    assert reference["test_accuracy"] == reference["points"][-1]["test_accuracy"]
    assert results["test_images"] == training.DRY_RUN["test_subset"]
    assert results["time_ratio"] == pytest.approx(
        results["ours"]["seconds"] / results["reference"]["seconds"]
    )
    assert results["reference"]["parameters"] == 34_826  # the Keras example's network
    assert results["training_images"] == training.DRY_RUN["train_subset"]
    assert (folder / training.FIGURE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.mnist
def test_time_to_99_dry_run_stops_each_training_at_its_target(dry_runs, request):
    _, _, _, document = run_dry("time_to_99", dry_runs, request)
    for name in ("reference", "ours"):
        outcome = document["results"][name]
        # --dry-run aims at 0%, so the first check (half an epoch in) reaches it and stops.
        assert len(outcome["points"]) == 1
        assert outcome["reached"]["epochs"] < 1
        assert outcome["reached"]["seconds"] == outcome["points"][0]["seconds"]


@pytest.mark.slow
@pytest.mark.mnist
def test_cold_start_dry_run_times_both_programs(dry_runs, request, mnist):
    _, _, _, document = run_dry("cold_start", dry_runs, request)
    results = document["results"]
    for program in ("interface", "tutorial"):
        assert len(results[program]["samples"]) == cold_start.DRY_RUN["runs"]
        assert results[program]["median"] > 0
    digit = str(mnist[1][1][0])  # the picture is the first test digit
    assert results["outputs"]["tutorial"] == digit
    assert re.fullmatch(rf"image\.png: {digit} \(\d+\.\d%\)", results["outputs"]["interface"])


@pytest.mark.slow
@pytest.mark.mnist
def test_throughput_dry_run_reads_every_file(dry_runs, request):
    _, _, folder, document = run_dry("throughput", dry_runs, request)
    (cli,) = document["results"]["cli"]
    assert cli["files"] == cli["answered"] == int(throughput.DRY_RUN["files"])
    realistic = document["results"]["realistic"]
    assert realistic["files"] == realistic["answered"] == throughput.DRY_RUN["realistic"]
    assert realistic["decoding_seconds"] > 0 and realistic["decoding_ratio"] > 0
    for by_code in document["results"]["stages"].values():
        profile = by_code["now"]
        assert set(profile["seconds"]) == set(breakdown.STAGES)
        assert all(seconds >= 0 for seconds in profile["seconds"].values())
        assert profile["pictures"] > 0 and profile["digits"] > 0
    assert (folder / document["results"]["figure"]).is_file()
    api = document["results"]["api"]
    assert api["images"] == throughput.DRY_RUN["api_images"]
    assert api["max_probability_difference"] < 1e-3  # same model, two engines
    assert api["ours"]["images_per_second"] > 0 and api["keras"]["images_per_second"] > 0


@pytest.mark.slow
@pytest.mark.mnist
def test_precision_dry_run_trains_in_each_precision(dry_runs, request):
    _, _, _, document = run_dry("precision", dry_runs, request)
    runs = document["results"]["runs"]
    assert list(runs) == list(precision.POLICIES)
    for policy, run in runs.items():
        assert run["dtype_policy"] == policy and run["epochs_run"] == 1
        assert run["seconds_per_epoch"] == run["fit_seconds"] > 0
    assert document["results"]["float32_ratio"] == pytest.approx(
        runs["float32"]["fit_seconds"] / runs["mixed_bfloat16"]["fit_seconds"]
    )


@pytest.mark.slow
@pytest.mark.mnist
def test_strings_dry_run_reads_each_kind_now_and_before(dry_runs, request):
    _, _, folder, document = run_dry("strings", dry_runs, request)
    kinds = document["results"]["kinds"]
    assert list(kinds) == list(strings.KINDS)
    other_seeds = strings.seed_list(strings.DRY_RUN["other_seeds"])
    assert other_seeds and document["results"]["other_seeds"] == other_seeds
    for result in kinds.values():
        others = [result["other_seeds"][str(seed)] for seed in other_seeds]
        for reading in (result["now"], result["before"], *others):
            assert reading["numbers"] == strings.DRY_RUN["count"]
            assert 0 <= reading["read"] <= reading["numbers"]
            assert len(reading["misses"]) == reading["numbers"] - reading["read"]
    assert document["results"]["baseline"] == strings.BASELINE
    assert document["results"]["six_digit_overlapping"]["median_ms"] > 0
    assert (folder / strings.FIGURE).stat().st_size > 0


@pytest.mark.slow
@pytest.mark.mnist
def test_memory_dry_run_measures_each_child(dry_runs, request):
    _, _, _, document = run_dry("memory", dry_runs, request)
    results = document["results"]
    peaks = [results["training"][name]["peak_rss_mib"] for name in ("reference", "ours")]
    # Each training imports TensorFlow and then trains: its peak is above that of the import
    # alone, measured the same way, which is itself hundreds of MiB.
    importing = common.run_child([sys.executable, "-c", "import tensorflow"], "import")
    assert importing.peak_rss_mib > 100
    assert all(peak > importing.peak_rss_mib for peak in peaks), (peaks, importing.peak_rss_mib)
    # Importing TensorFlow costs hundreds of MiB that interface.py never pays.
    assert results["cli"]["interface"]["max_mib"] < results["cli"]["tutorial"]["median_mib"]


@pytest.mark.slow
@pytest.mark.mnist
def test_report_names_the_command_behind_every_row(dry_runs, request):
    for name in SCRIPTS:
        folder = run_dry(name, dry_runs, request)[2]
    text = report.report(report.load(folder))
    rows = [line for line in text.splitlines() if line.startswith("| ")][2:]
    file_counts = len(throughput.DRY_RUN["files"].split(","))
    # training: time and error; time to 99; cold start; files + realistic + in process; memory:
    # two; realistic: single digits and numbers; strings: the kinds, all seeds together and the
    # 6-digit timing
    assert len(rows) == 2 + 1 + 1 + (file_counts + 2) + 2 + 2 + 3
    for row in rows:
        assert "`python -m bench." in row and "--dry-run" in row and "(dry-run" in row


# --- the committed records ----------------------------------------------------------------------


def absolute_paths(value) -> list[str]:
    """The strings in a JSON document that hold an absolute path (POSIX or Windows)."""
    if isinstance(value, dict):
        return [path for item in value.values() for path in absolute_paths(item)]
    if isinstance(value, list):
        return [path for item in value for path in absolute_paths(item)]
    if isinstance(value, str) and re.search(r"(^|[\s'\"(=])(/[\w.-]+)+/|\b[A-Za-z]:\\", value):
        return [value]
    return []


def test_the_committed_records_hold_no_absolute_paths():
    records = sorted(common.RESULTS.glob("*.json"))
    assert {path.stem for path in records} == set(SCRIPTS) | TRAINING_RECORDS
    for path in records:
        assert absolute_paths(json.loads(path.read_text())) == [], path.name


def test_absolute_paths_are_found():
    document = {"a": ["bestmodel.h5", {"b": "/tmp/x/image.png: 7"}], "c": "C:\\data\\m.h5"}
    assert absolute_paths(document) == ["/tmp/x/image.png: 7", "C:\\data\\m.h5"]
    assert absolute_paths({"command": "python -m bench.training", "ratio": "1/2"}) == []


def test_a_record_names_files_outside_the_repository_by_name_alone(tmp_path):
    assert common.recorded_path(common.REPO / "bestmodel.h5") == "bestmodel.h5"
    assert common.recorded_path(tmp_path / "m.h5") == "(outside the repository)/m.h5"
    arguments = ["--output", str(tmp_path / "out"), f"--model={common.REPO / 'bestmodel.h5'}"]
    assert [common.recorded_argument(argument) for argument in arguments] == [
        "--output",
        "(outside the repository)/out",
        "--model=bestmodel.h5",
    ]


# --- helpers ------------------------------------------------------------------------------------


def test_spread_reports_median_quartiles_and_range():
    stats = common.spread([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (stats["median"], stats["min"], stats["max"]) == (3.0, 1.0, 5.0)
    assert (stats["q1"], stats["q3"]) == (2.0, 4.0)
    assert common.spread([2.5])["q1"] == common.spread([2.5])["q3"] == 2.5


def test_paused_clock_leaves_out_the_pauses(monkeypatch):
    now = iter([10.0, 12.0, 15.0, 16.0])  # start, pause begins, pause ends, reading
    monkeypatch.setattr(common.time, "perf_counter", lambda: next(now))
    clock = common.PausableClock()
    clock.start()
    with clock.paused():
        pass
    assert clock.elapsed() == pytest.approx(3.0)  # 6 s in all, 3 of them paused


def test_markdown_table_aligns_numbers_right():
    assert common.markdown_table(["a", "b"], [("x", 1)]).splitlines() == [
        "| a | b |",
        "| :-- | --: |",
        "| x | 1 |",
    ]


def test_child_peak_memory_is_the_childs_own():
    small = common.run_child([sys.executable, "-c", "pass"], "small")
    big = common.run_child(
        [sys.executable, "-c", "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])"],
        "big",
    )
    assert small.peak_rss_mib < 100 < 300 < big.peak_rss_mib


def test_a_failing_child_says_why():
    failing = "import sys; print('last words', file=sys.stderr); sys.exit(3)"
    with pytest.raises(RuntimeError, match=r"doomed failed \(exit 3\): last words"):
        common.run_child([sys.executable, "-c", failing], "doomed")


def test_abba_order_alternates_the_programs():
    assert cold_start.alternate(2) == ["interface", "tutorial", "tutorial", "interface"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_option_states_its_default(name):
    parser = SCRIPTS[name].build_parser()
    for action in parser._actions:
        if action.option_strings and action.nargs != 0:  # options that take a value
            assert "default" in action.help, (name, action.option_strings)
    assert "--dry-run" in parser.format_help() and "--quick" in parser.format_help()


def test_a_dry_run_refuses_to_write_to_bench_results(capsys):
    with pytest.raises(SystemExit) as exit_:
        common.parse(training.build_parser(), ["--dry-run", "--output", str(common.RESULTS)])
    assert exit_.value.code == 2
    assert "never writes to bench/results" in capsys.readouterr().err


def test_an_option_given_wins_over_the_mode(tmp_path):
    _, mode, output = common.parse(
        cold_start.build_parser(),
        ["--quick", "--runs", "2", "--output", str(tmp_path), "--model", __file__],
    )
    assert mode.name == "quick" and output == tmp_path
    assert mode.settings == {**cold_start.QUICK, "runs": 2}


def test_a_missing_model_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        common.parse(throughput.build_parser(), ["--model", str(tmp_path / "none.h5")])
    assert exit_.value.code == 2
    assert "none.h5 does not exist" in capsys.readouterr().err


def test_the_scripts_start_without_tensorflow():
    # --help and the timing-only benchmarks must not pay TensorFlow's import.
    code = (
        "import sys, bench.training, bench.time_to_99, bench.cold_start, bench.throughput, "
        "bench.memory, bench.report; assert 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
