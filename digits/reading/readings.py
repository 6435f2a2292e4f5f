"""What was read in a picture, and its JSON shape, shared by every front end.

A `Reading` holds the digits of one picture, left to right: for each its class, confidence (the
top probability), all ten probabilities, its box in the picture, whether it is uncertain, and the
28×28 image the model saw. `interface.py --json`, the drawing board and the notebook all show
`Reading.to_json`.
"""

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

UNCERTAIN_BELOW = 0.80
"""A digit whose top probability is below this is marked uncertain: the model sees it as ambiguous
(a well-written MNIST-like digit gets over 0.99, while most misread ones fall below 0.8)."""


@dataclass
class DigitReading:
    digit: int
    confidence: float  # the top probability
    probabilities: list[float]  # all ten, index = digit
    box: tuple  # x0, y0, x1, y1 in the input picture's pixels (x1, y1 exclusive)
    pixels: np.ndarray  # the 28×28 image the model saw, floats in [0, 1], light ink on black
    uncertain: bool  # confidence < UNCERTAIN_BELOW

    def to_json(self) -> dict:
        return {
            "digit": self.digit,
            "confidence": self.confidence,
            "probabilities": self.probabilities,
            "box": [int(v) for v in self.box],
            "uncertain": self.uncertain,
        }

    def png(self) -> bytes:
        """The 28×28 image the model saw, as a grey PNG (white ink on black, like MNIST)."""
        grey = np.clip(np.rint(self.pixels * 255), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(grey, mode="L").save(buffer, format="PNG")
        return buffer.getvalue()


@dataclass
class Reading:
    digits: list[DigitReading]
    prediction: str  # the digits left to right, "" when no digit
    confidence: float  # product of the digits' confidences (0 when none)

    @property
    def uncertain(self) -> bool:
        """True when any digit is uncertain."""
        return any(digit.uncertain for digit in self.digits)

    def to_json(self, file: str) -> dict:
        return {
            "file": file,
            "prediction": self.prediction,
            "confidence": self.confidence,
            "uncertain": self.uncertain,
            "digits": [digit.to_json() for digit in self.digits],
        }


def error_json(file: str, error: str) -> dict:
    """The JSON of a picture that could not be read."""
    return {"file": file, "error": error}


def reading_from(digit_images: list, probabilities: np.ndarray) -> Reading:
    """The Reading of one picture from its DigitImages and their rows of class probabilities."""
    digits = []
    for image, row in zip(digit_images, probabilities, strict=True):
        best = int(np.argmax(row))
        confidence = float(row[best])
        digits.append(
            DigitReading(
                digit=best,
                confidence=confidence,
                probabilities=[float(p) for p in row],
                box=tuple(int(v) for v in image.box),
                pixels=image.pixels,
                uncertain=confidence < UNCERTAIN_BELOW,
            )
        )
    prediction = "".join(str(d.digit) for d in digits)
    confidence = math.prod(d.confidence for d in digits) if digits else 0.0
    return Reading(digits=digits, prediction=prediction, confidence=confidence)
