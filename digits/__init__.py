"""Handwritten digit recognition: MNIST data, preprocessing, a safe predictor, a drawing board."""
