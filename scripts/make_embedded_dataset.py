"""Rebuild the mini dataset embedded in the package from a full copy of the Kaggle dataset.

    python scripts/make_embedded_dataset.py ../shared/datasets/brain-tumor-mri

Files are copied byte for byte (no re-encoding), so the mini dataset is a true subset and its
MANIFEST.csv names each file's source path and sha256. Selection is seeded and stratified.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.data.declaration import DEFAULT_DECLARATION, default_labels  # noqa: E402
from bench.data.discover import discover  # noqa: E402
from bench.data.fingerprint import file_sha256  # noqa: E402
from bench.paths import EMBEDDED_DATASET  # noqa: E402

PER_CLASS = {"Training": 80, "Testing": 20}
SEED = 0
MAX_BYTES = 5_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    args = parser.parse_args()
    # The embedded mini dataset is a subset of the Kaggle four-class dataset: read the source with
    # the shipped default declaration whatever the folder holds, so that the classes are those four.
    labels = default_labels()
    index = discover(args.source, DEFAULT_DECLARATION)
    rng = np.random.default_rng(SEED)
    if EMBEDDED_DATASET.exists():
        shutil.rmtree(EMBEDDED_DATASET)
    rows = []
    for split, samples in (("Training", index.train), ("Testing", index.test)):
        for label, name in enumerate(labels.names):
            members = [s for s in samples if s.label == label]
            chosen = sorted(rng.choice(len(members), PER_CLASS[split], replace=False))
            for i in chosen:
                sample = members[i]
                target = EMBEDDED_DATASET / split / name / sample.path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(sample.path, target)
                rows.append([split, name, sample.path.name, sample.rel, file_sha256(target)])
    with open(EMBEDDED_DATASET / "MANIFEST.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["split", "class", "file", "source_path", "sha256"])
        writer.writerows(rows)
    total = sum(p.stat().st_size for p in EMBEDDED_DATASET.rglob("*") if p.is_file())
    print(f"wrote {len(rows)} images ({total / 1e6:.2f} MB) to {EMBEDDED_DATASET}")
    if total > MAX_BYTES:
        print(f"error: the embedded dataset must stay under {MAX_BYTES / 1e6:.0f} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
