// Drawing board: draw with Pointer Events, send the picture to POST /api/read, show what is read.
"use strict";

const READ_EVERY_MS = 200;   // while drawing, read at most this often (and once more on pointerup)
const STROKE_WIDTH = 22;     // canvas pixels: a thick marker, closer to MNIST's strokes than a thin pen
const PAPER = "#fffdf8";
const INK = "#1d2433";
const BOX_COLOUR = "#2f6fde";
const UNCERTAIN_COLOUR = "#a35200";

const board = document.getElementById("board");
const pen = board.getContext("2d");
const boxes = document.getElementById("boxes");
const boxPen = boxes.getContext("2d");
const dropZone = document.getElementById("drop-zone");
const fileInput = document.getElementById("file");
const summary = document.getElementById("summary");
const errorLine = document.getElementById("error");
const digitList = document.getElementById("digits");
const digitTemplate = document.getElementById("digit-template");

const state = {
  hasInk: false,       // something drawn since the last clear
  picture: null,       // {scale, dx, dy}: where an opened picture sits on the board, null for drawings
  pointerId: null,     // the pointer drawing now
  last: null,          // its previous point
  timer: null,         // pending read while drawing
  reading: 0,          // number of the drawing's read in flight, 0 when none
  readAgain: false,    // the drawing changed while it was being read
  sent: 0,             // number of the latest request asked for
  shown: 0,            // number of the request on screen; older answers are stale and dropped
};

function clearBoard() {
  pen.fillStyle = PAPER;
  pen.fillRect(0, 0, board.width, board.height);
  boxPen.clearRect(0, 0, boxes.width, boxes.height);
  state.hasInk = false;
  state.picture = null;
}

function reset() {
  clearTimeout(state.timer);
  state.timer = null;
  state.reading = 0;
  state.readAgain = false;
  state.shown = state.sent;  // answers still on their way belong to the old drawing
  clearBoard();
  setBusy(false);
  summary.textContent = "Draw a digit to start.";
  errorLine.hidden = true;
  digitList.replaceChildren();
}

// --- Drawing ---------------------------------------------------------------------------------

function boardPoint(event) {
  const rect = board.getBoundingClientRect();
  return {
    x: (event.clientX - rect.left) * (board.width / rect.width),
    y: (event.clientY - rect.top) * (board.height / rect.height),
  };
}

function strokeTo(point) {
  pen.beginPath();
  pen.moveTo(state.last.x, state.last.y);
  pen.lineTo(point.x, point.y);
  pen.stroke();
  state.last = point;
}

function startStroke(event) {
  if (state.pointerId !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
  event.preventDefault();
  if (state.picture) reset();  // drawing after opening a picture starts a new drawing
  board.setPointerCapture(event.pointerId);
  state.pointerId = event.pointerId;
  state.last = boardPoint(event);
  pen.strokeStyle = INK;
  pen.lineWidth = STROKE_WIDTH;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  strokeTo(state.last);  // a tap leaves a dot
  state.hasInk = true;
  readSoon();
}

function continueStroke(event) {
  if (event.pointerId !== state.pointerId) return;
  const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const each of coalesced.length ? coalesced : [event]) strokeTo(boardPoint(each));
  readSoon();
}

function endStroke(event) {
  if (event.pointerId !== state.pointerId) return;
  state.pointerId = null;
  readDrawing();
}

// --- Reading ---------------------------------------------------------------------------------

function readSoon() {
  if (state.timer === null) state.timer = setTimeout(readDrawing, READ_EVERY_MS);
}

// One read of the drawing at a time: a slow server gets the latest drawing next, not a queue.
function readDrawing() {
  clearTimeout(state.timer);
  state.timer = null;
  if (!state.hasInk) return;
  if (state.reading) {
    state.readAgain = true;
    return;
  }
  const number = nextRequest();
  state.reading = number;
  board.toBlob(async (png) => {
    await send(png, "", number);
    if (state.reading !== number) return;  // cleared meanwhile
    state.reading = 0;
    if (state.readAgain) {
      state.readAgain = false;
      readDrawing();
    }
  }, "image/png");
}

// Numbers requests in the order they are asked for; the board is busy until the latest is answered.
function nextRequest() {
  setBusy(true);
  return ++state.sent;
}

// While busy the answer is dimmed, and screen readers wait for the new one instead of each old one.
function setBusy(busy) {
  summary.classList.toggle("busy", busy);
  summary.setAttribute("aria-busy", String(busy));
}

async function send(body, fileName, number) {
  let status = 0;
  let answer;
  try {
    const response = await fetch("/api/read", {
      method: "POST",
      body,
      headers: {
        "Content-Type": body.type || "application/octet-stream",
        "X-Filename": encodeURIComponent(fileName),  // header values must be ASCII
      },
    });
    status = response.status;
    answer = await response.json();
  } catch {
    const problem = status ? `The server answered ${status}.` : "The server cannot be reached.";
    answer = { error: problem };
  }
  if (number <= state.shown) return;  // a newer answer is already on screen
  state.shown = number;
  if (number === state.sent && !state.readAgain) setBusy(false);
  if (answer.error !== undefined) showError(answer.error);
  else showReading(answer);
}

