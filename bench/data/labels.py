"""A dataset's label set: its class names, the spellings that mean each, and the no-tumour class.

No module keeps a global class list: every layer receives the `LabelSet` of the dataset in hand
(`DatasetIndex.labels`, a checkpoint's input contract, an imported model's TOML). The four-class
set of the Kaggle dataset is not special here; it is declared in bench/datasets/brain-tumor-mri.toml
like any other.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field

from bench.errors import DatasetError

# External test sets (never training data) may be labelled only tumor / no tumor.
TUMOR = "tumor"
NO_TUMOR_WORDS = ("no", "notumor", "notumour", "normal", "healthy")  # folder names meaning "no tumour"
TUMOR_WORDS = ("yes", "tumor", "tumour")  # folder names meaning "some tumour"


def fold_spelling(name: str) -> str:
    """The form names are compared in: lower case, no spaces, underscores or hyphens
    ("Glioma_Tumor", "glioma tumor" and "glioma-tumor" are one spelling)."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


@dataclass(frozen=True)
class LabelSet:
    """The classes a model of this dataset predicts, in output-column order.

    `aliases` maps folded spellings (fold_spelling) onto class names, for folder names such as
    "glioma_tumor"; every class name is its own alias. `no_tumor` names the class meaning "no
    tumour", when the set has one (the rate of tumours called normal needs it). `coarse` maps
    each class onto a coarser class of another label set (44c's types onto glioma / meningioma /
    notumor), for scoring this dataset as an external set of a model with fewer classes; a class
    without a coarse counterpart is left out of such scoring.
    """

    names: tuple[str, ...]
    no_tumor: str | None = None
    aliases: tuple[tuple[str, str], ...] = ()
    coarse: tuple[tuple[str, str], ...] = field(default=())  # (fine class, coarse class)

    def __post_init__(self) -> None:
        if len(self.names) < 2:
            raise DatasetError(f"a label set needs at least two classes, got {list(self.names)}")
        if len(set(self.names)) != len(self.names):
            raise DatasetError(f"label set {list(self.names)} names a class twice")
        if self.no_tumor is not None and self.no_tumor not in self.names:
            raise DatasetError(f"no-tumour class {self.no_tumor!r} is not one of {list(self.names)}")
        for _, name in self.aliases:
            if name not in self.names:
                raise DatasetError(f"alias target {name!r} is not one of {list(self.names)}")
        for fine, _ in self.coarse:
            if fine not in self.names:
                raise DatasetError(f"coarse mapping names {fine!r}, which is not one of {list(self.names)}")

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def _alias_table(self) -> dict[str, str]:
        return {fold_spelling(n): n for n in self.names} | dict(self.aliases)

    def lookup(self, spelling: str) -> str | None:
        """The class a name means (any accepted spelling), or None."""
        return self._alias_table().get(fold_spelling(spelling))

    def normalize(self, spelling: str, what: str = "class folder") -> str:
        """The class a name means, or a DatasetError naming it, the classes, and a near miss."""
        found = self.lookup(spelling)
        if found is not None:
            return found
        table = self._alias_table()
        close = difflib.get_close_matches(fold_spelling(spelling), table, n=1, cutoff=0.8)
        hint = f" (did you mean {table[close[0]]!r}?)" if close else ""
        raise DatasetError(f"unknown {what} {spelling!r}{hint}: expected one of {', '.join(self.names)}")

    def coarse_map(self) -> dict[str, str]:
        return dict(self.coarse)

    def record(self) -> dict:
        return {"names": list(self.names), "no_tumor": self.no_tumor,
                "coarse": {fine: coarse for fine, coarse in self.coarse}}

    def key(self) -> str:
        """12 hex digits naming the classes and their order (aliases do not change a model)."""
        text = json.dumps({"names": list(self.names), "no_tumor": self.no_tumor})
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def binary_word(spelling: str) -> str | None:
    """TUMOR or "no tumour" (returned as the string "notumor") for a yes/no-style folder name, else None."""
    key = fold_spelling(spelling)
    if key in TUMOR_WORDS:
        return TUMOR
    if key in NO_TUMOR_WORDS:
        return "notumor"
    return None
