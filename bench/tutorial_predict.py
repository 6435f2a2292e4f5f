"""A tutorial-style prediction script: the reference that bench.cold_start and bench.memory time
`interface.py` against. It is what most MNIST tutorials end with: import Keras, load the model,
shrink the picture to 28×28 grayscale, predict, print. Benchmark-only, not part of the product.

    python bench/tutorial_predict.py image.png [bestmodel.h5]
"""

import sys

import numpy as np
from keras.models import load_model
from PIL import Image, ImageOps

image_path = sys.argv[1]
model_path = sys.argv[2] if len(sys.argv) > 2 else "bestmodel.h5"

model = load_model(model_path)
image = Image.open(image_path).convert("L").resize((28, 28))
image = ImageOps.invert(image)  # paper is dark on light, MNIST light on dark
pixels = np.array(image, dtype="float32").reshape(1, 28, 28, 1) / 255.0
prediction = model.predict(pixels, verbose=0)
print(int(np.argmax(prediction)))
