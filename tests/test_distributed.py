"""Multi-process (DDP) training: two gloo processes on the CPU match one process."""

import pytest
import torch

import zoo
from bench.cli import build_parser
from bench.data.augment import augment_batch, policy_named
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.errors import DistributedError
from bench.train.distributed import Ranks, local_batch_size
from bench.train.settings import TrainSettings
from bench.train.store import RESUME, CheckpointStore
from bench.train.train_or_load import train_or_load

CPU = torch.device("cpu")


def test_sharded_augmentation_equals_the_whole_batch():
    # Each rank augments its slice of the global batch exactly as one process augments that slice.
    images = torch.rand(8, 1, 16, 16)
    policy = policy_named("basic", random_resized_crop=True)
    whole = augment_batch(images, policy, torch.Generator().manual_seed(3))
    parts = [augment_batch(images[start:start + 4], policy, torch.Generator().manual_seed(3), shard=(start, 8))
             for start in (0, 4)]
    assert torch.equal(torch.cat(parts), whole)


def test_global_batch_must_split_evenly():
    assert local_batch_size(32, Ranks(0, 4)) == 8
    with pytest.raises(DistributedError, match="batch size 30 does not split evenly over 4"):
        local_batch_size(30, Ranks(1, 4))


def test_nproc_and_compile_options():
    args = build_parser().parse_args(["run", "--nproc", "2", "--compile"])
    assert args.nproc == 2 and args.compile_step
    assert build_parser().parse_args(["train", "cnn0.scratch"]).nproc == 1
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "cnn0.scratch", "--nproc", "0"])


def test_torchrun_without_a_process_group_is_refused(kaggle_dataset, tmp_path, monkeypatch):
    # Every process would train alone and all would write the same checkpoint.
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    entry = zoo.get("cnn0.scratch")
    data = load_dataset(kaggle_dataset, Preprocessing(32, entry.in_channels), tmp_path / "cache")
    with pytest.raises(DistributedError, match="--nproc N"):
        train_or_load(entry, entry.recipe.with_overrides(input_size=32), data, CheckpointStore(tmp_path / "s"), CPU)


@pytest.mark.slow
def test_two_process_gloo_training_matches_one_process(embedded_dataset, tmp_path):
    # cnn0 has no BatchNorm, whose statistics would be per rank on the CPU (SyncBatchNorm is
    # GPU-only); dropout 0 because dropout masks are drawn per rank. Everything else (shuffling,
    # basic augmentation, Adam, cosine schedule) must agree: DDP's averaged gradients over two
    # halves of a batch equal the gradient over the whole batch, up to float summation order.
    # lr 1e-2 for 3 epochs gets cnn0 well above chance, so the weights have really moved.
    entry = zoo.get("cnn0.scratch")
    recipe = entry.recipe.with_overrides(input_size=32, epochs=3, batch_size=32, lr=1e-2, dropout=0.0)
    data = load_dataset(embedded_dataset, Preprocessing(32, entry.in_channels), tmp_path / "cache")
    one = train_or_load(entry, recipe, data, CheckpointStore(tmp_path / "one"), CPU, progress=False)
    two = train_or_load(entry, recipe, data, CheckpointStore(tmp_path / "two"), CPU, progress=False,
                        settings=TrainSettings(nproc=2))

    assert not two.loaded and two.manifest["processes"] == 2 and one.manifest["processes"] == 1
    assert two.checkpoint_dir.name == one.checkpoint_dir.name  # the same store key
    assert not (two.checkpoint_dir / RESUME).exists()
    assert two.manifest["best_epoch"] == one.manifest["best_epoch"]
    assert two.manifest["best_val"]["acc"] == pytest.approx(one.manifest["best_val"]["acc"], abs=1e-6)
    assert two.manifest["best_val"]["loss"] == pytest.approx(one.manifest["best_val"]["loss"], rel=1e-4)
    # Float summation order differs (two half-batch means, then an all-reduce): the two runs may
    # drift apart by a little, but by far less than training moved the weights (about 3e-4 here).
    torch.manual_seed(recipe.seed)
    initial = entry.build(input_size=32, dropout=0.0).state_dict()
    for name, weight in one.model.state_dict().items():
        moved = (weight - initial[name]).norm()
        assert moved > 0.01, name
        assert (two.model.state_dict()[name] - weight).norm() <= 1e-3 * moved, name
    # Stored once, by rank 0, and found again by an ordinary one-process call.
    assert train_or_load(entry, recipe, data, CheckpointStore(tmp_path / "two"), CPU, progress=False).loaded
