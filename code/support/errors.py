"""The errors dltutorials raises for bad input, each with a one-line message.

The scripts turn these into ``error: <message>`` on stderr and a non-zero
exit status (see :func:`dltutorials.support.command_line.run`); anything else is a bug
and keeps its traceback.
"""


class TutorialError(Exception):
    """Base class: a problem with the user's input, not with the code."""


class DatasetError(TutorialError, ValueError):
    """A dataset that is missing, unreadable, corrupt or of the wrong shape."""


class DownloadError(DatasetError):
    """A dataset that could not be fetched (offline, mirror down, bad checksum)."""


class ModelFileError(TutorialError, ValueError):
    """A saved-parameters file that is missing, unreadable or made for another model."""


class OutputFolderError(TutorialError, OSError):
    """An output folder that cannot be created or written to."""


class HyperparameterError(TutorialError, ValueError):
    """A hyper-parameter outside the range where it means something."""


class DivergenceError(TutorialError, ArithmeticError):
    """Training produced a cost or parameter that is not a finite number."""
