"""The board answers only to the Host names it was started for, reads only pictures its own page
(or a program that is not a browser) sends, and says so at start-up when it listens beyond this
computer. tests/board/test_board_browser.py adds a real browser's cross-site request."""

import http.client
import json
import socket
import threading
import urllib.parse

import pytest

from digits.board import server
from digits.board.guards import HostNames, host_name
from tests.drawn_digits import number_png, running_board


@pytest.fixture
def reads(reader, monkeypatch) -> list:
    """The pictures the reader was asked to read, from now on."""
    asked = []
    read_bytes = reader.read_bytes

    def counting(data):
        asked.append(data)
        return read_bytes(data)

    monkeypatch.setattr(reader, "read_bytes", counting)
    return asked


@pytest.fixture
def client(reader):
    return server.create_app(reader, "127.0.0.1").test_client()


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "localhost:8000", "LocalHost.", "[::1]:8000", "127.0.0.1"]
)
def test_a_loopback_board_answers_to_its_loopback_names(client, host):
    assert client.get("/", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "host", ["attacker.example:8000", "127.0.0.1.attacker.example", "192.168.1.20:8000", "::1"]
)
def test_a_loopback_board_refuses_other_host_names(client, reads, host):
    page = client.get("/", headers={"Host": host})
    posted = client.post("/api/read", data=number_png("7"), headers={"Host": host})
    assert page.status_code == posted.status_code == 400
    assert posted.get_json() == {"error": "This board does not answer to that host name."}
    assert reads == []


def test_a_board_on_every_address_answers_to_addresses_and_this_machines_names():
    names = HostNames.started_for("0.0.0.0")
    for host in ("192.168.1.20:8000", "[fe80::1]:8000", "127.0.0.1", socket.gethostname()):
        assert names.accept(host), host
    assert not names.accept("attacker.example:8000")


def test_a_board_started_for_a_name_answers_to_it():
    names = HostNames.started_for("board.lan")
    assert names.accept("board.lan:8000") and names.accept("localhost:8000")
    assert not names.accept("192.168.1.20:8000")


@pytest.mark.parametrize(
    ("header", "name"),
    [("example.org:80", "example.org"), ("[::1]:8000", "::1"), ("Example.ORG.", "example.org")],
)
def test_host_name_drops_the_port_and_the_brackets(header, name):
    assert host_name(header) == name


CROSS_SITE = {
    "another site": {"Origin": "https://attacker.example"},
    "another port of this host": {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"},
    "a sandboxed page": {"Origin": "null"},
    "only Sec-Fetch-Site": {"Sec-Fetch-Site": "cross-site"},
}


@pytest.mark.parametrize("headers", CROSS_SITE.values(), ids=CROSS_SITE)
def test_a_post_from_another_sites_page_is_refused_unread(client, reads, headers):
    response = client.post("/api/read", data=number_png("7"), headers=headers)
    assert response.status_code == 403
    assert response.get_json() == {"error": "Only the board's own page may send it pictures."}
    assert reads == []


OWN = {
    "the board's page": {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    "a program that is not a browser": {},
}


@pytest.mark.parametrize("headers", OWN.values(), ids=OWN)
def test_a_post_from_the_boards_page_or_a_program_is_read(client, reads, headers):
    response = client.post("/api/read", data=number_png("7"), headers=headers)
    assert response.status_code == 200
    assert response.get_json()["prediction"] == "7"
    assert len(reads) == 1


def raw_post(url: str, headers: dict) -> tuple[int, dict]:
    """POST a picture to the real server with exactly these headers (Host included)."""
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=60)
    try:
        connection.putrequest("POST", "/api/read", skip_host=True)
        body = number_png("4")
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_the_real_server_refuses_a_rebound_name_and_another_sites_post(reader, reads):
    with running_board(reader) as url:
        own_host = urllib.parse.urlsplit(url).netloc
        port = urllib.parse.urlsplit(url).port
        rebound = raw_post(url, {"Host": f"attacker.example:{port}"})
        cross_site = raw_post(url, {"Host": own_host, "Origin": "https://attacker.example"})
        own_page = raw_post(url, {"Host": own_host, "Origin": url, "Sec-Fetch-Site": "same-origin"})
    assert rebound[0] == 400 and cross_site[0] == 403
    assert own_page[0] == 200 and own_page[1]["prediction"] == "4"
    assert len(reads) == 1


def serve_briefly(reader, host: str, monkeypatch, capsys) -> tuple[str, str]:
    """What serve() prints on `host` before it is stopped: (stdout, stderr)."""
    started = []
    make_board_server = server.make_board_server

    def remember(*args):
        started.append(make_board_server(*args))
        return started[-1]

    monkeypatch.setattr(server, "make_board_server", remember)
    thread = threading.Thread(target=server.serve, args=(reader, host, 0), daemon=True)
    thread.start()
    try:
        while not started and thread.is_alive():
            thread.join(0.05)
    finally:
        if started:
            started[0].shutdown()
        thread.join(10)
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_serving_beyond_loopback_says_so_in_one_line(reader, monkeypatch, capsys):
    out, err = serve_briefly(reader, "0.0.0.0", monkeypatch, capsys)
    assert out.startswith("Drawing board on http://0.0.0.0:")
    assert err.startswith("Note: listening beyond this computer (0.0.0.0): anyone who can reach")
    assert err.count("\n") == 1


def test_serving_on_loopback_says_nothing_more(reader, monkeypatch, capsys):
    out, err = serve_briefly(reader, "127.0.0.1", monkeypatch, capsys)
    assert out.startswith("Drawing board on http://127.0.0.1:")
    assert err == ""
