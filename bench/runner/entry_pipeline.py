"""One suite entry, start to finish: train or load, predict on test, score, measure, one row."""

from __future__ import annotations

import csv
import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import zoo
from bench.crossdata.evaluate import ExternalSets, external_columns
from bench.data.batches import Normalizer, to_model_input
from bench.data.cache import Preprocessing
from bench.data.dataset import LoadedDataset, SplitView
from bench.data.labels import LabelSet
from bench.deploy import deployment_row
from bench.deploy.modes import MODE_GROUPS
from bench.evaluate.efficiency import efficiency_row
from bench.evaluate.metrics import classification_metrics
from bench.evaluate.predict import predict_logits
from bench.identity import ResultIdentity, training_recipe_hash
from bench.io import atomic_path
from bench.leakage.columns import leakage_columns
from bench.leakage.index import LeakageIndex
from bench.pretrain.linear_probe import linear_probe_row
from bench.suites import SuiteRun
from bench.train.loop import autocast_dtype_for
from bench.train.settings import DEFAULT_SETTINGS, TrainSettings
from bench.train.store import HISTORY, WEIGHTS, CheckpointStore
from bench.train.train_or_load import TrainedModel, train_or_load
from zoo.entry import ZooEntry
from zoo.recipe import Recipe
from zoo.weights import WeightsUnavailableError, find_weights

ENTRIES_DIR = "entries"
PREDICTIONS_CSV = "test_predictions.csv"
Stage = Callable[[str], None]  # reports which stage is running, for the progress display


@dataclass(frozen=True)
class Evaluation:
    """What every entry is scored on besides the official test split."""
    split: str = "official"  # or "clean": training kept duplicate groups whole, ranking uses clean_acc
    leakage: LeakageIndex | None = None  # per-image similarity to training, clean test images
    external: ExternalSets | None = None  # --external folders, audited against training


def identity_columns(run: SuiteRun, fingerprint: str, split: str = "official", view: SplitView | None = None,
                     identity: ResultIdentity | None = None) -> dict:
    """`entry` names the row (the run id: the zoo name, plus `@setting` in a training study, plus
    the protocol and fold); `result_key` is the hash of everything that makes it this result
    (bench.identity). Folds of one k-fold run share a `cv_group`: the run id without the fold."""
    entry, recipe = run.entry, run.recipe
    columns = {"entry": run.run_id, "zoo_entry": entry.name, "arch": entry.arch,
               "variant": entry.variant, "recipe_hash": training_recipe_hash(entry, recipe),
               "dataset_fingerprint": fingerprint, "split": split, "seed": recipe.seed,
               "input_size": recipe.input_size or entry.input_size, "in_channels": entry.in_channels,
               "result_key": identity.hash() if identity is not None else None}
    if view is not None:
        columns |= {"protocol": view.spec.name, "protocol_kind": view.spec.kind, "fold": view.fold.number,
                    "n_folds": view.fold.n_folds,
                    "cv_group": dataclasses.replace(run, fold=None).run_id if view.fold.number is not None else None}
    return columns | ({"setting": run.setting} if run.setting else {})


def imported_trained(entry: ZooEntry, device: torch.device, labels: LabelSet) -> TrainedModel:
    """An imported model is its own checkpoint: nothing to train, nothing stored. Its outputs are
    put in the dataset's class order (refused when it predicts other classes)."""
    model = entry.builder(device=device, labels=labels)
    manifest = {"epochs_run": 0, "best_epoch": None, "best_val": {"acc": None}, "train_seconds": None,
                "recipe": None, "imported_file": entry.checkpoint.url_or_path,
                "imported_sha256": entry.checkpoint.sha256}
    return TrainedModel(model, manifest, Path(entry.checkpoint.url_or_path).parent, loaded=True)


def training_columns(trained: TrainedModel) -> dict:
    m = trained.manifest
    return {"loaded_from_store": trained.loaded, "checkpoint": str(trained.checkpoint_dir),
            "epochs_run": m["epochs_run"], "best_epoch": m["best_epoch"], "val_acc": m["best_val"]["acc"],
            "train_seconds": m["train_seconds"], "recipe": m["recipe"]}


def test_columns(trained: TrainedModel, entry: ZooEntry, data: LoadedDataset, device: torch.device,
                 entry_dir: Path, leakage: LeakageIndex | None = None) -> dict:
    """Test-split metrics with intervals, and with a leakage index the clean split's and the
    per-similarity-band accuracies; per-image predictions go beside the row for later audits."""
    test = data.decoded.test
    normalize = Normalizer(entry.mean, entry.std, device)
    logits = predict_logits(trained.model, test.images, normalize, channels_last=device.type == "cuda",
                            autocast_dtype=autocast_dtype_for(device))
    loss = torch.nn.functional.cross_entropy(logits, test.labels).item()
    probs = torch.softmax(logits, dim=1).numpy()
    classes = data.labels.names
    _write_predictions(entry_dir / PREDICTIONS_CSV, test.paths, test.labels.tolist(), probs, classes)
    metrics = classification_metrics(test.labels.numpy(), probs, classes, loss=loss, no_tumor=data.labels.no_tumor)
    columns = {f"test_{key}": value for key, value in metrics.items()}
    if leakage is not None:
        columns |= leakage_columns(test.labels.numpy(), probs, test.paths, leakage, classes)
    return columns


