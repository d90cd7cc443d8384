"""Errors a user can act on. The CLI prints their message and exits with status 2, no traceback."""


class BrainbenchError(Exception):
    """Base class for every error whose message is meant for the user."""


class DatasetError(BrainbenchError):
    """The dataset folder cannot be used as given (layout, class names, empty splits)."""


class ImageDecodeError(BrainbenchError):
    """One image file cannot be read; callers skip it with a warning naming the file."""


class CheckpointError(BrainbenchError):
    """A stored checkpoint is missing, does not match its key, or is corrupted."""


class OptionError(BrainbenchError):
    """A command option has a value the command cannot use; the message names the option and value."""


class DistributedError(BrainbenchError):
    """A multi-process (torchrun) training cannot start or did not finish."""


class TrainingDivergedError(BrainbenchError):
    """Training produced a non-finite loss (nan or inf); nothing was stored from it."""


class CheckpointBusyError(BrainbenchError):
    """Another process is training the same checkpoint right now: its lock file in the store is held."""


class CacheError(BrainbenchError):
    """A cache (decoded images, audit pictures) cannot be written: full disk, read-only folder."""
