"""Read handwritten digits in pictures with the trained MNIST model.

    python interface.py picture.png [more pictures or folders ...]

prints one line per picture on standard output, e.g.

    picture.png: 7 (99.8%)
    number.png: 42 (97.1%)              several digits, read left to right; the confidence
                                        is the product of the digits' confidences
    smudge.png: 7? (61.0%, uncertain)   "?" follows each digit whose top probability is
                                        below 80% (digits.predict.UNCERTAIN_BELOW)
    blank.png: no digit found

A folder stands for the picture files directly inside it (not in its subfolders: pass those
too, or use the shell, e.g. `dir/*/`), sorted by name: files ending in a picture format's
extension (.png, .jpg, .jpeg, .gif, .bmp, .tif, .tiff, .webp, .pgm, .ppm, .pbm), hidden files
skipped. A file named on the command line is tried whatever its extension. A pipe or device
(e.g. /dev/stdin) is read up to 64 MB; save a larger picture to a file first.

Every input that fails gives one line on standard error, `interface.py: <file>: <reason>`,
and the other inputs are still answered; with --json it also gives {"file": ..., "error": ...}
on standard output. File names that are not valid UTF-8 are shown with backslash escapes (\\xff).

Exit status:
  0    every input was read and held at least one digit
  1    some input could not be read (missing, no permission, empty, truncated, not a picture,
       too large, a folder without pictures ...); the other inputs were still answered.
       Also: --serve could not listen on the host and port.
  2    usage error; the model file is missing, damaged, refused (a layer that is not plain
       Keras, such as Lambda) or of the wrong shape; or the --save-preprocessed folder
       cannot be made
  3    no digit was found in some input (and no input failed)
  130  interrupted (Ctrl-C)
  141  standard output was closed early (e.g. `| head`); nothing is printed about it

Options:
  --model PATH              the Keras model file (default: bestmodel.h5 beside this script,
                            whatever the working directory)
  --top K                   also list each digit's K most likely readings with probabilities
  --json                    one JSON object per input per line instead of text (see
                            digits.predict.Reading.to_json); --top does not change it
  --save-preprocessed DIR   write the 28×28 images the model saw, as DIR/<stem>_<i>.png (white
                            ink on black, i = 1, 2 ... left to right; equal stems overwrite)
  --serve                   start the drawing board (web page) instead; --host, --port

Speed: start-up stays well under a second because nothing heavy is imported before it is
needed and TensorFlow is never imported (digits.predict runs the model with numpy). Finding
the digits in a picture takes milliseconds, so many pictures are shared out to one worker
process per CPU; their digits then go through the model together, in batches.
"""

import argparse
import os
import stat
import sys
import warnings
from pathlib import Path

