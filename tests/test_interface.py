"""Tests for interface.py, run as users run it: `python interface.py ...` in a subprocess.

The model is the committed bestmodel.h5 (conftest's committed_model). The pictures come from
tests/pictures.py; bad inputs and bad models are made here.
"""

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from digits.synthetic.pictures import render_digits

REPO = Path(__file__).resolve().parent.parent
INTERFACE = REPO / "interface.py"
NUMBER = "305"
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    """A folder of test pictures (the CLI runs in it, so names stay short).

    digits/        one hand-drawn picture per digit (digit_0.png ... digit_9.png), plus a note,
                   a hidden picture and a subfolder with a picture, which a folder does not include
    number.png     "305" hand-drawn;  blank.png  paper without ink
    notes/         a folder without pictures
    """
    root = tmp_path_factory.mktemp("pictures")
    folder = root / "digits"
    (folder / "more").mkdir(parents=True)
    for digit in "0123456789":
        picture = render_digits(digit, stroke=True, size=80, seed=int(digit))
        picture.save(folder / f"digit_{digit}.png")
    render_digits("1", stroke=True, size=80).save(folder / ".hidden.png")
    render_digits("2", stroke=True, size=80).save(folder / "more" / "inner.png")
    (folder / "notes.txt").write_text("not a picture")
    render_digits(NUMBER, stroke=True, size=80, seed=1).save(root / "number.png")
    Image.new("RGB", (120, 90), (245, 240, 230)).save(root / "blank.png")
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("no pictures here")
    return root


def run_cli(cwd: Path, *args, model: Path | None = None) -> subprocess.CompletedProcess:
    """interface.py with `args` (str or bytes) in `cwd`; stdout and stderr as bytes."""
    options = ["--model", str(model)] if model is not None else []
    return subprocess.run(
        [sys.executable, str(INTERFACE), *options, *args],
        cwd=cwd,
        capture_output=True,
        timeout=TIMEOUT_S,
    )


def lines(stream: bytes) -> list[str]:
    return stream.decode("utf-8").splitlines()  # strict: the output must be valid UTF-8


def answers(stdout: bytes) -> dict[str, str]:
    """{file: what was read} from text output lines `file: reading`."""
    return dict(line.split(": ", 1) for line in lines(stdout) if not line.startswith(" "))


def error_lines(stderr: bytes) -> dict[str, str]:
    """{file: reason} from `interface.py: file: reason` lines; fails on anything else."""
    errors = {}
    for line in lines(stderr):
        program, name, reason = line.split(": ", 2)
        assert program == "interface.py", line
        assert name not in errors, f"two lines about {name}"
        errors[name] = reason
    return errors


# --- reading pictures ---


def test_reads_every_digit_and_a_number(pictures, committed_model):
    result = run_cli(pictures, "number.png", "digits", model=committed_model)

    read = answers(result.stdout)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert read.pop("number.png").startswith(f"{NUMBER} (")
    # A folder gives its pictures in name order, without hidden files, notes or subfolders.
    assert list(read) == [f"digits/digit_{digit}.png" for digit in "0123456789"]
    for name, reading in read.items():
        assert reading.startswith(f"{name[-5]} ("), (name, reading)


def test_many_pictures_are_answered_in_order(pictures, committed_model, tmp_path):
    # Enough pictures for the worker processes to share them out (where there are several CPUs).
    digits = [str(index * 7 % 10) for index in range(120)]
    for index, digit in enumerate(digits):
        os.link(pictures / "digits" / f"digit_{digit}.png", tmp_path / f"{index:03}.png")

    result = run_cli(tmp_path, ".", model=committed_model)

    assert result.returncode == 0, result.stderr
    read = answers(result.stdout)
    assert list(read) == [f"{index:03}.png" for index in range(120)]
    assert [reading[0] for reading in read.values()] == digits


def test_json_gives_one_object_per_input(pictures, committed_model):
    result = run_cli(
        pictures, "--json", "number.png", "blank.png", "missing.png", model=committed_model
    )

    number, blank, missing = (json.loads(line) for line in lines(result.stdout))
    assert result.returncode == 1
    assert set(number) == {"file", "prediction", "confidence", "uncertain", "digits"}
    assert (number["file"], number["prediction"]) == ("number.png", NUMBER)
    assert number["confidence"] == pytest.approx(
        np.prod([d["confidence"] for d in number["digits"]])
    )
    width, height = Image.open(pictures / "number.png").size
    for digit, expected in zip(number["digits"], NUMBER, strict=True):
        assert set(digit) == {"digit", "confidence", "probabilities", "box", "uncertain"}
        assert digit["digit"] == int(expected)
        assert len(digit["probabilities"]) == 10 and sum(digit["probabilities"]) == pytest.approx(1)
        assert digit["confidence"] == max(digit["probabilities"])
        assert digit["uncertain"] == (digit["confidence"] < 0.8)
        x0, y0, x1, y1 = digit["box"]
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    lefts = [digit["box"][0] for digit in number["digits"]]
    assert lefts == sorted(lefts)
    assert blank == {
        "file": "blank.png",
        "prediction": "",
        "confidence": 0,
        "uncertain": False,
        "digits": [],
    }
    assert missing["file"] == "missing.png" and "no such file" in missing["error"]
    assert list(error_lines(result.stderr)) == ["missing.png"]


