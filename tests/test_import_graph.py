"""Reading never imports TensorFlow: the import graph says so, and so does a run without it.

The contracts live in pyproject.toml ([tool.importlinter]); import-linter checks them on the
static import graph, imports inside functions included, so a lazy `import keras` deep in a
helper that reading calls breaks the contract as surely as one at the top of a module.
"""

import os
import subprocess
import sys
from pathlib import Path

import grimp

REPOSITORY = Path(__file__).resolve().parent.parent
READING_REQUIREMENTS = REPOSITORY / "requirements-reading.txt"
LINT_IMPORTS = (
    "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
)
# Distribution names whose import name differs.
IMPORT_NAMES = {"pillow": "PIL"}


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name = line.split("==")[0].split(";")[0].strip().lower()
            names.add(IMPORT_NAMES.get(name, name))
    return names


def third_party_imports(package: str) -> set[str]:
    """The non-standard-library packages `package` imports, directly or through other modules."""
    graph = grimp.build_graph("digits", include_external_packages=True, cache_dir=None)
    imported = graph.find_upstream_modules(package, as_package=True)
    return {
        name
        for name in imported
        if not name.startswith("digits") and name not in sys.stdlib_module_names
    }


def test_the_import_contracts_hold():
    # In a process of its own: import-linter configures logging with dictConfig, which disables
    # every logger that exists already, and later tests read our loggers' records.
    checked = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS],
        cwd=REPOSITORY,  # import-linter reads pyproject.toml from here
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr  # names any broken chain


def test_reading_needs_only_its_own_requirements():
    # The board's Flask and Werkzeug are in the reading requirements too: `--serve` needs them.
    required = requirement_names(READING_REQUIREMENTS)
    assert third_party_imports("digits.reading") == required - {"flask", "werkzeug"}
    assert third_party_imports("digits.board") <= required


# A stand-in for an environment without TensorFlow, Keras and the notebook's packages: any
# import of them fails, as it would where only requirements-reading.txt is installed.
BLOCKER = """
import sys

BLOCKED = set(sys.argv and __import__("os").environ["BLOCKED_PACKAGES"].split(","))


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
"""


def run_without(tmp_path, packages, *args):
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    environment = {
        **os.environ,
        "PYTHONPATH": str(site),
        "BLOCKED_PACKAGES": ",".join(packages),
    }
    return subprocess.run(
        [sys.executable, str(REPOSITORY / "interface.py"), *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_interface_reads_a_picture_where_tensorflow_is_not_installed(tmp_path):
    training_only = ["tensorflow", "keras", "matplotlib", "IPython", "jupyter", "papermill"]
    done = run_without(tmp_path, training_only, str(REPOSITORY / "image.png"))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"{REPOSITORY / 'image.png'}: 7 (")


def test_a_missing_reading_requirement_is_one_line_naming_it_and_the_fix(tmp_path):
    done = run_without(tmp_path, ["scipy"], str(REPOSITORY / "image.png"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("interface.py: the Python package 'scipy' is not installed")
    assert "pip install -r requirements-reading.txt" in done.stderr
    assert ".venv/bin/python interface.py" in done.stderr
