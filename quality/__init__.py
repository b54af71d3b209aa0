"""Input contract, importers of public formats, Great Expectations suites and the quality gate."""

from quality.dataset import Dataset
from quality.errors import DataQualityError, DataWarning, RuleFailure

__all__ = ["Dataset", "DataQualityError", "DataWarning", "RuleFailure", "open_dataset"]


def __getattr__(name):  # keep `import quality` light: GX loads only when the gate is used
    if name == "open_dataset":
        from quality.gate import open_dataset

        return open_dataset
    raise AttributeError(name)
