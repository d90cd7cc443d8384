"""Reorganize a four-class split folder (e.g. Testing/) as a two-class yes/no dataset.

    python scripts/make_yes_no_dataset.py ../shared/datasets/brain-tumor-mri/Testing /tmp/brain-yes-no
    brainbench run --suite quick --data ../shared/datasets/brain-tumor-mri --external /tmp/brain-yes-no
"""

import argparse

from bench.crossdata.yes_no import write_yes_no_copy

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("split_dir", help="a folder with one subfolder per class")
parser.add_argument("out_dir", help="new folder to create, with yes/ and no/")
args = parser.parse_args()
print(write_yes_no_copy(args.split_dir, args.out_dir))
