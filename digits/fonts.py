"""Where TrueType fonts for rendering printed digits are: matplotlib's bundled faces, then the
system's DejaVu faces. Found without importing matplotlib (which is slow to import)."""

import importlib.util
from pathlib import Path

SYSTEM_FONTS = Path("/usr/share/fonts/truetype/dejavu")


def font_folders() -> list[Path]:
    """The folders searched, matplotlib's first (it ships the faces on every platform)."""
    folders = []
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        folders.append(Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf")
    folders.append(SYSTEM_FONTS)
    return folders


def find_fonts(names) -> dict[str, Path]:
    """{name: path} for each font name (file name without .ttf) found, in the order given."""
    found = {}
    folders = font_folders()
    for name in names:
        path = next((f / f"{name}.ttf" for f in folders if (f / f"{name}.ttf").is_file()), None)
        if path is not None:
            found[name] = path
    return found
