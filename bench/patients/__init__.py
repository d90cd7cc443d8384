"""Patient recovery: which patient each image of a dataset shows, and groups for the images without one.

The Kaggle brain tumour dataset carries no patient ids, and its official test split shares
patients with its training split. Most of its tumour slices are figshare-cheng slices (resized,
some mirrored), whose patient ids are known, so matching pixel content against that reference
recovers the patient (recover.py); the images no reference slice matches are grouped by
near-duplicate clusters (groups.py). analysis.py runs both, cached by the fingerprints of both
datasets; report.py, histogram.py and table.py write the results; shipped.py reads the derived map
brainbench ships, so a user without the reference gets the same patients by content hash.
"""

from bench.patients.analysis import analyse_patients
from bench.patients.reference import Reference, read_reference
from bench.patients.result import PatientAnalysis
from bench.patients.shipped import shipped_patients

__all__ = ["PatientAnalysis", "Reference", "analyse_patients", "read_reference", "shipped_patients"]
