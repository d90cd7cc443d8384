"""Training throughput: the model alone, brainbench's cached pipeline, and ImageFolder + DataLoader.

One file per measured pipeline (`model_only`, `cached`, `imagefolder`); `measure` runs all three
and compares them; `common` holds the settings, the model under training and the timer.
"""

from bench.throughput.common import Measurement, ThroughputSettings, default_workers
from bench.throughput.measure import ThroughputResult, markdown_table, measure_train_throughput

__all__ = ["Measurement", "ThroughputResult", "ThroughputSettings", "default_workers", "markdown_table",
           "measure_train_throughput"]
