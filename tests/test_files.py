"""Atomic file writes: the old file or the whole new one, and no temporary file left behind."""

import threading

import pytest

from digits import files


def test_write_atomic_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"previous")
    files.write_atomic(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_an_interrupted_write_keeps_the_previous_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    target.write_bytes(b"previous")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.write_atomic(target, b"new content that never lands")

    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_a_failing_writer_removes_only_its_own_temporary_file(tmp_path):
    target = tmp_path / "model.h5"
    other_writer = tmp_path / ".model.someone.partial.h5"
    other_writer.write_bytes(b"another process is writing this")
    with pytest.raises(RuntimeError), files.replacing(target, suffix=".partial.h5") as temporary:
        assert temporary.name.startswith(".model.") and temporary.suffix == ".h5"
        temporary.write_bytes(b"half")
        raise RuntimeError("the writer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == [other_writer.name]


def test_concurrent_writers_never_share_a_temporary_file(tmp_path):
    target = tmp_path / "shared.json"
    seen, barrier = [], threading.Barrier(8)

    def write(index):
        with files.replacing(target) as temporary:
            seen.append(temporary)
            barrier.wait(timeout=10)  # all eight temporary files exist at once
            temporary.write_bytes(b"%d" % index)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 8
    assert target.read_bytes() in {b"%d" % i for i in range(8)}
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]
