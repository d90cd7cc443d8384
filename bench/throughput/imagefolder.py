"""(c) The usual way: torchvision ImageFolder + DataLoader, decoding and augmenting each JPEG every epoch.

This is how the source studies trained: PIL opens and decodes each file, per-image torchvision
transforms resize and augment it, DataLoader workers batch the results. The transforms mirror the
entry's augmentation policy, so (b) and (c) do comparable work per image. Workers persist across
epochs (`persistent_workers`), which is the kinder setting for this baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import ImageFolder

from bench.data.augment import CROP_RATIO, CROP_SCALE, AugmentPolicy
from bench.data.dataset import LoadedDataset
from bench.data.declaration import Declaration, default_labels
from bench.data.discover import is_hidden
from bench.data.labels import LabelSet
from bench.errors import OptionError
from bench.throughput.common import Pipeline, ThroughputSettings, Trainer

FolderClass = Callable[[str], str | None]  # a class folder's name -> its class (None: not a class folder)


class TrainingFolder(ImageFolder):
    """ImageFolder whose class indices are the dataset's labels, restricted to the files given: the
    training images the cache holds too. Hidden folders are ignored.

    labels: the dataset's label set (default: the shipped default declaration's four classes);
    folder_class: what a class folder's name means (default: `labels.normalize`, any accepted
    spelling); a declaration's own rule (`declared_folder_class`) handles folder patterns such as
    44c's "Astrocitoma T1", several folders then sharing one class.
    """

    def __init__(self, root: Path, files: set[str], labels: LabelSet | None = None,
                 folder_class: FolderClass | None = None, **kwargs):
        self.labels = labels or default_labels()
        self.folder_class = folder_class or self.labels.normalize
        super().__init__(str(root), is_valid_file=lambda path: str(Path(path).resolve()) in files, **kwargs)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        folders = sorted(p.name for p in Path(directory).iterdir() if p.is_dir() and not is_hidden(p))
        meant = {name: self.folder_class(name) for name in folders}
        class_to_idx = {name: self.labels.index(label) for name, label in meant.items() if label is not None}
        return list(class_to_idx), class_to_idx


def declared_folder_class(declaration: Declaration) -> FolderClass:
    """The class folder rule of a declaration, skipped folders meaning no class."""
    return lambda name: None if declaration.skips_folder(name) else declaration.folder_class(name)


def training_folder(data: LoadedDataset) -> tuple[Path, set[str]]:
    """The folder ImageFolder walks (`Training/` in the Kaggle layout, the root of a flat one) and the
    absolute paths of the training images the decoded cache holds (unreadable ones left out)."""
    index = data.index
    if index.layout == "metadata":
        raise OptionError(f"the ImageFolder pipeline needs class folders, but {index.root} lists its images in a "
                          f"metadata table ({index.declaration.where})")
    root = index.root / Path(index.train[0].rel).parts[0] if index.layout == "kaggle" else index.root
    unreadable = {item["path"] for item in data.decoded.skipped}
    files = {str(sample.path.resolve()) for sample in index.train if sample.rel not in unreadable}
    return root, files


def imagefolder_transform(size: int, in_channels: int, mean, std, policy: AugmentPolicy) -> transforms.Compose:
    """Per-image torchvision transforms doing what `policy` does in batch on the cache."""
    steps: list = [transforms.Grayscale(num_output_channels=1)] if in_channels == 1 else []  # loader gives RGB
    if policy.random_resized_crop:
        steps.append(transforms.RandomResizedCrop(size, scale=CROP_SCALE, ratio=CROP_RATIO, antialias=True))
    else:
        steps.append(transforms.Resize((size, size), antialias=True))
    if policy.flip:
        steps.append(transforms.RandomHorizontalFlip())
    if policy.max_rotation_deg or policy.max_translate:
        steps.append(transforms.RandomAffine(degrees=policy.max_rotation_deg,
                                             translate=(policy.max_translate, policy.max_translate),
                                             interpolation=transforms.InterpolationMode.BILINEAR))
    if policy.autoaugment:
        steps.append(transforms.AutoAugment(transforms.AutoAugmentPolicy.IMAGENET))
    if policy.brightness or policy.contrast:
        steps.append(transforms.ColorJitter(brightness=policy.brightness, contrast=policy.contrast))
    steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    return transforms.Compose(steps)


def _endless(loader: DataLoader) -> Iterator:
    while True:
        yield from loader


def imagefolder_pipeline(trainer: Trainer, data: LoadedDataset, in_channels: int, mean, std,
                         policy: AugmentPolicy, settings: ThroughputSettings) -> Pipeline:
    device = trainer.device
    root, files = training_folder(data)
    dataset = TrainingFolder(root, files, data.index.labels, declared_folder_class(data.index.declaration),
                             transform=imagefolder_transform(settings.input_size, in_channels, mean, std, policy))
    loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, drop_last=True,
                        num_workers=settings.workers, pin_memory=device.type == "cuda",
                        persistent_workers=settings.workers > 0,
                        generator=torch.Generator().manual_seed(settings.seed))
    batches = _endless(loader)
    memory_format = torch.channels_last if trainer.channels_last else torch.contiguous_format

    def step() -> None:
        x, y = next(batches)
        x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        trainer.step(x, y.to(device, non_blocking=True))

    workers = f"{settings.workers} worker{'s' if settings.workers != 1 else ''}"
    # Closing the generator lets the DataLoader iterator, and with it its worker processes, go.
    return Pipeline("imagefolder", f"(c) ImageFolder, {workers}", step, close=batches.close)
