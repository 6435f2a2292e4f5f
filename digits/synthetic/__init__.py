"""Pictures made for training and measuring: printed digits rendered from fonts, and realistic
photographs of typed, pen-drawn or handwritten (MNIST) digits."""