// --- Showing the answer ----------------------------------------------------------------------

function percent(probability) {
  return `${(probability * 100).toFixed(1)}%`;
}

function showError(message) {
  errorLine.textContent = message;
  errorLine.hidden = false;
  summary.textContent = "No answer.";
  digitList.replaceChildren();
  boxPen.clearRect(0, 0, boxes.width, boxes.height);
}

function showReading(reading) {
  errorLine.hidden = true;
  if (reading.digits.length === 0) {
    summary.textContent = "No digit found: draw a bigger or clearer one.";
  } else {
    const number = document.createElement("span");
    number.className = "number";
    number.id = "prediction";
    number.textContent = reading.prediction;
    const doubt = reading.digits.some((digit) => digit.uncertain) ? " — not sure" : "";
    summary.replaceChildren(number, `confidence ${percent(reading.confidence)}${doubt}`);
  }
  digitList.replaceChildren(...reading.digits.map((digit, index) =>
    digitCard(digit, reading.preprocessed[index], index, reading.digits.length)));
  drawBoxes(reading.digits);
}

function digitCard(digit, seenImage, index, count) {
  const card = digitTemplate.content.firstElementChild.cloneNode(true);
  const place = count > 1 ? ` ${index + 1} of ${count}` : "";
  card.classList.toggle("uncertain", digit.uncertain);
  const seen = card.querySelector(".seen");
  seen.src = seenImage;
  seen.alt = `Digit${place} as the model saw it, 28 by 28 pixels`;
  card.querySelector(".digit-value").textContent = digit.digit;
  card.querySelector(".digit-confidence").textContent = percent(digit.confidence);
  card.querySelector(".badge").hidden = !digit.uncertain;
  card.querySelector("caption").textContent = `Probability of each class for digit${place}`;
  card.querySelector("tbody").replaceChildren(...digit.probabilities.map((probability, label) =>
    probabilityRow(label, probability, label === digit.digit)));
  return card;
}

function probabilityRow(label, probability, isTop) {
  const row = document.createElement("tr");
  row.classList.toggle("top", isTop);
  row.dataset.probability = probability;
  const name = document.createElement("th");
  name.scope = "row";
  name.textContent = label;
  const track = document.createElement("div");
  track.className = "track";
  const fill = document.createElement("div");
  fill.className = "fill";
  fill.style.width = `${probability * 100}%`;
  track.append(fill);
  const bar = document.createElement("td");
  bar.append(track);
  const value = document.createElement("td");
  value.className = "percent";
  value.textContent = percent(probability);
  row.append(name, bar, value);
  return row;
}

function drawBoxes(digits) {
  boxPen.clearRect(0, 0, boxes.width, boxes.height);
  const place = state.picture || { scale: 1, dx: 0, dy: 0 };
  if (place.scale === 0) return;  // a picture without preview has nowhere to mark
  boxPen.lineWidth = 2;
  boxPen.font = "600 16px system-ui, sans-serif";
  for (const digit of digits) {
    const [x0, y0, x1, y1] = digit.box.map((value) => value * place.scale);
    const colour = digit.uncertain ? UNCERTAIN_COLOUR : BOX_COLOUR;
    boxPen.strokeStyle = colour;
    boxPen.fillStyle = colour;
    boxPen.setLineDash([6, 4]);
    boxPen.strokeRect(x0 + place.dx, y0 + place.dy, x1 - x0, y1 - y0);
    boxPen.fillText(String(digit.digit), x0 + place.dx + 3, Math.max(16, y0 + place.dy - 4));
  }
}

// --- Opening a picture -----------------------------------------------------------------------

async function showPicture(file) {
  clearBoard();
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(board.width / bitmap.width, board.height / bitmap.height);
    const dx = (board.width - bitmap.width * scale) / 2;
    const dy = (board.height - bitmap.height * scale) / 2;
    pen.drawImage(bitmap, dx, dy, bitmap.width * scale, bitmap.height * scale);
    state.picture = { scale, dx, dy };
  } catch {
    // The browser cannot show this format; the server may still read it.
    pen.fillStyle = INK;
    pen.font = "18px system-ui, sans-serif";
    pen.fillText(`No preview for ${file.name}`, 20, 40);
    state.picture = { scale: 0, dx: 0, dy: 0 };
  }
}

async function openPicture(file) {
  reset();
  const number = nextRequest();
  await showPicture(file);
  send(file, file.name, number);
}

fileInput.addEventListener("change", () => {
  if (fileInput.files.length) openPicture(fileInput.files[0]);
  fileInput.value = "";  // choosing the same file again reads it again
});

dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("dragging");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  if (event.dataTransfer.files.length) openPicture(event.dataTransfer.files[0]);
});
// A picture dropped beside the board must not replace the page.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

board.addEventListener("pointerdown", startStroke);
board.addEventListener("pointermove", continueStroke);
board.addEventListener("pointerup", endStroke);
board.addEventListener("pointercancel", endStroke);
document.getElementById("clear").addEventListener("click", reset);

reset();
