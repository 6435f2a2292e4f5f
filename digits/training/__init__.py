"""Making bestmodel.h5: the MNIST loader, the training recipe, metrics and figures."""
