"""Where the project's files are, resolved from the repository rather than the working directory."""

from pathlib import Path

# Not resolved: a checkout whose digits/ is a symbolic link keeps its own bestmodel.h5.
REPOSITORY = Path(__file__).absolute().parent.parent
DEFAULT_MODEL = REPOSITORY / "bestmodel.h5"
# The string model that reads groups of touching digits (digits.training.train_numbers makes it).
DEFAULT_STRING_MODEL = REPOSITORY / "stringmodel.h5"
OUTSIDE_REPOSITORY = "(outside the repository)"


def recorded_path(path) -> str:
    """A path as a run record stores it: relative to the repository, or, for a file elsewhere, its
    name alone, so that no record holds the folders of the machine it ran on."""
    path = Path(path).resolve()
    if path.is_relative_to(REPOSITORY):
        return path.relative_to(REPOSITORY).as_posix()
    return f"{OUTSIDE_REPOSITORY}/{path.name}"
