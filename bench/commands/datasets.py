"""`brainbench datasets [--data DIR]`: the declarations brainbench ships, or what it reads in a folder.

Without --data: each shipped declaration, its classes and the protocols it offers. With --data:
which declaration the folder is read with (its own brainbench-dataset.toml, the shipped one its
layout matches, or --declaration), its images per class, its groups, and each protocol's folds, so
a researcher bringing a dataset sees what brainbench made of it before anything trains.
"""

from __future__ import annotations

import argparse
from collections import Counter

from tabulate import tabulate

from bench.commands.train import add_declaration_option
from bench.data.declaration import shipped_declaration, shipped_names
from bench.data.discover import discover
from bench.data.fingerprint import dataset_fingerprint
from bench.data.protocols import DERIVED_GROUPS, resolve_groups
from bench.leakage.index import DEFAULT_CLEAN_THRESHOLD
from bench.paths import decoded_cache_dir
from bench.runner.protocol_views import protocol_views


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "datasets", help="list the dataset declarations, or show how a folder is read",
        description="Without --data: the dataset declarations brainbench ships (label set, files, protocols). "
                    "With --data DIR: the declaration DIR is read with, its images per class, and the folds "
                    "of each protocol it offers.")
    parser.add_argument("--data", help="a dataset folder to inspect")
    add_declaration_option(parser)
    parser.add_argument("--cache", help="cache folder (duplicate groups are found from the audit's pictures)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.data is None:
        rows = []
        for name in shipped_names():
            d = shipped_declaration(name)
            rows.append([d.name, len(d.labels), d.images_from, ", ".join(p.name for p in d.protocols), d.description])
        print(tabulate(rows, headers=["declaration", "classes", "images from", "protocols (first: default)",
                                      "description"], maxcolwidths=[None, None, None, 40, 50]))
        return 0
    # Everything is computed before anything is printed: a bad fold column ends in its one error line.
    index = discover(args.data, args.declaration)
    declaration = index.declaration
    counts = Counter(index.labels.names[s.label] for s in index.samples)
    groups = {s.group for s in index.samples if s.group is not None}
    fingerprint = dataset_fingerprint(index)
    rows = []
    for spec in declaration.protocols:
        if resolve_groups(spec, declaration.group_column) in DERIVED_GROUPS:
            rows.append([spec.name, spec.kind, "groups found from the images at run time", spec.description])
            continue
        folds = protocol_views(index, spec, fingerprint, decoded_cache_dir(args.cache), DEFAULT_CLEAN_THRESHOLD)
        sizes = " / ".join(f"{len(v.fold.train)}+{len(v.fold.test)}" for v in folds)
        rows.append([spec.name, spec.kind, f"train+test: {sizes}", spec.description])
    print(f"{index.root}: read with declaration {declaration.name} ({declaration.where}), layout {index.layout}")
    print(tabulate([[c, counts.get(c, 0)] for c in index.labels.names], headers=["class", "images"]))
    if groups:
        print(f"{len(groups)} groups ({declaration.group_column})")
    print(f"fingerprint {fingerprint}")
    print(tabulate(rows, headers=["protocol", "kind", "sides", "description"], maxcolwidths=[None, None, 50, 50]))
    return 0
