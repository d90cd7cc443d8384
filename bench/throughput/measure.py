"""Training throughput of one entry through three pipelines, and how they compare.

(a) model only: one synthetic batch already on the device; the ceiling any data pipeline can reach.
(b) brainbench: the decoded uint8 cache on the device, sliced, augmented and normalized in batch.
(c) ImageFolder + DataLoader: JPEGs decoded and augmented per image, every epoch.

(b)/(a) says how much of the device's time the real pipeline wastes (goal: at least 0.9 on a GPU);
(b)/(c) says what the cache buys over the way the source studies trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from bench.data.augment import policy_named
from bench.data.batches import Normalizer
from bench.data.dataset import LoadedDataset
from bench.errors import OptionError
from bench.throughput.cached import cached_pipeline
from bench.throughput.common import Measurement, ThroughputSettings, make_trainer, measure_in_rounds
from bench.throughput.imagefolder import imagefolder_pipeline
from bench.throughput.model_only import model_only_pipeline
from zoo.entry import ZooEntry
from zoo.recipe import Recipe

PIPELINES = {
    "model_only": "(a) model only: synthetic batch on the device",
    "cached": "(b) brainbench: uint8 cache on the device, batched augmentation",
    "imagefolder": "(c) ImageFolder + DataLoader: JPEG decode and augmentation per image",
}
GOAL_CACHED_OVER_MODEL_ONLY = 0.9  # on a GPU


@dataclass
class ThroughputResult:
    entry: str
    device: torch.device
    settings: ThroughputSettings
    recipe: Recipe
    amp_dtype: str  # "fp32", "bf16" or "fp16"
    data: dict  # path, fingerprint, training images
    measurements: dict[str, Measurement]  # keyed like PIPELINES

    @property
    def ratios(self) -> dict[str, float]:
        ips = {name: m.images_per_s for name, m in self.measurements.items()}
        return {"cached_over_model_only": ips["cached"] / ips["model_only"],
                "cached_over_imagefolder": ips["cached"] / ips["imagefolder"]}

    def metrics(self) -> dict[str, float]:
        """Flat, unit-bearing names, as result rows and torchbench's userbenchmark JSON have them."""
        flat = {}
        for name, m in self.measurements.items():
            flat[f"train_throughput_ips_{name}"] = m.images_per_s
            flat[f"train_step_ms_{name}"] = m.step_ms
        flat.update({f"ratio_{name}": value for name, value in self.ratios.items()})
        return flat

    def config(self) -> dict:
        return {"entry": self.entry, "device": str(self.device), "amp_dtype": self.amp_dtype,
                "augment": self.recipe.augment, "random_resized_crop": self.recipe.random_resized_crop,
                "autoaugment": self.recipe.autoaugment, "optimizer": self.recipe.optimizer,
                **{k: v for k, v in asdict(self.settings).items() if k != "progress"}, "data": self.data}


def _dtype_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def measure_train_throughput(entry: ZooEntry, recipe: Recipe, data: LoadedDataset, settings: ThroughputSettings,
                             device: torch.device) -> ThroughputResult:
    """Images per second of training `entry` through each pipeline, timed in turn (a), (b), (c) for
    `settings.rounds` rounds; each figure is the median over rounds.

    `data` must be decoded at `settings.input_size` with the entry's channels. One model and one
    optimizer serve all three pipelines; each pipeline warms up before its first timed round.
    """
    train = data.decoded.train
    if settings.batch_size > len(train):
        raise OptionError(f"--batch-size {settings.batch_size} is larger than the {len(train)} training images "
                          f"of {data.index.root}")
    if tuple(train.images.shape[1:]) != (entry.in_channels, settings.input_size, settings.input_size):
        raise OptionError(f"the decoded cache holds images of shape {tuple(train.images.shape[1:])}, but "
                          f"{entry.name} at --input-size {settings.input_size} needs "
                          f"{(entry.in_channels, settings.input_size, settings.input_size)}")
    policy = policy_named(recipe.augment, random_resized_crop=recipe.random_resized_crop,
                          autoaugment=recipe.autoaugment)
    normalize = Normalizer(entry.mean, entry.std, device)
    n_classes = len(data.index.labels)  # the dataset's label set decides the head, as in training
    trainer = make_trainer(entry, recipe, settings, device, n_classes)
    cudnn_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed shapes: let cuDNN pick its fastest kernels
    pipelines = []
    try:
        pipelines.append(model_only_pipeline(trainer, normalize, entry.in_channels, n_classes, settings))
        pipelines.append(cached_pipeline(trainer, train, normalize, policy, settings))
        pipelines.append(imagefolder_pipeline(trainer, data, entry.in_channels, entry.mean, entry.std, policy,
                                              settings))
        measurements = measure_in_rounds(pipelines, settings, device)
    finally:
        torch.backends.cudnn.benchmark = cudnn_benchmark
        for pipeline in pipelines:
            pipeline.close()
    record = {"path": str(data.index.root), "fingerprint": data.fingerprint, "n_train_images": len(train)}
    return ThroughputResult(entry.name, device, settings, recipe, _dtype_name(trainer.amp_dtype), record,
                            measurements)


def markdown_table(result: ThroughputResult) -> str:
    s = result.settings
    header = (f"Training throughput of {result.entry} on {result.device} ({result.amp_dtype}"
              f"{', torch.compile' if s.compile else ''}): batch {s.batch_size}, {s.input_size} px, "
              f"augment {result.recipe.augment}; per pipeline {s.warmup} warm-up steps, then {s.rounds} round"
              f"{'s' if s.rounds != 1 else ''} of {s.steps} timed steps, interleaved with the others "
              f"(median shown); {result.data['n_train_images']} training images, dataset fingerprint "
              f"{result.data['fingerprint']}")
    lines = [
        header,
        "",
        "| pipeline | images/s | ms/step | vs (a) | images/s per round |",
        "|---|---:|---:|---:|---|",
    ]
    ceiling = result.measurements["model_only"].images_per_s
    for name, label in PIPELINES.items():
        m = result.measurements[name]
        if name == "imagefolder":
            label += f", {s.workers} worker{'s' if s.workers != 1 else ''}"
        rounds = ", ".join(f"{ips:.1f}" for ips in m.rounds_images_per_s)
        lines.append(f"| {label} | {m.images_per_s:.1f} | {m.step_ms:.1f} | {m.images_per_s / ceiling:.2f} "
                     f"| {rounds} |")
    ratios = result.ratios
    goal = "" if result.device.type != "cuda" else (
        f" (goal on a GPU: at least {GOAL_CACHED_OVER_MODEL_ONLY}: "
        f"{'met' if ratios['cached_over_model_only'] >= GOAL_CACHED_OVER_MODEL_ONLY else 'NOT met'})")
    lines += ["", f"(b)/(a) = {ratios['cached_over_model_only']:.2f}{goal}",
              f"(b)/(c) = {ratios['cached_over_imagefolder']:.2f}"]
    return "\n".join(lines)
