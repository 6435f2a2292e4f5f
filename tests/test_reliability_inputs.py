"""Reliability of `python interface.py` against bad and odd input: a corpus of 30-odd kinds.

Every kind is made here, in a temporary folder, and given to the command line on its own: it must
answer with the documented exit status, at most one line on standard error (`interface.py: name:
reason`, no traceback), and stay within a memory bound. The child runs under an address-space
limit (RLIMIT_AS, so a leak fails cleanly instead of swapping the machine), and its own peak
resident memory is read back with os.wait4 by a small launcher (bench.common.with_peak_memory: a
direct child of pytest would count pytest's own memory in its peak). Then one call mixes every
kind with good pictures, and every good one must still be read correctly.

An unreadable file stays unreadable for root (CI runs as root): the child is started without the
capabilities that let root ignore file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, dropped from
its bounding set), and a plain user needs nothing more than chmod 0.

Both the per-kind table and the mixed call read with the trained model (the committed
bestmodel.h5), and check what is read, not only the names and exit statuses: each good kind's
digits, and in the mixed call 100 distinct pictures of known numbers among the bad kinds.
"""

import contextlib
import ctypes
import io
import json
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from bench.common import peak_memory_report, with_peak_memory
from digits.synthetic.pictures import render_digits

REPO = Path(__file__).resolve().parent.parent
INTERFACE = REPO / "interface.py"
TIMEOUT_S = 120
ADDRESS_SPACE_LIMIT = 2 * 2**30  # the child's RLIMIT_AS
MEMORY_BOUND = 400 * 2**20  # peak resident memory for any input (measured: at most 125 MB)
PIPED_BYTES = 300 * 2**20  # a stream given through a pipe: far more than any picture needs
EXIT_OK, EXIT_FAILED, EXIT_NO_DIGIT = 0, 1, 3
# The good pictures of the mixed call: "0" to "99", each drawn once; with the bad kinds, over
# 2 × reader.PICTURES_PER_WORKER inputs, so worker processes share them out.
GOOD_NUMBERS = [str(value) for value in range(100)]

# One kind of input: how to make it, the status it must give alone, what its error line says
# (None: no error line) and, for the mixed call, what must be read ("" for no digit).
# make(folder) writes into folder and returns the command-line argument (str or bytes).


@dataclass(frozen=True)
class Kind:
    make: object
    status: int
    error: str | None = None
    reading: str | None = None


# --- pictures ---------------------------------------------------------------------------------


def number(text: str, **style) -> Image.Image:
    """A hand-drawn number on paper, as tests/test_interface.py draws them."""
    return render_digits(text, stroke=True, size=80, seed=len(text), **style)


