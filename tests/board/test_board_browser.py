"""The drawing board in headless Chromium: draw with the mouse, open and drop files, read the page;
and a page of another site, which cannot make the board read.

Uses Debian's /usr/bin/chromium through the Python playwright package (no `playwright install`).
Without it the tests skip, except under CI (env CI set), where they fail: CI installs it.
A screenshot of the board reading "17" is saved in the test's tmp dir, and as board.png in
$ARTIFACTS_DIR when set: `ARTIFACTS_DIR=docs pytest -m browser` refreshes docs/board.png.
"""

import base64
import itertools
import math
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.drawn_digits import number_png, number_strokes, running_board

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANSWER_TIMEOUT_MS = 15_000
STEP_PX = 8  # mouse moves along a stroke this far apart …
STEP_PAUSE_MS = 10  # … this often: a quick hand's speed, so answers come while drawing


@pytest.fixture(scope="module")
def board_url(reader):
    with running_board(reader) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, board_url):
    context = browser.new_context(viewport={"width": 1200, "height": 760})
    page = context.new_page()
    page.goto(board_url)
    yield page
    context.close()


def draw(page, number: str, gap: float | None = None) -> None:
    """Draw `number` on the board with the mouse, one stroke at a time, as a person would
    (gap: as number_strokes; 0 makes neighbouring digits' strokes touch)."""
    box = page.locator("#board").bounding_box()
    for stroke in number_strokes(number, box["width"], box["height"], gap):
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
            steps = max(1, round(math.hypot(x1 - x0, y1 - y0) / STEP_PX))
            for step in range(1, steps + 1):
                along = step / steps
                page.mouse.move(
                    box["x"] + x0 + (x1 - x0) * along, box["y"] + y0 + (y1 - y0) * along
                )
                page.wait_for_timeout(STEP_PAUSE_MS)
        page.mouse.up()


def settled_answer(page) -> str:
    """The prediction on screen once the latest request is answered."""
    expect(page.locator("#summary")).not_to_have_class(
        re.compile("busy"), timeout=ANSWER_TIMEOUT_MS
    )
    return page.locator("#prediction").inner_text()


def shown_probabilities(page) -> list[dict]:
    """Per digit card: the percentages written beside the bars and the bars' own widths."""
    return page.eval_on_selector_all(
        ".digit-card",
        """cards => cards.map(card => ({
        written: [...card.querySelectorAll(".percent")].map(cell => parseFloat(cell.textContent)),
        widths: [...card.querySelectorAll(".fill")].map(bar => parseFloat(bar.style.width)),
        seen: card.querySelector(".seen").naturalWidth,
        rendering: getComputedStyle(card.querySelector(".seen")).imageRendering,
    }))""",
    )


def assert_bars_add_up(page, digits: int) -> None:
    cards = shown_probabilities(page)
    assert len(cards) == digits
    for card in cards:
        assert len(card["written"]) == len(card["widths"]) == 10
        assert sum(card["written"]) == pytest.approx(100, abs=0.6)  # ten values rounded to 0.1
        assert sum(card["widths"]) == pytest.approx(100, abs=0.01)
        assert card["seen"] == 28 and card["rendering"] == "pixelated"


def requests_to_read(page) -> list:
    """Collects, from now on, the page's requests to /api/read."""
    reads = []
    page.on("request", lambda request: "/api/read" in request.url and reads.append(request))
    return reads


