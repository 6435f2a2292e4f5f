"""The drawing board's HTTP side: Flask's test client and a real threaded server on loopback."""

import base64
import http.client
import io
import json
import socket
import struct
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from digits.board import server
from tests.drawn_digits import number_png, running_board


@pytest.fixture(scope="module")
def client(reader):
    return server.create_app(reader).test_client()


@pytest.fixture(scope="module")
def board_url(reader):
    with running_board(reader) as url:
        yield url


def post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    """POST to the real server; the status and the decoded JSON, for errors too."""
    request = urllib.request.Request(
        url + "/api/read",
        data=body,
        method="POST",
        headers={"Content-Type": "image/png", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def png_pixels(data_url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    with Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix) :]))) as image:
        assert image.format == "PNG"
        return np.asarray(image)


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width × height pixels: a decompression bomb's calling card."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # so the header is valid
    return bytes(data)


BAD_PAYLOADS = {
    "empty": (b"", 400),
    "not a picture": (b"Dear model, please read this text as a digit.", 422),
    "truncated png": (number_png("7")[:300], 422),
    "decompression bomb": (png_claiming_size(30_000, 30_000), 422),
}


# --- Flask test client ---


def test_page_and_its_files_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for needed in (
        '<canvas id="board"',
        'aria-live="polite"',
        "/static/board.js",
        "/static/board.css",
    ):
        assert needed in html
    assert "http" not in html.replace("http-equiv", "")  # nothing from the network: works offline
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert client.get("/static/board.js").mimetype == "text/javascript"
    assert client.get("/static/board.css").mimetype == "text/css"


@pytest.mark.parametrize("digit", "0123456789")
def test_a_drawn_digit_is_read(client, digit):
    response = client.post("/api/read", data=number_png(digit), content_type="image/png")
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["prediction"] == digit
    assert answer["file"] == "drawing"
    (read,) = answer["digits"]
    assert read["digit"] == int(digit)
    assert read["confidence"] == pytest.approx(max(read["probabilities"]))
    assert sum(read["probabilities"]) == pytest.approx(1, abs=1e-4)
    x0, y0, x1, y1 = read["box"]
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 320
    assert png_pixels(answer["preprocessed"][0]).shape == (28, 28)


def test_light_ink_on_black_is_read_too(client):
    png = number_png("4", dark_on_light=False)
    assert client.post("/api/read", data=png).get_json()["prediction"] == "4"


def test_a_whole_number_is_read_left_to_right(client):
    answer = client.post("/api/read", data=number_png("1742")).get_json()
    assert answer["prediction"] == "1742"
    lefts = [digit["box"][0] for digit in answer["digits"]]
    assert lefts == sorted(lefts)
    assert len(answer["preprocessed"]) == 4


def test_the_answer_is_the_command_lines_reading_plus_what_the_model_saw(client, reader):
    png = number_png("305")
    answer = client.post("/api/read", data=png).get_json()
    reading = reader.read_bytes(png)
    seen = answer.pop("preprocessed")
    assert answer == json.loads(json.dumps(reading.to_json("drawing")))
    for data_url, digit in zip(seen, reading.digits, strict=True):
        assert np.abs(png_pixels(data_url) - digit.pixels * 255).max() <= 0.5


def test_an_uploaded_files_name_comes_back(client):
    headers = {"X-Filename": "m%C3%A9nu%20%237.png"}  # the page sends encodeURIComponent(name)
    answer = client.post("/api/read", data=number_png("7"), headers=headers).get_json()
    assert answer["file"] == "ménu #7.png"


def test_a_blank_picture_has_no_digits(client):
    buffer = io.BytesIO()
    Image.new("RGB", (640, 320), "white").save(buffer, format="PNG")
    answer = client.post("/api/read", data=buffer.getvalue()).get_json()
    assert answer["prediction"] == ""
    assert answer["digits"] == answer["preprocessed"] == []
    assert answer["confidence"] == 0


@pytest.mark.parametrize("name", BAD_PAYLOADS)
def test_a_bad_payload_gets_a_json_error_and_the_next_picture_is_read(client, name):
    body, status = BAD_PAYLOADS[name]
    response = client.post("/api/read", data=body, content_type="image/png")
    assert response.status_code == status
    message = response.get_json()["error"]
    assert message and "\n" not in message and "Traceback" not in message
    assert client.post("/api/read", data=number_png("7")).get_json()["prediction"] == "7"


