"""Where the project's files are, resolved from the repository rather than the working directory."""

from pathlib import Path

# Not resolved: a checkout whose digits/ is a symbolic link keeps its own bestmodel.h5.
REPOSITORY = Path(__file__).absolute().parent.parent
DEFAULT_MODEL = REPOSITORY / "bestmodel.h5"
DEFAULT_STRING_MODEL = REPOSITORY / "stringmodel.h5"  # splits groups of touching digits
