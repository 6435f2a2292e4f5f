"""The board under load: at most READS_IN_FLIGHT pictures are read at once, the others wait briefly
for a turn or are told to come back (503, Retry-After), and every request gets an answer.

The second test runs `interface.py --serve` in a child process and measures its own peak memory
(bench.common's launcher, os.wait4) while 32 uploads of 40 megapixels each arrive together.
"""

import http.client
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
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from bench.common import peak_memory_report, with_peak_memory
from digits.board import server
from digits.reading.images import MAX_PIXELS
from tests.drawn_digits import number_png

REPO = Path(__file__).resolve().parents[2]
UPLOADS = 32
# The largest picture the board decodes: 40 megapixels of RGBA, 160 MB once decoded.
LARGEST = (8000, 5000)
# The server's own peak resident memory: about 120 MB, plus some 320 MB for each of the
# READS_IN_FLIGHT pictures it decodes at once (measured: 0.75 GB); 32 at once would need 10 GB.
MEMORY_BOUND = 1.25 * 2**30
ADDRESS_SPACE_LIMIT = 4 * 2**30  # the child's RLIMIT_AS: many threads reserve address space
WAIT_S = 120  # how long a client waits for its answer before giving up (not a measurement)
# A request that finds no free turn is answered after READ_WAIT_S; when none is answered within
# this (a deadline far beyond it, not a measurement), the test fails.
TURNED_AWAY_WITHIN_S = 30


def post(client, body: bytes):
    return client.post("/api/read", data=body, content_type="image/png")


def test_reads_beyond_the_turns_are_told_to_come_back(reader, monkeypatch):
    monkeypatch.setattr(server, "READ_WAIT_S", 0.1)  # so that the extra requests give up soon
    lock, reading, most = threading.Lock(), [0], [0]
    started, go_on = threading.Semaphore(0), threading.Event()
    read_bytes = reader.read_bytes

    def held_read(data):
        """Read, but only once go_on is set: the first requests keep their turns till then."""
        with lock:
            reading[0] += 1
            most[0] = max(most[0], reading[0])
        started.release()
        go_on.wait(WAIT_S)
        try:
            return read_bytes(data)
        finally:
            with lock:
                reading[0] -= 1

    monkeypatch.setattr(reader, "read_bytes", held_read)
    app = server.create_app(reader)
    extra = 3
    with ThreadPoolExecutor(server.READS_IN_FLIGHT + extra) as pool:
        picture = number_png("5")
        pending = {pool.submit(post, app.test_client(), picture) for _ in range(extra)}
        pending |= {
            pool.submit(post, app.test_client(), picture) for _ in range(server.READS_IN_FLIGHT)
        }
        for _ in range(server.READS_IN_FLIGHT):
            assert started.acquire(timeout=WAIT_S)
        # Every turn is held: whichever requests did not get one are answered first.
        turned_away = []
        while len(turned_away) < extra:
            done, pending = wait(pending, timeout=TURNED_AWAY_WITHIN_S, return_when=FIRST_COMPLETED)
            if not done:
                go_on.set()
                raise AssertionError("requests found no free turn and were not turned away")
            turned_away += [future.result() for future in done]
        go_on.set()
        served = [future.result() for future in pending]

    for response in turned_away:
        assert response.status_code == 503
        assert response.headers["Retry-After"] == str(server.RETRY_AFTER_S)
        assert response.get_json() == {"error": "The board is busy; try again in a moment."}
    assert [response.get_json()["prediction"] for response in served] == ["5", "5"]
    assert most[0] == server.READS_IN_FLIGHT


def largest_png() -> bytes:
    """A white RGBA PNG of LARGEST pixels (the most open_image decodes), written row by row."""
    width, height = LARGEST
    assert width * height == MAX_PIXELS

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    row = b"\x00" + b"\xff" * (4 * width)  # filter type 0, then the pixels
    compressor = zlib.compressobj(1)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"".join(
        [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header), chunk(b"IDAT", pixels), chunk(b"IEND", b"")]
    )


def limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


def upload(port: int, body: bytes, start_together: threading.Barrier):
    """POST the picture once every client is ready: (status, Retry-After, JSON body)."""
    start_together.wait(timeout=WAIT_S)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    try:
        connection.request("POST", "/api/read", body=body, headers={"Content-Type": "image/png"})
        response = connection.getresponse()
        return response.status, response.getheader("Retry-After"), response.read()
    finally:
        connection.close()


def test_many_largest_uploads_at_once_all_get_answers_in_bounded_memory(committed_model, tmp_path):
    body = largest_png()
    report = tmp_path / "peak"
    command = [sys.executable, str(REPO / "interface.py"), "--model", str(committed_model)]
    board = subprocess.Popen(
        with_peak_memory([*command, "--serve", "--port", "0"], report),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=limit_address_space,
        start_new_session=True,  # so that Ctrl-C (SIGINT) reaches the board through its group
    )
    try:
        started = board.stdout.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", started).group(1))
        start_together = threading.Barrier(UPLOADS)
        with ThreadPoolExecutor(UPLOADS) as pool:
            answers = list(pool.map(lambda _: upload(port, body, start_together), range(UPLOADS)))
    finally:
        os.killpg(board.pid, signal.SIGINT)
        board.wait(WAIT_S)

    assert board.returncode == 130  # interface.py --serve ends on Ctrl-C
    served = [answer for status, _, answer in answers if status == 200]
    turned_away = [retry for status, retry, _ in answers if status == 503]
    assert len(served) + len(turned_away) == UPLOADS, [status for status, _, _ in answers]
    assert served, "no upload was read"
    assert all(retry == str(server.RETRY_AFTER_S) for retry in turned_away)
    for answer in served:
        assert json.loads(answer)["prediction"] == ""  # decoded whole: a blank picture
    peak = peak_memory_report(report)[0] * 1024
    assert peak < MEMORY_BOUND, f"the board peaked at {peak / 2**30:.2f} GiB"
