"""The four class labels and the folder-name spellings that map onto them."""

from __future__ import annotations

import difflib
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
            f"unknown class folder {folder_name!r}{_did_you_mean(key)}: expected one of {', '.join(CLASS_NAMES)} "
            "(spellings such as 'glioma_tumor', 'no_tumor' or 'No Tumor' are accepted)"
        ) from None


def _did_you_mean(key: str) -> str:
    """' (did you mean 'glioma'?)' for a near miss such as 'gliomaa' or 'menigioma'; else ''."""
    close = difflib.get_close_matches(key, _ALIASES, n=1, cutoff=0.8)
    return f" (did you mean {_ALIASES[close[0]]!r}?)" if close else ""


# External test sets (never training data) may be labelled only tumor / no tumor.
TUMOR = "tumor"
EXTERNAL_CLASS_NAMES: tuple[str, ...] = CLASS_NAMES + (TUMOR,)
_BINARY_ALIASES = {"yes": TUMOR, "tumor": TUMOR, "tumour": TUMOR, "no": NO_TUMOR, "normal": NO_TUMOR,
                   "healthy": NO_TUMOR}


def external_class_name(folder_name: str) -> str | None:
    """One of EXTERNAL_CLASS_NAMES for a class folder of an external test set, or None when the
    name means no class (a split folder such as Testing/, or an unrelated folder)."""
    key = re.sub(r"[\s_\-]+", "", folder_name.strip().lower())
    return _ALIASES.get(key) or _BINARY_ALIASES.get(key)