def test_an_oversized_payload_is_refused_before_it_is_read(client):
    body = b"\0" * (server.MAX_UPLOAD_BYTES + 1)
    response = client.post("/api/read", data=body, content_type="image/png")
    assert response.status_code == 413
    assert response.get_json() == {"error": "The picture is larger than 10 MB."}


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/api/read", 405), ("GET", "/api/nope", 404)]
)
def test_wrong_routes_answer_in_json(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.get_json()["error"]


def test_an_unexpected_failure_is_a_json_500_and_the_server_goes_on(reader, monkeypatch):
    def broken(*_args):
        raise RuntimeError("boom")

    client = server.create_app(reader).test_client()
    monkeypatch.setattr(reader, "read_bytes", broken)
    response = client.post("/api/read", data=number_png("1"))
    assert response.status_code == 500
    assert "boom" not in response.get_json()["error"]
    monkeypatch.undo()
    assert client.post("/api/read", data=number_png("1")).get_json()["prediction"] == "1"


# --- a real threaded server on loopback ---


def test_the_real_server_reads_a_number(board_url):
    status, answer = post(board_url, number_png("90"))
    assert (status, answer["prediction"]) == (200, "90")
    with urllib.request.urlopen(board_url + "/", timeout=30) as page:
        assert b'<canvas id="board"' in page.read()


@pytest.mark.parametrize("name", BAD_PAYLOADS)
def test_the_real_server_refuses_bad_payloads_and_keeps_serving(board_url, name):
    body, status = BAD_PAYLOADS[name]
    answered, answer = post(board_url, body)
    assert answered == status and answer["error"]
    assert post(board_url, number_png("2"))[1]["prediction"] == "2"


def test_the_real_server_refuses_an_oversized_payload_and_keeps_serving(board_url):
    status, answer = post(board_url, b"\0" * (server.MAX_UPLOAD_BYTES + 1))
    assert status == 413 and "10 MB" in answer["error"]
    assert post(board_url, number_png("3"))[1]["prediction"] == "3"


def test_the_real_server_refuses_an_oversized_chunked_payload(board_url):
    def blocks(total: int, size: int = 2**16):
        for _ in range(total // size):
            yield b"\0" * size

    connection = http.client.HTTPConnection(urllib.parse.urlsplit(board_url).netloc, timeout=60)
    try:
        body = blocks(server.MAX_UPLOAD_BYTES + 2**16)
        connection.request("POST", "/api/read", body=body, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413 and "10 MB" in json.loads(response.read())["error"]
    finally:
        connection.close()
    assert post(board_url, number_png("6"))[1]["prediction"] == "6"


def test_concurrent_requests_each_get_their_own_answer(board_url, client):
    numbers = [*"0123456789", "17", "42", "305", "86", "2024", "7"]
    pictures = [number_png(number) for number in numbers]
    expected = [client.post("/api/read", data=png).get_json() for png in pictures]
    start_together = threading.Barrier(len(numbers))

    def read(png):
        start_together.wait(timeout=30)
        return post(board_url, png)

    with ThreadPoolExecutor(max_workers=len(numbers)) as pool:
        answers = list(pool.map(read, pictures))
    for number, (status, answer), alone in zip(numbers, answers, expected, strict=True):
        assert status == 200
        assert answer["prediction"] == number
        assert answer == alone  # same probabilities as when read one at a time


# --- serve(), as `interface.py --serve` calls it ---


def test_serve_prints_its_address_and_serves(reader, monkeypatch, capsys):
    started = []

    def remember(*args):
        started.append(make_board_server(*args))
        return started[-1]

    make_board_server = server.make_board_server
    monkeypatch.setattr(server, "make_board_server", remember)
    thread = threading.Thread(target=server.serve, args=(reader, "127.0.0.1", 0), daemon=True)
    thread.start()
    try:
        while not started and thread.is_alive():
            thread.join(0.05)
        port = started[0].port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            assert page.status == 200
    finally:
        if started:
            started[0].shutdown()
        thread.join(10)
    assert not thread.is_alive()
    out = capsys.readouterr().out
    assert f"Drawing board on http://127.0.0.1:{port}/ — Ctrl-C to stop" in out


def test_serve_on_a_taken_port_says_so_in_one_line(reader, capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert server.serve(reader, "127.0.0.1", port) is False
    assert capsys.readouterr().err == f"Cannot serve on 127.0.0.1:{port}: Address already in use.\n"


def test_serve_on_an_unknown_host_says_so_in_one_line(reader, capsys):
    assert server.serve(reader, "no-such-host.invalid", 0) is False
    message = capsys.readouterr().err
    assert message.startswith("Cannot serve on no-such-host.invalid:0: ")
    assert message.count("\n") == 1 and "while attempting" not in message