def test_top_lists_the_most_likely_digits(pictures, committed_model):
    result = run_cli(pictures, "--top", "3", "number.png", model=committed_model)

    first, *details = lines(result.stdout)
    assert result.returncode == 0
    assert first.startswith(f"number.png: {NUMBER} (")
    assert len(details) == len(NUMBER)
    for number, (detail, expected) in enumerate(zip(details, NUMBER, strict=True), 1):
        where, choices = detail.split(": ")
        assert where.startswith(f"  #{number} at ")
        ranked = [choice.split() for choice in choices.split("  ")]
        assert len(ranked) == 3 and ranked[0][0] == expected
        percentages = [float(p.rstrip("%")) for _, p in ranked]
        assert percentages == sorted(percentages, reverse=True)


def test_save_preprocessed_writes_what_the_model_saw(
    pictures, committed_model, classifier, tmp_path
):
    saved = tmp_path / "seen"
    result = run_cli(
        pictures,
        "number.png",
        "digits/digit_7.png",
        "--save-preprocessed",
        str(saved),
        model=committed_model,
    )

    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in saved.iterdir())
    assert names == ["digit_7_1.png", "number_1.png", "number_2.png", "number_3.png"]
    images = []
    for name in ["number_1.png", "number_2.png", "number_3.png", "digit_7_1.png"]:
        with Image.open(saved / name) as image:
            assert (image.size, image.mode) == ((28, 28), "L")
            images.append(np.asarray(image, np.float32) / 255)
    images = np.stack(images)
    assert images[:, 0, :].max() < 0.1 and images.max(axis=(1, 2)).min() > 0.7  # white on black
    read = classifier.probabilities(images).argmax(axis=1)
    assert "".join(map(str, read)) == NUMBER + "7"


def test_the_default_model_is_beside_interface_py(pictures, committed_model):
    assert committed_model == INTERFACE.parent / "bestmodel.h5"
    result = run_cli(pictures, "number.png")  # run elsewhere, no --model
    assert result.returncode == 0 and answers(result.stdout)["number.png"].startswith(NUMBER)