def save_screenshot(page, tmp_path: Path) -> Path:
    shot = tmp_path / "board.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("ARTIFACTS_DIR"):
        artifacts = Path(os.environ["ARTIFACTS_DIR"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, artifacts / "board.png")
    return shot


def test_drawing_digits_and_a_number_reads_them_live(page, tmp_path):
    reads = requests_to_read(page)

    draw(page, "1")
    assert settled_answer(page) == "1"
    assert len(reads) >= 2, "the answer should update while drawing, not only on pointerup"
    assert_bars_add_up(page, 1)
    assert "not sure" not in page.locator("#summary").inner_text()

    page.get_by_role("button", name="Clear").click()
    assert page.locator("#summary").inner_text() == "Draw a digit to start."
    assert page.locator(".digit-card").count() == 0
    blank = page.evaluate("""() => {
        const pixels = document.getElementById("board").getContext("2d")
            .getImageData(0, 0, 640, 320).data;
        return pixels.every((value, i) => value === pixels[i % 4]);
    }""")
    assert blank, "Clear should leave an empty board"

    draw(page, "7")
    assert settled_answer(page) == "7"
    page.get_by_role("button", name="Clear").click()

    draw(page, "17")
    assert settled_answer(page) == "17"
    assert_bars_add_up(page, 2)
    assert page.locator(".digit-card .digit-value").all_inner_texts() == ["1", "7"]
    assert save_screenshot(page, tmp_path).stat().st_size > 10_000


@pytest.mark.parametrize(("number", "gap"), [("11", 0.0), ("00", 0.0), ("147", 0.0)])
def test_numbers_drawn_with_touching_strokes_are_read_digit_by_digit(page, number, gap):
    draw(page, number, gap)
    assert settled_answer(page) == number
    assert_bars_add_up(page, len(number))
    assert page.locator(".digit-card .digit-value").all_inner_texts() == list(number)


def test_an_opened_picture_is_shown_and_read(page, tmp_path):
    picture = tmp_path / "forty-two.png"
    picture.write_bytes(number_png("42"))
    page.set_input_files("#file", str(picture))
    assert settled_answer(page) == "42"
    assert_bars_add_up(page, 2)
    inked = page.evaluate("""() => {
        const pixels = document.getElementById("board").getContext("2d")
            .getImageData(0, 0, 640, 320).data;
        return pixels.some(value => value < 100);
    }""")
    assert inked, "the opened picture should be shown on the board"


def test_a_dropped_picture_is_read(page):
    png = base64.b64encode(number_png("305")).decode("ascii")
    page.evaluate(
        """png => {
        const bytes = Uint8Array.from(atob(png), c => c.charCodeAt(0));
        const files = new DataTransfer();
        files.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
        document.getElementById("drop-zone").dispatchEvent(
            new DragEvent("drop", { dataTransfer: files, bubbles: true, cancelable: true }));
    }""",
        png,
    )
    assert settled_answer(page) == "305"


def test_a_file_that_is_no_picture_shows_the_servers_message(page, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture at all")
    page.set_input_files("#file", str(text))
    expect(page.get_by_role("alert")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    assert page.get_by_role("alert").inner_text()
    assert page.locator(".digit-card").count() == 0

    draw(page, "7")  # and the board goes on
    assert settled_answer(page) == "7"
    expect(page.get_by_role("alert")).to_be_hidden()


def hold_back_first_answer(page) -> None:
    """The page's first answer from the server waits until release_late_answer(page).

    window.summaryChanges counts changes to the shown answer from now on.
    """
    page.evaluate(
        """() => {
        const fetchNow = window.fetch;
        let first = true;
        window.lateAnswerIn = false;
        window.fetch = (...request) => {
            if (!first) return fetchNow(...request);
            first = false;
            return fetchNow(...request).then(answer => {
                const json = answer.json.bind(answer);
                // The page handles the answer in the microtasks after json(); the flag comes after.
                answer.json = () => json().then(value => {
                    setTimeout(() => { window.lateAnswerIn = true; });
                    return value;
                });
                return new Promise(resolve => {
                    window.releaseLateAnswer = () => resolve(answer);
                });
            });
        };
        window.summaryChanges = 0;
        new MutationObserver(() => window.summaryChanges++).observe(
            document.getElementById("summary"),
            { childList: true, subtree: true, characterData: true });
    }"""
    )


def release_late_answer(page) -> None:
    """Let the held-back answer through and wait until the page has handled it."""
    page.wait_for_function("() => window.releaseLateAnswer", timeout=ANSWER_TIMEOUT_MS)
    page.evaluate("() => window.releaseLateAnswer()")
    page.wait_for_function("() => window.lateAnswerIn", timeout=ANSWER_TIMEOUT_MS)


def test_a_slow_answer_is_followed_by_one_read_of_the_finished_drawing(page):
    hold_back_first_answer(page)
    reads = requests_to_read(page)
    draw(page, "7")
    assert len(reads) == 1, "one read at a time: no queue of reads behind a slow one"
    release_late_answer(page)
    assert settled_answer(page) == "7"
    assert len(reads) == 2


def test_a_late_answer_for_a_cleared_drawing_is_dropped(page):
    hold_back_first_answer(page)
    draw(page, "7")
    page.get_by_role("button", name="Clear").click()
    draw(page, "1")
    assert settled_answer(page) == "1"
    changes = page.evaluate("window.summaryChanges")
    release_late_answer(page)
    assert page.evaluate("window.summaryChanges") == changes
    assert page.locator("#prediction").inner_text() == "1"


@contextmanager
def another_site() -> Iterator[str]:
    """A plain page on another port of this host, without the board's Content-Security-Policy:
    what a site the user visits could be. Yields its URL."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><title>elsewhere</title><p>Another site."
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=site.serve_forever, name="another-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}/"
    finally:
        site.shutdown()
        site.server_close()
        thread.join(timeout=10)


# A cross-site POST that needs no permission from the board (no CORS preflight): what a page
# elsewhere could send through the user's browser.
POST_PICTURE = """async ([board, bytes]) => {
    const body = new Blob([new Uint8Array(bytes)], { type: "image/png" });
    await fetch(board + "/api/read", { method: "POST", mode: "no-cors", body });
}"""


def posted_status(page, board_url: str, png: bytes) -> int:
    """The status the board gave the page's POST_PICTURE (which the page itself cannot see)."""
    with page.expect_response(lambda response: "/api/read" in response.url) as answer:
        page.evaluate(POST_PICTURE, [board_url, list(png)])
    return answer.value.status


def test_a_page_of_another_site_cannot_make_the_board_read(browser, board_url, reader, monkeypatch):
    asked = []
    read_bytes = reader.read_bytes
    monkeypatch.setattr(reader, "read_bytes", lambda data: asked.append(data) or read_bytes(data))
    png = number_png("7")
    context = browser.new_context()
    try:
        page = context.new_page()
        with another_site() as elsewhere:
            page.goto(elsewhere)
            assert posted_status(page, board_url, png) == 403
        assert asked == []
        page.goto(board_url)  # the same request from the board's own page is read
        assert posted_status(page, board_url, png) == 200
        assert asked == [png]
    finally:
        context.close()