def _write_predictions(path: Path, paths: list[str], labels: list[int], probs, classes: tuple[str, ...]) -> None:
    # Read later by the McNemar tests and the pooled out-of-fold metrics: a torn file would
    # silently change their image set.
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "label", "predicted", *(f"p_{c}" for c in classes)])
        for rel, label, p in zip(paths, labels, probs):
            writer.writerow([rel, classes[label], classes[int(p.argmax())], *(f"{x:.6f}" for x in p)])


ViewFor = Callable[[Preprocessing], LoadedDataset]  # the same dataset, decoded another way


def probe_columns(entry: ZooEntry, recipe: Recipe, data: LoadedDataset, store: CheckpointStore,
                  device: torch.device, view_for: ViewFor) -> dict:
    """Linear probe of a pretrained backbone next to a random one and, when its weights are on this
    machine, the same architecture's ImageNet backbone (else the reason it is missing)."""
    imagenet = zoo.get(f"{entry.arch}.imagenet") if f"{entry.arch}.imagenet" in zoo.names() else None
    if imagenet is not None:
        try:
            find_weights(imagenet.weights, imagenet.name)  # locate only: loading happens in the probe
        except WeightsUnavailableError as error:
            row = linear_probe_row(entry, data, store, device, recipe=recipe)
            return row | {"probe_note_imagenet": f"n/a: {str(error).splitlines()[0]}"}
        imagenet_view = view_for(Preprocessing(data.decoded.preprocessing.size, imagenet.in_channels,
                                               data.decoded.preprocessing.crop_to_content, imagenet.resize))
        return linear_probe_row(entry, data, store, device, recipe=recipe, imagenet_entry=imagenet,
                                imagenet_data=imagenet_view)
    return linear_probe_row(entry, data, store, device, recipe=recipe)


CHECK_IMAGES = 256  # real test images each compiled mode must agree on with eager


def deployment_columns(model: torch.nn.Module, entry: ZooEntry, data: LoadedDataset, device: torch.device,
                       modes: tuple[str, ...]) -> dict:
    size = data.decoded.preprocessing.size
    normalize = Normalizer(entry.mean, entry.std, device)
    test = data.decoded.test
    with torch.no_grad():
        check = to_model_input(test.images[:CHECK_IMAGES], normalize)
    return deployment_row(model, (1, entry.in_channels, size, size), device, check,
                          modes=tuple(m for mode in modes for m in MODE_GROUPS[mode]),
                          e2e_image=test.images[0], normalize=normalize, label=entry.name,
                          min_time_s=1.0 if device.type == "cuda" else None)


def run_entry(run: SuiteRun, data: LoadedDataset, store: CheckpointStore, device: torch.device,
              out_dir: Path, *, measure: tuple[str, ...], fresh: bool, stage: Stage, view_for: ViewFor,
              modes: tuple[str, ...] = ("eager",), evaluation: Evaluation = Evaluation(),
              settings: TrainSettings = DEFAULT_SETTINGS, identity: ResultIdentity | None = None) -> dict:
    """The run's result row. Raises on failure; the caller records the error in the row."""
    entry, recipe = run.entry, run.recipe
    entry_dir = out_dir / ENTRIES_DIR / run.run_id
    row = identity_columns(run, data.fingerprint, evaluation.split, data.split, identity)
    if entry.variant == "imported":
        stage("loading imported model")
        trained = imported_trained(entry, device, data.labels)
    else:
        stage("training" if fresh else "training or loading")
        trained = train_or_load(entry, recipe, data, store, device, fresh=fresh, settings=settings)
    row |= training_columns(trained)
    entry_dir.mkdir(parents=True, exist_ok=True)
    if (trained.checkpoint_dir / HISTORY).is_file():
        shutil.copyfile(trained.checkpoint_dir / HISTORY, entry_dir / HISTORY)
    if "metrics" in measure:
        stage("evaluating on test")
        row |= test_columns(trained, entry, data, device, entry_dir, evaluation.leakage)
        if evaluation.external is not None:
            stage("evaluating on external datasets")
            row |= external_columns(trained.model, entry, data.decoded.preprocessing, evaluation.external, device)
        if entry.pretraining is not None:
            # How much the self-supervised backbone learned before any label: a logistic
            # regression on its frozen features, next to the same architecture at random init.
            stage("linear probe of the pretrained backbone")
            row |= probe_columns(entry, recipe, data, store, device, view_for)
    if "efficiency" in measure:
        stage("measuring efficiency")
        size = row["input_size"]
        weights = Path(entry.checkpoint.url_or_path) if entry.variant == "imported" else trained.checkpoint_dir / WEIGHTS
        row |= efficiency_row(trained.model, (1, entry.in_channels, size, size), device, checkpoint_path=weights)
        if len(modes) > 1 or device.type == "cuda":
            stage(f"measuring deployment modes ({', '.join(modes)})")
            row |= deployment_columns(trained.model, entry, data, device, modes)
    return row
