"""What bench.throughput measures a call against: realistic single-digit pictures as files, the
time merely decoding them takes, and where a call's time goes, stage by stage (bench/stages.py),
as a table and a stacked-bar figure.
"""

import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, markdown_table, progress
from bench.stages import STAGES

STAGES_SCRIPT = REPO / "bench" / "stages.py"
# The realistic pictures: scans and drawings of single digits, 20–360 px on the long side.
SHORTEST, LONGEST = 20, 360
JPEG_QUALITY = 90
FIGURE = "throughput_stages.png"


def write_realistic_digits(count, folder, seed):
    """`count` realistic single-digit pictures (digits.synthetic), every other one a JPEG, sized
    20–360 px on their long side (log-uniform); returns the digit of each file, by name."""
    from PIL import Image

    from digits.synthetic.pictures import realistic_samples

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = {}
    for index, (picture, text) in enumerate(realistic_samples(count, seed, single_share=1.0)):
        longest = int(np.exp(rng.uniform(np.log(SHORTEST), np.log(LONGEST))))
        scale = longest / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
        name = f"{index:05d}"
        if index % 2:
            picture.convert("RGB").save(folder / f"{name}.jpg", quality=JPEG_QUALITY)
        else:
            picture.save(folder / f"{name}.png")
        labels[name] = text
    return labels


def decoding_seconds(folder, repeats):
    """Median seconds to open and decode every picture in `folder` with Pillow, one process."""
    from PIL import Image

    paths = sorted(Path(folder).iterdir())
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for path in paths:
            with Image.open(path) as image:
                image.load()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def checkout(commit, folder):
    """The files of `commit` (git archive) extracted into `folder`, for stage_seconds to run."""
    archive = subprocess.run(
        ["git", "-C", REPO, "archive", "--format=tar", commit], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return Path(folder)


def stage_seconds(folder, model, code=REPO):
    """Seconds per stage of a call's work on `folder`, redone in one process by bench/stages.py
    with the `digits` package of the checkout `code`."""
    progress(f"stage by stage, {Path(folder).name}, code in {code} ...")
    env = dict(os.environ, PYTHONPATH=str(code))
    command = [sys.executable, STAGES_SCRIPT, folder, "--model", model]
    child = subprocess.run(
        [*command, "--launched", repr(time.time())], env=env, capture_output=True, text=True
    )
    if child.returncode:
        raise RuntimeError(f"bench/stages.py failed: {child.stderr.strip()[-500:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def stages_table(profiles):
    """Seconds per stage, one column per profiled (label → stage_seconds result)."""
    rows = [
        (stage, *(f"{profile['seconds'][stage]:.2f} s" for profile in profiles.values()))
        for stage in STAGES
    ]
    rows.append(("total", *(f"{sum(p['seconds'].values()):.2f} s" for p in profiles.values())))
    return markdown_table(["stage (one process)", *profiles], rows)


def draw_stages(profiles, path):
    """A stacked horizontal bar per profile: the seconds of each stage, in order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(profiles)
    figure, axes = plt.subplots(figsize=(9, 0.6 * len(labels) + 1.2))
    left = np.zeros(len(labels))
    for stage in STAGES:
        widths = np.array([profiles[label]["seconds"][stage] for label in labels])
        axes.barh(labels, widths, left=left, label=stage)
        left += widths
    axes.invert_yaxis()
    axes.set_xlabel("seconds, one process")
    axes.set_title("Where a call's time goes, stage by stage")
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