def test_tensorflow_is_never_imported(pictures, committed_model):
    check = (
        "import sys, interface; status = interface.main(['--model', sys.argv[1], 'number.png']);"
        "assert not {'tensorflow', 'keras'} & set(sys.modules), 'tensorflow imported';"
        "sys.exit(status)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check, str(committed_model)],
        cwd=pictures,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr


# --- exit status ---


@pytest.mark.parametrize(
    ("inputs", "status"),
    [
        (["number.png"], 0),
        (["number.png", "blank.png"], 3),
        (["blank.png", "missing.png"], 1),
        (["number.png", "notes"], 1),
    ],
    ids=["all read", "no digit", "failed beats no digit", "folder without pictures"],
)
def test_exit_status_says_how_it_went(pictures, committed_model, inputs, status):
    assert run_cli(pictures, *inputs, model=committed_model).returncode == status


@pytest.mark.parametrize(
    "args",
    [[], ["--top", "0", "number.png"], ["--serve", "number.png"], ["--no-such-option", "x.png"]],
    ids=["no input", "bad --top", "--serve with pictures", "unknown option"],
)
def test_usage_errors_exit_2(pictures, args):
    result = run_cli(pictures, *args)
    assert result.returncode == 2
    assert b"usage:" in result.stderr and b"Traceback" not in result.stderr


def test_help_documents_the_exit_status(pictures):
    result = run_cli(pictures, "--help")
    text = result.stdout.decode()
    assert result.returncode == 0
    for status in ("0 ", "1 ", "2 ", "3 ", "130 "):
        assert f"\n  {status}" in text[text.index("Exit status") :]


# --- bad inputs: one line each on stderr, the others still answered ---


def png_claiming_size(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header claims width × height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_bad_inputs_each_get_one_line_and_the_good_ones_are_read(
    pictures, committed_model, tmp_path
):
    good = (pictures / "number.png").read_bytes()
    (tmp_path / "good.png").write_bytes(good)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.png").write_text("I am not a picture")
    (tmp_path / "bomb.png").write_bytes(png_claiming_size(50_000, 50_000))
    (tmp_path / "loop.png").symlink_to("loop.png")
    (tmp_path / "no_pictures").mkdir()
    with open(os.fsencode(tmp_path) + b"/\xff\xfegood.png", "wb") as file:  # not UTF-8
        file.write(good)
    inputs = [
        "missing.png",
        "good.png",
        "empty.png",
        "truncated.png",
        "text.png",
        "bomb.png",
        "loop.png",
        "no_pictures",
        b"\xff\xfegood.png",
    ]

    result = run_cli(tmp_path, *inputs, model=committed_model)

    assert result.returncode == 1
    assert b"Traceback" not in result.stderr
    read = answers(result.stdout)
    assert list(read) == ["good.png", "\\xff\\xfegood.png"]
    assert all(reading.startswith(f"{NUMBER} (") for reading in read.values())
    errors = error_lines(result.stderr)
    assert list(errors) == [name for name in inputs if "good" not in str(name)]
    assert "no such file" in errors["missing.png"]
    assert "empty" in errors["empty.png"]
    assert "truncated" in errors["truncated.png"]
    assert "not an image" in errors["text.png"]
    assert "limit" in errors["bomb.png"]
    assert "symbolic links" in errors["loop.png"]
    assert "without picture files" in errors["no_pictures"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_reported(pictures, committed_model, tmp_path):
    locked = tmp_path / "locked.png"
    shutil.copy(pictures / "number.png", locked)
    locked.chmod(0)
    result = run_cli(tmp_path, "locked.png", model=committed_model)
    assert result.returncode == 1
    assert error_lines(result.stderr) == {"locked.png": "permission denied"}


def rewrite_config(source: Path, target: Path, change) -> Path:
    """A copy of the model whose model_config JSON went through change(config)."""
    shutil.copy(source, target)
    with h5py.File(target, "r+") as file:
        config = json.loads(file.attrs["model_config"])
        change(config["config"])
        file.attrs["model_config"] = json.dumps(config)
    return target


def add_lambda(config):
    code = {"class_name": "__lambda__", "config": {"code": "4wEAAAAA", "defaults": None}}
    hostile = {"class_name": "Lambda", "config": {"name": "payload", "function": code}}
    config["layers"].insert(1, hostile)


def widen_input(config):
    config["layers"][0]["config"]["batch_shape"] = [None, 32, 32, 3]


BAD_MODELS = {
    "missing": (None, "no such model file"),
    "not HDF5": (lambda model, path: path.write_text("not a model"), "not a model file"),
    "truncated": (
        lambda model, path: path.write_bytes(model.read_bytes()[: model.stat().st_size // 2]),
        "truncated",
    ),
    "Lambda layer": (
        lambda model, path: rewrite_config(model, path, add_lambda),
        "refused: layer 'payload' is a 'Lambda'",
    ),
    "wrong input shape": (
        lambda model, path: rewrite_config(model, path, widen_input),
        "model expects input 32×32×3; this program needs 28×28×1 → 10",
    ),
}


@pytest.mark.parametrize(("make", "message"), BAD_MODELS.values(), ids=BAD_MODELS.keys())
def test_an_unusable_model_exits_2_with_one_line(
    pictures, committed_model, tmp_path, make, message
):
    bad = tmp_path / "bad.h5"
    if make is not None:
        make(committed_model, bad)
    result = run_cli(pictures, "number.png", model=bad)
    assert result.returncode == 2
    assert result.stdout == b""
    errors = error_lines(result.stderr)
    assert list(errors) == [str(bad)] and message in errors[str(bad)]


# --- the drawing board ---


def test_serve_starts_the_drawing_board_with_the_model(pictures, committed_model):
    process = subprocess.Popen(
        [sys.executable, str(INTERFACE), "--model", str(committed_model), "--serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        banner = process.stdout.readline().decode()
        url = banner[banner.index("http://") :].split()[0]
        request = urllib.request.Request(
            url + "api/read", data=(pictures / "number.png").read_bytes(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            assert json.loads(response.read())["prediction"] == NUMBER
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 130  # Ctrl-C is how the board ends: "interrupted", as documented
    assert stderr.decode().splitlines()[-1] == "interface.py: interrupted"


# --- interruptions ---


def test_ctrl_c_exits_130_with_one_line(pictures, committed_model, tmp_path):
    fifo = tmp_path / "slow.png"
    os.mkfifo(fifo)  # the CLI blocks reading it: a picture that never finishes arriving
    process = subprocess.Popen(
        [sys.executable, str(INTERFACE), "--model", str(committed_model), str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    writer = open_writer_when_read(fifo, process)
    try:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=TIMEOUT_S)
    finally:
        os.close(writer)
    assert process.returncode == 130
    assert lines(stderr) == ["interface.py: interrupted"]


def open_writer_when_read(fifo: Path, process: subprocess.Popen) -> int:
    """Open the FIFO for writing once the process has opened it for reading."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody reads it yet
            time.sleep(0.02)
    process.kill()
    pytest.fail(f"the CLI never opened the FIFO: {process.communicate()}")


def test_a_closed_pipe_ends_quietly(pictures, committed_model, tmp_path):
    for index in range(300):  # far more JSON than a pipe holds
        os.link(pictures / "number.png", tmp_path / f"copy_{index:03}.png")
    process = subprocess.Popen(
        [sys.executable, str(INTERFACE), "--model", str(committed_model), "--json", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = process.stdout.readline()
    process.stdout.close()  # as `| head -n 1` does
    stderr = process.stderr.read()
    process.wait(timeout=TIMEOUT_S)
    assert json.loads(first)["prediction"] == NUMBER
    assert stderr == b""
    assert process.returncode == 141