# The model's matrices are small: with several BLAS threads, their start-up and spinning cost
# more than they save (measured: one thread 20× faster on a busy 2-core machine). Set before
# numpy is first imported, which is when OpenBLAS reads it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_DIGIT = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141
PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
PICTURE_SUFFIXES |= {".pgm", ".ppm", ".pbm"}
DEFAULT_MODEL = Path(__file__).resolve().parent / "bestmodel.h5"
BATCH_DIGITS = 256  # digits sent through the model together; results are printed per batch
PICTURES_PER_WORKER = 50  # fewer pictures than this per worker process are not worth starting it
# A pipe or device is read into memory before Pillow sees it (Pillow would copy it whole anyway):
# far more than any picture of digits needs, yet a bound on the memory an endless stream takes.
STREAM_LIMIT_BYTES = 64 * 2**20
PROGRAM = "interface.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description=__doc__.split("\n\n", 1)[0],
        # The docstring's folders, errors and exit status; argparse lists the options itself.
        epilog=__doc__[__doc__.index("A folder") : __doc__.index("Options:")],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="PICTURE_OR_FOLDER", type=Path, help="pictures and folders"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        metavar="PATH",
        help="the Keras .h5 model (default: bestmodel.h5 beside interface.py)",
    )
    parser.add_argument(
        "--top", type=int, metavar="K", help="also list each digit's K most likely readings"
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per input per line, instead of text"
    )
    parser.add_argument(
        "--save-preprocessed",
        type=Path,
        metavar="DIR",
        help="write the 28×28 images the model saw, as DIR/<stem>_<i>.png",
    )
    parser.add_argument("--serve", action="store_true", help="start the drawing board instead")
    parser.add_argument("--host", default="127.0.0.1", help="the board's host (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="the board's port (8000)")
    args = parser.parse_args(argv)
    if args.serve and args.inputs:
        parser.error("--serve takes no pictures")
    if not args.serve and not args.inputs:
        parser.error("give at least one picture or folder (or --serve)")
    if args.top is not None and not 1 <= args.top <= 10:
        parser.error("--top must be between 1 and 10")
    return args


def shown(path) -> str:
    """A file name as one printable line: undecodable bytes and control characters escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def report_error(name: str, reason: str) -> None:
    sys.stdout.flush()  # keep the order of the lines when both streams go to one terminal
    print(f"{PROGRAM}: {name}: {reason}", file=sys.stderr, flush=True)


def os_reason(error: OSError) -> str:
    reason = error.strerror or str(error)
    return reason[:1].lower() + reason[1:]


def expand(path: Path) -> list[tuple[Path, str | None]]:
    """The inputs an argument stands for, as (path, error): a folder's pictures, or itself."""
    if not path.is_dir():
        return [(path, None)]
    try:
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except OSError as error:
        return [(path, os_reason(error))]
    pictures = [
        Path(entry.path)
        for entry in entries
        if not entry.name.startswith(".")
        and os.path.splitext(entry.name)[1].lower() in PICTURE_SUFFIXES
        and entry.is_file()
    ]
    if not pictures:
        return [(path, "a folder without picture files")]
    return [(picture, None) for picture in pictures]


def find_digits_in(path: Path) -> list:
    """The DigitImages in one picture file; raises ImageError or OSError when it cannot be read."""
    from digits.preprocess import find_digits, open_image

    # Library warnings (e.g. Pillow on an odd TIFF tag) would print two lines of Python on
    # standard error; a picture that cannot be used raises instead. open_image still turns
    # Pillow's decompression-bomb warning into an error: its own filter comes first.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open(path, "rb") as file:
            image = open_image(picture_source(file))
        return find_digits(image)


def picture_source(file):
    """What open_image reads: a regular file itself, or the bytes of a pipe or device, at most
    STREAM_LIMIT_BYTES of them; raises ImageError for an empty file or a longer stream."""
    from digits.preprocess import ImageError

    status = os.fstat(file.fileno())
    if stat.S_ISREG(status.st_mode):
        if status.st_size == 0:
            raise ImageError("an empty file (0 bytes)")
        return file
    data = file.read(STREAM_LIMIT_BYTES + 1)
    if len(data) > STREAM_LIMIT_BYTES:
        limit = STREAM_LIMIT_BYTES // 2**20
        raise ImageError(f"more than {limit} MB from a pipe or device; save it to a file first")
    if not data:
        raise ImageError("nothing came from the pipe or device (0 bytes)")
    return data


def load_digits(path: Path) -> tuple[list | None, str | None]:
    """(the picture's DigitImages, None), or (None, why it cannot be read)."""
    from digits.preprocess import ImageError

    try:
        return find_digits_in(path), None
    except ImageError as error:
        return None, str(error)
    except OSError as error:
        return None, os_reason(error)
    except Exception as error:  # one odd file must not stop the others
        first_line = (str(error).splitlines() or [""])[0]
        return None, f"could not be read ({type(error).__name__}: {first_line})"


def load_input(item: tuple[Path, str | None]) -> tuple[Path, list | None, str | None]:
    """(path, its DigitImages or None, why it cannot be read or None) for one expanded input."""
    path, error = item
    if error is not None:
        return path, None, error
    return (path, *load_digits(path))


def available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def ignore_interrupts() -> None:
    """In worker processes: Ctrl-C is the main process's to handle (it stops the workers)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def loaded_inputs(arguments: list[Path]):
    """load_input of every input, in order. Finding the digits in a picture is the slow part
    (milliseconds), so many pictures are shared out to worker processes, one per CPU."""
    inputs = [item for argument in arguments for item in expand(argument)]
    workers = min(len(inputs) // PICTURES_PER_WORKER, available_cpus())
    if workers < 2:
        yield from map(load_input, inputs)
        return
    import multiprocessing

    with multiprocessing.Pool(workers, initializer=ignore_interrupts) as pool:
        yield from pool.imap(load_input, inputs, chunksize=8)


def read_all(classifier, arguments: list[Path]):
    """(path, Reading or None, error or None) per input, in order; digits go through in batches."""
    pending, pending_digits = [], 0
    for path, digits, error in loaded_inputs(arguments):
        pending.append((path, digits, error))
        pending_digits += len(digits or ())
        if pending_digits >= BATCH_DIGITS:
            yield from read_batch(classifier, pending)
            pending, pending_digits = [], 0
    yield from read_batch(classifier, pending)


def read_batch(classifier, pending: list):
    """(path, Reading or None, error or None) for loaded inputs, their digits read together."""
    from digits.predict import read_digit_images

    readable = [digits for _, digits, error in pending if error is None]
    readings = iter(read_digit_images(classifier, readable))
    for path, _, error in pending:
        yield path, (next(readings) if error is None else None), error


def reading_text(reading) -> str:
    if not reading.digits:
        return "no digit found"
    digits = "".join(f"{d.digit}?" if d.uncertain else str(d.digit) for d in reading.digits)
    note = ", uncertain" if reading.uncertain else ""
    return f"{digits} ({reading.confidence:.1%}{note})"


def top_lines(reading, k: int) -> list[str]:
    """Each digit's k most likely readings, e.g. `  #1 at 10,4-38,52: 7 99.1%  1 0.6%`."""
    lines = []
    for number, digit in enumerate(reading.digits, 1):
        ranked = sorted(range(10), key=lambda d: digit.probabilities[d], reverse=True)[:k]
        x0, y0, x1, y1 = digit.box
        choices = "  ".join(f"{d} {digit.probabilities[d]:.1%}" for d in ranked)
        lines.append(f"  #{number} at {x0},{y0}-{x1},{y1}: {choices}")
    return lines


def save_preprocessed(folder: Path, path: Path, reading) -> None:
    """Write the 28×28 images the model saw as folder/<stem>_<i>.png, white ink on black."""
    import numpy as np
    from PIL import Image

    for number, digit in enumerate(reading.digits, 1):
        grey = np.clip(np.rint(digit.pixels * 255), 0, 255).astype(np.uint8)
        Image.fromarray(grey, mode="L").save(folder / f"{path.stem}_{number}.png")


def print_outcome(args, path: Path, reading, error: str | None) -> str | None:
    """Print one input's answer; returns the error (or None) after trying to save its images."""
    import json

    name = shown(path)
    if error is None and args.save_preprocessed is not None:
        try:
            save_preprocessed(args.save_preprocessed, path, reading)
        except OSError as save_error:
            error = f"cannot save its preprocessed images ({os_reason(save_error)})"
    if args.json:
        answer = reading.to_json(name) if reading is not None else {}
        print(json.dumps({"file": name, "error": error} if error else answer, ensure_ascii=False))
    elif reading is not None:
        top = top_lines(reading, args.top) if args.top else []
        print("\n".join([f"{name}: {reading_text(reading)}", *top]))
    if error is not None:
        report_error(name, error)
    return error


def load_classifier(path: Path):
    """The classifier, or None after reporting why the model cannot be used."""
    from digits.predict import Classifier, ModelError

    try:
        return Classifier.load(path)
    except ModelError as error:
        report_error(shown(path), str(error))
        return None


def run(args: argparse.Namespace) -> int:
    classifier = load_classifier(args.model)
    if classifier is None:
        return EXIT_USAGE
    if args.serve:
        from digits.server import serve

        serve(classifier, host=args.host, port=args.port)
        return EXIT_OK
    if args.save_preprocessed is not None:
        try:
            args.save_preprocessed.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            report_error(shown(args.save_preprocessed), os_reason(error))
            return EXIT_USAGE
    failed = no_digit = False
    for path, reading, error in read_all(classifier, args.inputs):
        error = print_outcome(args, path, reading, error)
        failed |= error is not None
        no_digit |= reading is not None and not reading.digits
    return EXIT_FAILED if failed else EXIT_NO_DIGIT if no_digit else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    args = parse_args(argv)
    try:
        status = run(args)
        sys.stdout.flush()
        return status
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (e.g. `head`) has gone: stop quietly, and keep Python from
        # complaining again when it flushes standard output at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
