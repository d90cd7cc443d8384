"""Build a two-class (yes/no) copy of a split folder of class folders: the shape of many public
"brain tumor detection" sets, used to test cross-dataset scoring against a known answer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.data.declaration import default_labels
from bench.data.discover import IMAGE_SUFFIXES
from bench.data.entries import FolderWalk
from bench.data.labels import LabelSet
from bench.errors import DatasetError


def write_yes_no_copy(split_dir: Path | str, out_dir: Path | str, labels: LabelSet | None = None) -> dict[str, int]:
    """Copy (hard-link where possible) every image of split_dir/<class>/ into out_dir/yes or
    out_dir/no; return the image count per folder. File names keep their class as a prefix
    so that two classes' files of the same name cannot collide.

    labels: the label set the class folders are named by (default: the shipped default
    declaration's, the Kaggle four classes); its no-tumour class goes to no/, every other to yes/.
    """
    split_dir, out_dir = Path(split_dir), Path(out_dir)
    labels = labels or default_labels()
    if labels.no_tumor is None:
        raise DatasetError(f"{split_dir}: a yes/no copy needs a no-tumour class, and the classes "
                           f"{list(labels.names)} have none")
    if not split_dir.is_dir():
        raise DatasetError(f"{split_dir} is not a folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir} exists and is not empty; choose a new folder")
    counts = {"yes": 0, "no": 0}
    # Walked by the dataset's rules: regular files only (a FIFO would be linked as a FIFO), and
    # no folder links; a file link is linked by its target, so that a relative one does not dangle.
    walk = FolderWalk(split_dir.resolve())  # resolved: equal realpaths then mean the same file
    images = [(class_dir, image) for class_dir in walk.children(walk.root)[0]
              for image in walk.children(class_dir)[1] if image.suffix.lower() in IMAGE_SUFFIXES]
    for class_dir, image in walk.once_each(images, lambda item: item[1]):  # each real file once, as discover
        target = "no" if labels.normalize(class_dir.name) == labels.no_tumor else "yes"
        (out_dir / target).mkdir(parents=True, exist_ok=True)
        destination = out_dir / target / f"{class_dir.name}_{image.name}"
        source = os.path.realpath(image)
        try:
            os.link(source, destination)
        except OSError:  # another file system, or links not allowed: copy instead
            shutil.copyfile(source, destination)
        counts[target] += 1
    if not sum(counts.values()):
        raise DatasetError(f"{split_dir} has no images in class folders")
    return counts
