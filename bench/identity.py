"""One answer to "is this the same result?", for checkpoints, result rows and pretrained backbones.

A trained model is decided by five things: which entry, what it is fed (its input contract:
size, channels, mean/std, label set), how it is trained (the recipe, and for a mocov2 entry the
pretraining recipe), on which data (the dataset fingerprint and the split protocol), and, for a
pretrained backbone, which part of the data it saw. A result row adds what was measured.
Everything that keys a checkpoint, reuses a row or reuses a backbone asks this module, so a
change to any of those (an entry's input size or mean/std, a new label set, another clean
threshold) can never silently reuse an old result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol

from bench.data.dataset import LoadedDataset, SplitView
from bench.data.labels import LabelSet
from bench.train.store import CheckpointKey
from zoo.entry import ZooEntry
from zoo.recipe import Recipe

if TYPE_CHECKING:
    from bench.leakage.index import LeakageIndex


def _short_hash(data: dict) -> str:
    """Stable across machines and Python versions: sorted JSON, sha256, 12 hex digits."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class InputContract:
    """What a model is fed and what its outputs mean: preprocessing belongs to the weights."""

    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    crop_to_content: bool = False
    resize: str = "bilinear"

    def record(self) -> dict:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std), "classes": list(self.classes)}

    @classmethod
    def from_record(cls, record: dict) -> InputContract:
        return cls(int(record["size"]), int(record["channels"]), tuple(record["mean"]), tuple(record["std"]),
                   tuple(record["classes"]), bool(record.get("crop_to_content", False)),
                   str(record.get("resize", "bilinear")))


def input_contract(entry: ZooEntry, recipe: Recipe, labels: LabelSet) -> InputContract:
    """The contract of `entry` trained with `recipe` on a dataset of `labels`: a recipe's input_size
    overrides the entry's; the classes (and their order) are the dataset's."""
    return InputContract(recipe.input_size or entry.input_size, entry.in_channels, tuple(entry.mean),
                         tuple(entry.std), tuple(labels.names), recipe.crop_to_content, entry.resize)


class DataLike(Protocol):
    """What data_key reads: a LoadedDataset, or the runner's views of one before it is decoded."""

    fingerprint: str
    clean_split: LeakageIndex | None
    split: SplitView | None
    labels: LabelSet


def data_key(data: LoadedDataset | DataLike) -> str:
    """Which data and which split protocol: the fingerprint, plus the clean split's threshold
    (its validation split keeps duplicate groups whole, so it trains another model), plus the
    protocol and fold (another fold is another training set). The official protocol adds nothing,
    so checkpoints trained before protocols existed keep their keys."""
    key = data.fingerprint
    if data.clean_split is not None:
        key += f"-clean{data.clean_split.threshold:g}"
    if data.split is not None and data.split.key():
        key += f"-{data.split.key()}"
    return key


def training_recipe_hash(entry: ZooEntry, recipe: Recipe) -> str:
    """The recipe, and for a mocov2 entry its MoCo recipe too (another backbone means another model)."""
    if entry.pretraining is not None:
        return _short_hash({"recipe": recipe.hash(), "pretraining": entry.pretraining.hash()})
    return recipe.hash()


@dataclass(frozen=True)
class ResultIdentity:
    """Everything that makes two results the same result; `hash()` compares them."""

    entry: str
    contract: InputContract
    recipe_hash: str
    data: str  # data_key(): fingerprint and split protocol
    measured: str = ""  # rows only: what the row measured (metrics, modes, external sets)
    extra: dict = field(default_factory=dict)  # e.g. the images a backbone was pretrained on

    def record(self) -> dict:
        return {"entry": self.entry, "contract": self.contract.record(), "recipe_hash": self.recipe_hash,
                "data": self.data, "measured": self.measured, "extra": self.extra}

    def hash(self) -> str:
        return _short_hash(self.record())

    def trained(self) -> ResultIdentity:
        """The identity of the trained model alone, whatever a row measured with it."""
        return ResultIdentity(self.entry, self.contract, self.recipe_hash, self.data, "", self.extra)

    def checkpoint_key(self) -> CheckpointKey:
        """The store folder <entry>/<model hash>-<data key>: the model hash covers the contract and
        the recipe; the data key stays readable so a folder says which dataset it belongs to."""
        trained = self.trained()
        model_hash = _short_hash({k: v for k, v in trained.record().items() if k != "data"})
        return CheckpointKey(self.entry, model_hash, self.data)


def training_identity(entry: ZooEntry, recipe: Recipe, data: LoadedDataset | DataLike,
                      measured: str = "") -> ResultIdentity:
    """The identity of `entry` trained with `recipe` on `data` (and of a row that measured `measured`)."""
    # A model that comes as a file (an imported model, a published checkpoint) is that file.
    weights = {"checkpoint_sha256": entry.checkpoint.sha256} if entry.checkpoint is not None else {}
    return ResultIdentity(entry.name, input_contract(entry, recipe, data.labels), training_recipe_hash(entry, recipe),
                          data_key(data), measured, weights)


def backbone_identity(entry: ZooEntry, recipe: Recipe, data: LoadedDataset) -> ResultIdentity:
    """The MoCo backbone that fine-tuning `entry` with `recipe` starts from.

    The MoCo recipe alone does not decide the weights: which images it saw does too. Pretraining
    sees only the training part of Training (validation stays unseen, or validation would no longer
    be honest), so the split's fraction and seed are part of it; the label set is not (no labels
    are used), and every entry of one architecture whose fine-tuning split agrees shares one backbone.
    """
    if entry.pretraining is None:
        raise ValueError(f"entry {entry.name} has no pretraining recipe")
    moco = entry.pretraining
    contract = InputContract(moco.input_size or entry.input_size, entry.in_channels, tuple(entry.mean),
                             tuple(entry.std), (), data.decoded.preprocessing.crop_to_content)
    seen = {"split": {"val_fraction": recipe.val_fraction, "seed": recipe.seed},
            "preprocessing": dict(data.decoded.preprocessing.__dict__)}  # the decoded pictures it trained on
    return ResultIdentity(f"{entry.arch}.mocov2-backbone", contract, moco.hash(), data_key(data), extra=seen)


def same_result(row: dict | None, identity: ResultIdentity) -> bool:
    """Whether a finished row already holds `identity`'s result (its checkpoint is checked apart)."""
    return row is not None and row.get("status") == "ok" and row.get("result_key") == identity.hash()
