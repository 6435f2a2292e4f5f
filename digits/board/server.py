"""The drawing board: a local web page to draw digits (or drop a picture) and see what is read.

Flask is used because it is small, well kept, has a test client and needs no build step.
The page (digits/board/static/) is plain HTML/CSS/JS that works offline. It posts the raw
picture bytes to `POST /api/read`, which reads them through the same `digits.reading.Reader` as
the command line and answers with `Reading.to_json` plus the 28×28 images the model saw, as PNG
data URLs.

The reader is read-only, so one instance serves all the server's threads. It answers only to the
Host names it was started for and refuses other sites' pages (digits/board/guards.py), and it
reads at most READS_IN_FLIGHT pictures at once.
"""

import base64
import contextlib
import socket
import sys
import threading
from urllib.parse import unquote

from flask import Flask, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from digits.board.guards import HostNames, is_cross_site, is_loopback
from digits.reading import ImageError, Reader

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
DRAWING_NAME = "drawing"  # the `file` field of a reading when the browser sends no file name
# Pictures decoded and read at the same time. Reading a picture of 40 megapixels (the most
# open_image takes) needs about 300 MB (measured), and every server thread would decode at once;
# the CPU is no faster for more. Other requests wait up to READ_WAIT_S for a turn, then are told
# to come back (503 with Retry-After) instead of piling up.
READS_IN_FLIGHT = 2
READ_WAIT_S = 2.0
RETRY_AFTER_S = 1

# Browsers may only load what the page itself serves; images also from data: and blob: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


class Busy(Exception):
    """Every reading turn stayed taken for READ_WAIT_S."""


def create_app(reader: Reader, host: str = "127.0.0.1") -> Flask:
    """The drawing board's Flask app, reading with `reader`, for a server started on `host`."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    host_names = HostNames.started_for(host)
    turns = threading.BoundedSemaphore(READS_IN_FLIGHT)

    @app.before_request
    def refuse_other_sites():
        if not host_names.accept(request.host):
            return error_response("This board does not answer to that host name.", 400)
        if request.method == "POST" and is_cross_site(request.headers, request.host_url[:-1]):
            return error_response("Only the board's own page may send it pictures.", 403)
        return None

    @app.get("/")
    def index():
        return send_from_directory(app.static_folder, "index.html")

    @app.post("/api/read")
    def read():
        body = request_body()
        if not body:
            return error_response("The request holds no picture.", 400)
        try:
            with reading_turn(turns):
                reading = reader.read_bytes(body)
        except ImageError as error:
            return error_response(str(error), 422)
        answer = reading.to_json(sent_file_name())
        answer["preprocessed"] = [png_data_url(digit.png()) for digit in reading.digits]
        return jsonify(answer)

    @app.errorhandler(413)
    def too_large(_error):
        limit_mb = MAX_UPLOAD_BYTES // (1024 * 1024)
        return error_response(f"The picture is larger than {limit_mb} MB.", 413)

    @app.errorhandler(Busy)
    def busy(_error):
        response, status = error_response("The board is busy; try again in a moment.", 503)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response, status

    @app.errorhandler(HTTPException)
    def http_error(error):
        return error_response(error.description, error.code)

    @app.errorhandler(Exception)
    def unexpected_error(_error):
        # Keep serving and answer in JSON; the traceback goes to the server's log, not to the page.
        app.logger.exception("Request failed")
        return error_response("The server could not read this picture (internal error).", 500)

    @app.after_request
    def security_headers(response):
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return app


def error_response(message: str, status: int):
    """A JSON error the page can show as is."""
    return jsonify(error=message), status


@contextlib.contextmanager
def reading_turn(turns: threading.BoundedSemaphore):
    """Hold one of the reading turns while the block runs; Busy when none comes free in time."""
    if not turns.acquire(timeout=READ_WAIT_S):
        raise Busy
    try:
        yield
    finally:
        turns.release()


def request_body() -> bytes:
    """The raw request body; 413 (RequestEntityTooLarge) when it is over MAX_CONTENT_LENGTH."""
    body = request.get_data(cache=False)
    # A chunked body has no length to refuse up front: werkzeug stops at the limit, and reading
    # on raises 413 instead of leaving us a cut-off picture.
    request.stream.read(1)
    return body


def sent_file_name() -> str:
    """The uploaded file's name: the page sends it URL-encoded in X-Filename (headers are ASCII)."""
    return unquote(request.headers.get("X-Filename", "")).strip() or DRAWING_NAME


def png_data_url(png: bytes) -> str:
    """PNG bytes as a data URL the page can show."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class ErrorsOnlyRequestHandler(WSGIRequestHandler):
    """Logs failed requests only: the page reads several times a second while someone draws."""

    def log_request(self, code="-", size="-"):
        if str(code).isdigit() and int(code) < 400:
            return
        super().log_request(code, size)


def make_board_server(reader: Reader, host: str = "127.0.0.1", port: int = 8000) -> BaseWSGIServer:
    """A threaded HTTP server for the board, listening but not serving yet; port 0 picks one free.

    Raises OSError when it cannot listen there (port taken, unknown host …).
    """
    with listening_socket(host, port) as listening:
        return make_server(
            host,
            port,
            create_app(reader, host),
            threaded=True,
            request_handler=ErrorsOnlyRequestHandler,
            fd=listening.fileno(),  # werkzeug duplicates the socket, so ours can close
        )


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port.

    We bind it ourselves because werkzeug, failing to, prints two lines and exits.
    """
    listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once
        listening.bind((host, port))
        listening.listen()
    except OSError:
        listening.close()
        raise
    return listening


def serve(reader: Reader, host: str = "127.0.0.1", port: int = 8000) -> bool:
    """Serve the drawing board until Ctrl-C, then return True; False, after a one-line message on
    standard error, when it cannot listen there."""
    try:
        server = make_board_server(reader, host, port)
    except OSError as error:
        print(f"Cannot serve on {host}:{port}: {error.strerror or error}.", file=sys.stderr)
        return False
    shown_host = f"[{host}]" if ":" in host else host
    print(f"Drawing board on http://{shown_host}:{server.port}/ — Ctrl-C to stop", flush=True)
    if not is_loopback(server.socket.getsockname()[0]):
        print(
            f"Note: listening beyond this computer ({shown_host}): anyone who can reach port "
            f"{server.port} on the network can send it pictures.",
            file=sys.stderr,
            flush=True,
        )
    server.serve_forever()  # werkzeug returns quietly on Ctrl-C and closes the socket
    return True
