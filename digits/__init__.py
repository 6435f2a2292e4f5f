"""Handwritten digit recognition: read digits in pictures with a CNN trained on MNIST.

The package has three parts, and data flows one way through them:

- `digits.reading` turns pictures into readings: it opens them, finds the ink, removes printed
  lines, splits numbers into digits, makes each digit an MNIST-style 28×28 image and runs the
  trained networks with a small numpy engine that reads Keras .h5 files safely. It imports only
  numpy, Pillow, scipy and h5py (never TensorFlow: that is why `interface.py` starts in a third of
  a second), and a test of the import graph keeps it so.
- `digits.training` makes `bestmodel.h5`: the MNIST loader, the one training recipe (a
  `TrainingConfig` and the functions that prepare, build, train and calibrate), metrics and plots.
  It may import TensorFlow/Keras and the reading part.
- `digits.board` is the drawing board, a small Flask app that reads through `digits.reading`.

`digits.synthetic` makes pictures for training and measuring (font glyphs, photographed digits).
Plumbing used by every part lives at the top: `paths`, `files`, `cpu`, `fonts`.
"""
