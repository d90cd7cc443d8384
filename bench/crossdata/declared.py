"""External sets that declare their own label set (a dataset declaration), scored in a model's classes.

The set's classes are matched to the model's by name (any spelling the model's label set accepts):
a set of some of the model's classes is scored on those, the metrics averaging over the classes
present. Failing that, its declared coarse mapping (`[labels] coarse`, e.g. 44c's Astrocitoma and
Glioblastoma onto glioma) is used when every coarse class is one of the model's; the set's
classes without a coarse class are left out and counted. A set that fits neither way is an error
naming the folder and both label sets: a model cannot be scored on classes it does not know.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from bench.crossdata.external_set import ExternalSet, multiclass_task
from bench.data.declaration import DECLARATION_FILE, DEFAULT_DECLARATION, Declaration, declaration_for
from bench.data.discover import discover
from bench.data.labels import LabelSet
from bench.errors import DatasetError

SAME_CLASSES = "declared classes"
COARSE_CLASSES = "declared coarse classes"


def external_declaration(root: Path) -> Declaration | None:
    """The folder's own declaration (its brainbench-dataset.toml, or a shipped one recognising
    it); None when only the default fallback would apply, so that its folder names decide."""
    declaration = declaration_for(root)
    if (root / DECLARATION_FILE).is_file() or declaration.name != DEFAULT_DECLARATION:
        return declaration
    return None


def class_mapping(set_labels: LabelSet, model_labels: LabelSet, where: str) -> tuple[dict[str, str], str]:
    """({set class: model class} for the set's classes that have a counterpart, how it was found)."""
    direct = {name: model_labels.lookup(name) for name in set_labels.names}
    if all(direct.values()):
        return direct, SAME_CLASSES
    coarse = {fine: model_labels.lookup(target) for fine, target in set_labels.coarse_map().items()}
    if coarse and all(coarse.values()):
        return coarse, COARSE_CLASSES
    targets = sorted(set(set_labels.coarse_map().values()))
    raise DatasetError(f"external set {where}: its classes {list(set_labels.names)} are not classes of the model "
                       f"({list(model_labels.names)}), and its coarse classes {targets or '(none declared)'} are "
                       f"not all the model's either; declare [labels] coarse onto the model's classes")


def declared_external(root: Path, declaration: Declaration, model_labels: LabelSet, name: str) -> ExternalSet:
    """Every image of the declared set (both sides of any split: none is trained on), labelled
    with the model's class its declared class maps onto; the others left out and counted."""
    index = discover(root, declaration)
    where = f"{root} ({declaration.where})"
    mapping, labels_from = class_mapping(index.labels, model_labels, where)
    classes, prediction_map = multiclass_task(model_labels)
    every = index.samples
    set_class = [index.labels.names[s.label] for s in every]
    samples = tuple(dataclasses.replace(s, label=classes.index(mapping[c]))
                    for s, c in zip(every, set_class) if c in mapping)
    if not samples:
        raise DatasetError(f"external set {where}: none of its images is of a class the model knows "
                           f"({list(model_labels.names)})")
    left_out = Counter(c for c in set_class if c not in mapping)
    return ExternalSet(root, name, samples, classes, prediction_map,
                       labels_from=f"{labels_from} of {declaration.where}", set_counts=dict(Counter(set_class)),
                       not_in_task=dict(left_out), skipped_entries=tuple(index.skipped_entries))
