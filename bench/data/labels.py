"""The four class labels and the folder-name spellings that map onto them."""

from __future__ import annotations

import re

from bench.errors import DatasetError

CLASS_NAMES: tuple[str, ...] = ("glioma", "meningioma", "notumor", "pituitary")
NO_TUMOR = "notumor"

# Folder names seen in public copies of the dataset, after lower-casing and removing
# separators: "glioma_tumor", "Meningioma Tumor", "no_tumor", "no tumor", "Pituitary-Tumor".
_ALIASES = {
    "glioma": "glioma",
    "gliomatumor": "glioma",
    "meningioma": "meningioma",
    "meningiomatumor": "meningioma",
    "notumor": "notumor",
    "notumour": "notumor",
    "pituitary": "pituitary",
    "pituitarytumor": "pituitary",
}


def normalize_class_name(folder_name: str) -> str:
    """Map a class folder's name to one of CLASS_NAMES, or raise naming the folder."""
    key = re.sub(r"[\s_\-]+", "", folder_name.strip().lower())
    try:
        return _ALIASES[key]
    except KeyError:
        raise DatasetError(
            f"unknown class folder {folder_name!r}: expected one of {', '.join(CLASS_NAMES)} "
            "(spellings such as 'glioma_tumor', 'no_tumor' or 'No Tumor' are accepted)"
        ) from None