def encoded(image: Image.Image, file_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, file_format, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def one_bit_png(width: int, height: int) -> bytes:
    """A valid, all-white 1-bit grey PNG: tiny on disk however large."""
    row = b"\xff" * -(-width // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(b"\x00" + row) for _ in range(height))
    data += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return (
        signature + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
    )


def write(folder: Path, name: str | bytes, data: bytes) -> str | bytes:
    with open(os.path.join(os.fsencode(folder), os.fsencode(name)), "wb") as file:
        file.write(data)
    return name


# --- the kinds ----------------------------------------------------------------------------------


def empty(folder):
    return write(folder, "empty.png", b"")


def truncated_png(folder):
    data = encoded(number("1"), "PNG")
    return write(folder, "truncated.png", data[: len(data) // 2])


def truncated_jpeg(folder):
    data = encoded(number("1"), "JPEG", quality=90)
    return write(folder, "truncated.jpg", data[: len(data) // 2])


def random_bytes(folder):
    return write(folder, "random.png", np.random.default_rng(1).bytes(5000))


def random_after_jpeg_marker(folder):
    return write(folder, "random.jpg", b"\xff\xd8\xff\xe0" + np.random.default_rng(2).bytes(5000))


def png_with_bad_header_checksum(folder):
    data = bytearray(encoded(number("2"), "PNG"))
    data[29] ^= 0xFF  # the IHDR chunk's CRC
    return write(folder, "bad_crc.png", bytes(data))


def png_with_damaged_pixel_data(folder):
    """Valid chunks (CRCs right), but the compressed pixels are random bytes."""
    png = encoded(number("2"), "PNG")
    start = png.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", png[start : start + 4])
    junk = png_chunk(b"IDAT", np.random.default_rng(4).bytes(length))
    return write(folder, "damaged.png", png[:start] + junk + png[start + 12 + length :])


def text_file(folder):
    return write(folder, "notes.png", b"Shopping list: eggs, milk, 3 apples\n")


def svg(folder):
    drawing = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        b'<text x="10" y="80" font-size="80">7</text></svg>'
    )
    return write(folder, "seven.svg", drawing)


def one_pixel(folder):
    return write(folder, "pixel.png", encoded(Image.new("L", (1, 1), 0), "PNG"))


def thin_strip(folder):
    return write(folder, "strip.png", encoded(Image.new("L", (4000, 1), 200), "PNG"))


def white(folder):
    return write(folder, "white.png", encoded(Image.new("RGB", (200, 150), "white"), "PNG"))


def black(folder):
    return write(folder, "black.png", encoded(Image.new("L", (200, 150), 0), "PNG"))


def transparent(folder):
    return write(folder, "clear.png", encoded(Image.new("RGBA", (200, 150), (0, 0, 0, 0)), "PNG"))


def noise(folder):
    pixels = np.random.default_rng(3).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    return write(folder, "noise.png", encoded(Image.fromarray(pixels, "RGB"), "PNG"))


def bomb(folder):
    return write(folder, "bomb.png", one_bit_png(20_000, 20_000))  # 400 megapixels, ~60 kB


def text_chunk_bomb(folder):
    """A small PNG whose compressed text chunk (before the pixels) inflates to 256 MB."""
    compressor = zlib.compressobj(9)
    block = b"\0" * 2**20
    inflating = b"".join(compressor.compress(block) for _ in range(256)) + compressor.flush()
    chunk = png_chunk(b"zTXt", b"Comment\0\0" + inflating)
    png = encoded(number("3"), "PNG")
    return write(folder, "text_bomb.png", png[:33] + chunk + png[33:])  # right after IHDR


def large_one_bit(folder):
    """24 megapixels, under the limit: read, in bounded memory."""
    small = number("58").convert("L").point(lambda v: 255 if v > 128 else 0)
    large = small.resize((6000, 4000), Image.Resampling.NEAREST).convert("1")
    return write(folder, "large.png", encoded(large, "PNG"))


def animated_gif(folder):
    first, second = number("4"), number("7").resize(number("4").size)
    data = encoded(first, "GIF", save_all=True, append_images=[second], duration=200, loop=0)
    return write(folder, "animated.gif", data)


def cmyk_jpeg(folder):
    return write(folder, "cmyk.jpg", encoded(number("12").convert("CMYK"), "JPEG", quality=92))


def sixteen_bit_png(folder):
    # Image.fromarray picks I;16 for uint16 (render_digits(mode="I;16") fails on Pillow 13).
    grey = np.asarray(number("69").convert("L"), np.uint16) * 257
    return write(folder, "grey16.png", encoded(Image.fromarray(grey), "PNG"))


def palette_with_transparency(folder):
    picture = number("47").convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    paper = int(np.bincount(np.asarray(picture).ravel()).argmax())
    return write(folder, "palette.png", encoded(picture, "PNG", transparency=paper))


def exif_rotated_jpeg(folder):
    """Stored turned a quarter left; EXIF orientation 6 says to turn it right to view it."""
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = number("305").transpose(Image.Transpose.ROTATE_90)
    return write(folder, "rotated.jpg", encoded(stored, "JPEG", quality=92, exif=exif.tobytes()))


def jpeg_named_png(folder):
    return write(folder, "really_a_jpeg.png", encoded(number("8"), "JPEG", quality=92))


def float_tiff_with_nan(folder):
    values = np.asarray(number("90").convert("L"), np.float32) / 255
    values[:3, :3], values[-1, -1] = np.nan, np.inf
    return write(folder, "float.tif", encoded(Image.fromarray(values), "TIFF"))


def tiff_with_odd_metadata(folder):
    """A good TIFF whose PlanarConfiguration tag has two values: Pillow reads it, with a warning."""
    data = bytearray(encoded(number("5").convert("L"), "TIFF"))
    (directory,) = struct.unpack_from("<I", data, 4)  # Pillow writes little-endian ("II")
    (entries,) = struct.unpack_from("<H", data, directory)
    for entry in range(directory + 2, directory + 2 + 12 * entries, 12):
        if struct.unpack_from("<H", data, entry)[0] == 284:
            struct.pack_into("<I", data, entry + 4, 2)  # its count: 2 shorts, still inline
    return write(folder, "odd_tags.tif", bytes(data))


def folder_named_like_a_picture(folder):
    (folder / "album.png").mkdir()
    return "album.png"


def missing(folder):
    return "missing.png"


def below_a_file(folder):
    write(folder, "plain.png", encoded(number("1"), "PNG"))
    return "plain.png/inner.png"


def unreadable(folder):
    name = write(folder, "locked.png", encoded(number("1"), "PNG"))
    (folder / name).chmod(0)
    return name


def symlink_loop(folder):
    (folder / "loop.png").symlink_to("loop.png")
    return "loop.png"


def non_utf8_bad(folder):
    return write(folder, b"\xff\xfebroken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 20)


def non_utf8_good(folder):
    return write(folder, b"caf\xe9.png", encoded(number("6"), "PNG"))


CORPUS = {
    "zero bytes": Kind(empty, EXIT_FAILED, "an empty file (0 bytes)"),
    "truncated PNG": Kind(truncated_png, EXIT_FAILED, "truncated"),
    "truncated JPEG": Kind(truncated_jpeg, EXIT_FAILED, "truncated"),
    "random bytes as .png": Kind(random_bytes, EXIT_FAILED, "not an image"),
    "random bytes after a JPEG marker": Kind(random_after_jpeg_marker, EXIT_FAILED, "image"),
    "PNG with a bad header checksum": Kind(png_with_bad_header_checksum, EXIT_FAILED, "not an"),
    "PNG with damaged pixel data": Kind(png_with_damaged_pixel_data, EXIT_FAILED, "damaged"),
    "text file": Kind(text_file, EXIT_FAILED, "not an image"),
    "SVG": Kind(svg, EXIT_FAILED, "not an image"),
    "1×1": Kind(one_pixel, EXIT_NO_DIGIT, reading=""),
    "4000×1 strip": Kind(thin_strip, EXIT_NO_DIGIT, reading=""),
    "blank white": Kind(white, EXIT_NO_DIGIT, reading=""),
    "blank black": Kind(black, EXIT_NO_DIGIT, reading=""),
    "blank transparent": Kind(transparent, EXIT_NO_DIGIT, reading=""),
    "pure noise": Kind(noise, EXIT_NO_DIGIT, reading=""),
    "20000×20000 1-bit PNG": Kind(bomb, EXIT_FAILED, "the limit is 40 megapixels"),
    "text chunk inflating to 256 MB": Kind(text_chunk_bomb, EXIT_FAILED, "too large"),
    "6000×4000 1-bit PNG": Kind(large_one_bit, EXIT_OK, reading="58"),
    "animated GIF": Kind(animated_gif, EXIT_OK, reading="4"),
    "CMYK JPEG": Kind(cmyk_jpeg, EXIT_OK, reading="12"),
    "16-bit PNG": Kind(sixteen_bit_png, EXIT_OK, reading="69"),
    "palette PNG with transparency": Kind(palette_with_transparency, EXIT_OK, reading="47"),
    "EXIF-rotated JPEG": Kind(exif_rotated_jpeg, EXIT_OK, reading="305"),
    "JPEG named .png": Kind(jpeg_named_png, EXIT_OK, reading="8"),
    "float TIFF with NaN and inf": Kind(float_tiff_with_nan, EXIT_OK, reading="90"),
    "TIFF with odd metadata": Kind(tiff_with_odd_metadata, EXIT_OK, reading="5"),
    "folder named x.png": Kind(folder_named_like_a_picture, EXIT_FAILED, "without picture files"),
    "missing path": Kind(missing, EXIT_FAILED, "no such file"),
    "path below a file": Kind(below_a_file, EXIT_FAILED, "not a directory"),
    "no read permission": Kind(unreadable, EXIT_FAILED, "permission denied"),
    "symlink loop": Kind(symlink_loop, EXIT_FAILED, "symbolic links"),
    "non-UTF-8 name, broken": Kind(non_utf8_bad, EXIT_FAILED, "not an image"),
    "non-UTF-8 name, good": Kind(non_utf8_good, EXIT_OK, reading="6"),
}


# --- running the command line ---------------------------------------------------------------


@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str
    peak_rss: int  # bytes, the child's own


def file_modes_bind_children() -> bool:
    """Whether a file with mode 0 is unreadable to the children started here: always for a
    plain user; for root, when it may drop capabilities from its bounding set (CAP_SETPCAP)."""
    if os.geteuid() != 0:
        return True
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    effective = re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.MULTILINE)
    return bool(effective) and bool(int(effective.group(1), 16) >> 8 & 1)


FILE_MODES_BIND = file_modes_bind_children()


def bound_resources() -> None:
    """preexec_fn: cap the address space, and take away root's power to ignore file modes."""
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    if os.geteuid() == 0 and FILE_MODES_BIND:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec too
                raise OSError(ctypes.get_errno(), "cannot drop file-permission capabilities")


def run_cli(
    cwd: Path, *args, model: Path | None, interface: Path = INTERFACE, feed=None
) -> Outcome:
    """interface.py in `cwd` under the resource bounds (model None: its default); feed(pipe), if
    given, writes its standard input from a thread."""
    out_path, err_path = cwd.parent / f"{cwd.name}.stdout", cwd.parent / f"{cwd.name}.stderr"
    report = cwd.parent / f"{cwd.name}.peak"
    options = [] if model is None else ["--model", str(model)]
    command = [sys.executable, str(interface), *options, *args]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(
            with_peak_memory(command, report),
            cwd=cwd,
            stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=bound_resources,
            start_new_session=True,  # so that the watchdog stops the launcher and interface.py
        )
    watchdog = threading.Timer(TIMEOUT_S, os.killpg, (process.pid, signal.SIGKILL))
    watchdog.start()
    writer = threading.Thread(target=feed, args=(process.stdin,)) if feed else None
    if writer:
        writer.start()
    try:
        process.wait()
    finally:
        watchdog.cancel()
        if writer:
            writer.join()
    assert process.returncode != -9, f"interface.py did not finish in {TIMEOUT_S} s"
    maxrss, _ = peak_memory_report(report)
    return Outcome(
        process.returncode,
        out_path.read_bytes().decode("utf-8"),  # strict: output must be valid UTF-8
        err_path.read_bytes().decode("utf-8"),
        maxrss * 1024,
    )


def shown(argument: str | bytes) -> str:
    """The name as interface.py prints it: undecodable bytes as \\xNN."""
    return os.fsencode(argument).decode("utf-8", "backslashreplace")


def error_lines(stderr: str) -> dict[str, str]:
    """{name: reason} from `interface.py: name: reason` lines; fails on any other line."""
    errors = {}
    for line in stderr.splitlines():
        assert "Traceback" not in line, line
        assert not re.search(r"\b\w+(Error|Exception)\b:", line), f"a Python error dump: {line}"
        program, name, reason = line.split(": ", 2)
        assert program == "interface.py" and name not in errors, line
        errors[name] = reason
    return errors


def readings(stdout: str) -> dict[str, str]:
    """{name: digits read} ("" for no digit) from `name: 305 (99.1%)` lines."""
    read = {}
    for line in stdout.splitlines():
        name, answer = line.rsplit(": ", 1)
        read[name] = "" if answer == "no digit found" else answer.split(" ")[0]
    return read


# --- models -------------------------------------------------------------------------------------


def random_model(path: Path) -> Path:
    """Input → Flatten → Dense softmax with random weights, in Keras 3's .h5 layout."""
    layers = [
        {"class_name": "InputLayer", "config": {"name": "input", "batch_shape": [None, 28, 28, 1]}},
        {"class_name": "Flatten", "config": {"name": "flatten"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 10, "activation": "softmax"}},
    ]
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as file:
        config = {"class_name": "Sequential", "config": {"name": "random", "layers": layers}}
        file.attrs["model_config"] = json.dumps(config)
        group = file.create_group("model_weights/dense")
        names = ["sequential/dense/kernel", "sequential/dense/bias"]
        group.create_dataset(names[0], data=rng.normal(0, 0.1, (784, 10)).astype(np.float32))
        group.create_dataset(names[1], data=np.zeros(10, np.float32))
        group.attrs["weight_names"] = names
    return path


@pytest.fixture(scope="module")
def any_model(tmp_path_factory) -> Path:
    return random_model(tmp_path_factory.mktemp("model") / "random.h5")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str | bytes]]:
    """Every kind made once in one folder: (folder, {kind: argument})."""
    folder = tmp_path_factory.mktemp("corpus")
    kinds = {name: kind for name, kind in CORPUS.items() if name not in UNENFORCEABLE}
    return folder, {name: kind.make(folder) for name, kind in kinds.items()}


# --- the tests ----------------------------------------------------------------------------------


def test_the_corpus_has_at_least_twenty_kinds():
    assert len(CORPUS) >= 20


UNENFORCEABLE = set() if FILE_MODES_BIND else {"no read permission"}
ROOT_IGNORES_MODES = pytest.mark.skip(reason="root without CAP_SETPCAP reads any file")
KINDS = [
    pytest.param(kind, id=name, marks=[ROOT_IGNORES_MODES] if name in UNENFORCEABLE else [])
    for name, kind in CORPUS.items()
]


@pytest.mark.parametrize("expected", KINDS)
def test_each_kind_alone_gives_its_status_one_line_and_bounded_memory(
    committed_model, tmp_path, expected
):
    argument = expected.make(tmp_path)

    outcome = run_cli(tmp_path, argument, model=committed_model)

    assert outcome.status == expected.status, outcome
    errors = error_lines(outcome.stderr)
    if expected.error is None:
        assert errors == {}
        assert readings(outcome.stdout) == {shown(argument): expected.reading}
    else:
        assert list(errors) == [shown(argument)], outcome
        assert expected.error in errors[shown(argument)]
        assert outcome.stdout == ""
    assert outcome.peak_rss < MEMORY_BOUND, f"{outcome.peak_rss / 2**20:.0f} MB"


def endless_zeros(pipe) -> None:
    """Write PIPED_BYTES of zeros, or until the reader goes away."""
    block = b"\0" * 2**20
    with contextlib.suppress(BrokenPipeError):
        for _ in range(PIPED_BYTES // len(block)):
            pipe.write(block)
    with contextlib.suppress(BrokenPipeError):
        pipe.close()


def test_a_huge_piped_input_is_refused_in_bounded_memory(tmp_path, any_model):
    outcome = run_cli(tmp_path, "/dev/stdin", model=any_model, feed=endless_zeros)

    assert outcome.status == EXIT_FAILED
    errors = error_lines(outcome.stderr)
    assert list(errors) == ["/dev/stdin"]
    assert "save it to a file first" in errors["/dev/stdin"]
    assert outcome.peak_rss < PIPED_BYTES // 2, f"{outcome.peak_rss / 2**20:.0f} MB"


def test_a_picture_through_a_pipe_is_read(tmp_path, committed_model):
    picture = encoded(number("7"), "PNG")

    def feed(pipe):
        with pipe:
            pipe.write(picture)

    outcome = run_cli(tmp_path, "/dev/stdin", model=committed_model, feed=feed)

    assert outcome.status == EXIT_OK, outcome
    assert error_lines(outcome.stderr) == {}
    assert readings(outcome.stdout) == {"/dev/stdin": "7"}


def test_good_pictures_mixed_with_every_kind_are_still_read(corpus, committed_model):
    folder, arguments = corpus
    goods = {f"good_{text}.png": text for text in GOOD_NUMBERS}
    for name, text in goods.items():
        write(folder, name, encoded(number(text), "PNG"))
    # Goods and bad kinds interleaved; so many inputs that worker processes share them out.
    bad = list(arguments.values())
    mixed = [item for pair in zip(goods, bad, strict=False) for item in pair]
    mixed += list(goods)[len(bad) :]

    outcome = run_cli(folder, *mixed, model=committed_model)

    assert outcome.status == EXIT_FAILED
    read, errors = readings(outcome.stdout), error_lines(outcome.stderr)
    kinds = {shown(argument): CORPUS[name] for name, argument in arguments.items()}
    assert set(errors) == {name for name, kind in kinds.items() if kind.error}
    assert {name: read.pop(name) for name in goods} == goods
    assert read == {name: kind.reading for name, kind in kinds.items() if kind.reading is not None}
    assert len(outcome.stdout.splitlines()) == len(goods) + len(read)  # each answered once
    assert outcome.peak_rss < MEMORY_BOUND
