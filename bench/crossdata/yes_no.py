"""Build a two-class (yes/no) copy of a four-class split folder: the shape of many public
"brain tumor detection" sets, used to test cross-dataset scoring against a known answer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.data.discover import IMAGE_SUFFIXES
from bench.data.labels import NO_TUMOR, normalize_class_name
from bench.errors import DatasetError


def write_yes_no_copy(split_dir: Path | str, out_dir: Path | str) -> dict[str, int]:
    """Copy (hard-link where possible) every image of split_dir/<class>/ into out_dir/yes or
    out_dir/no; return the image count per folder. File names keep their class as a prefix
    so that two classes' files of the same name cannot collide."""
    split_dir, out_dir = Path(split_dir), Path(out_dir)
    if not split_dir.is_dir():
        raise DatasetError(f"{split_dir} is not a folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir} exists and is not empty; choose a new folder")
    counts = {"yes": 0, "no": 0}
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        target = "no" if normalize_class_name(class_dir.name) == NO_TUMOR else "yes"
        (out_dir / target).mkdir(parents=True, exist_ok=True)
        for image in sorted(class_dir.iterdir()):
            if image.suffix.lower() not in IMAGE_SUFFIXES or image.name.startswith("."):
                continue
            destination = out_dir / target / f"{class_dir.name}_{image.name}"
            try:
                os.link(image, destination)
            except OSError:  # another file system, or links not allowed: copy instead
                shutil.copyfile(image, destination)
            counts[target] += 1
    if not sum(counts.values()):
        raise DatasetError(f"{split_dir} has no images in class folders")
    return counts
