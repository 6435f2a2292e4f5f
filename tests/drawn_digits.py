"""Hand-drawn-looking digits and a running drawing board, shared by the server and browser tests.

The digits are stroke paths, so the same shapes can be rendered to a PNG (server tests) or drawn
with the mouse on the page (browser tests). They need no data files and no network.
"""

import io
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, ImageDraw

from digits.board.server import make_board_server
from digits.reading import Reader


def _arc(cx, cy, rx, ry, start_degrees, end_degrees, points=16):
    angles = (
        math.radians(start_degrees + (end_degrees - start_degrees) * i / points)
        for i in range(points + 1)
    )
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Each digit: strokes (polylines) in a unit cell, x to the right and y down, both in [0, 1].
STROKES = {
    "0": [_arc(0.5, 0.5, 0.32, 0.45, -90, 270, 24)],
    "1": [[(0.38, 0.2), (0.55, 0.05), (0.55, 0.95)]],
    "2": [_arc(0.5, 0.3, 0.3, 0.25, 200, 390, 12) + [(0.15, 0.95), (0.85, 0.95)]],
    "3": [_arc(0.45, 0.27, 0.3, 0.22, 200, 450, 12) + _arc(0.45, 0.72, 0.33, 0.23, -90, 160, 12)],
    "4": [[(0.6, 0.05), (0.12, 0.65), (0.9, 0.65)], [(0.65, 0.35), (0.65, 0.95)]],
    "5": [[(0.8, 0.05), (0.25, 0.05), (0.2, 0.45)] + _arc(0.45, 0.68, 0.32, 0.27, -120, 160, 14)],
    "6": [[(0.7, 0.05), (0.35, 0.4)] + _arc(0.5, 0.7, 0.3, 0.25, 200, 560, 20)],
    "7": [[(0.12, 0.08), (0.88, 0.08), (0.4, 0.95)]],
    "8": [_arc(0.5, 0.27, 0.25, 0.22, 90, 450, 20), _arc(0.5, 0.72, 0.3, 0.23, -90, 270, 20)],
    "9": [_arc(0.5, 0.3, 0.3, 0.25, 0, 360, 20) + [(0.8, 0.3), (0.75, 0.95)]],
}


def number_strokes(
    number: str, width: float, height: float, gap: float | None = None
) -> list[list[tuple[float, float]]]:
    """The strokes of `number` laid out left to right, centred in a width × height area.

    gap: None spaces the digits' cells evenly; a number puts that many cell widths between one
    digit's strokes and the next's (0: the pen's strokes touch, below 0: they overlap).
    """
    cell_height = 0.7 * height
    cell_width = min(0.7 * cell_height, 0.8 * width / (1.3 * len(number)))
    if gap is None:
        lefts = [1.3 * place for place in range(len(number))]
        extent = lefts[-1] + 1
    else:
        lefts, right = [], None
        for digit in number:
            xs = [x for stroke in STROKES[digit] for x, _ in stroke]
            left = 0.0 if right is None else right + gap - min(xs)
            lefts.append(left)
            right = left + max(xs)
        extent = right
    origin = (width - extent * cell_width) / 2
    top = (height - cell_height) / 2
    return [
        [(origin + (left + x) * cell_width, top + y * cell_height) for x, y in stroke]
        for left, digit in zip(lefts, number, strict=True)
        for stroke in STROKES[digit]
    ]


def number_png(number: str, size=(640, 320), dark_on_light=True, gap=None) -> bytes:
    """`number` drawn with a thick round pen, as PNG bytes (gap: as number_strokes)."""
    paper, ink = (255, 0) if dark_on_light else (0, 255)
    picture = Image.new("L", size, paper)
    pen = ImageDraw.Draw(picture)
    width = round(0.055 * size[1])
    for stroke in number_strokes(number, *size, gap):
        pen.line(stroke, fill=ink, width=width, joint="curve")
        for x, y in (stroke[0], stroke[-1]):  # round caps
            pen.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=ink)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def running_board(reader: Reader) -> Iterator[str]:
    """A real threaded board server on a free loopback port, serving in a thread; yields its URL."""
    server = make_board_server(reader, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="board-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
