"""MovieLens loading, enrichment with every modality, splits and coverage."""

from movierec.data.dataset import Dataset, LoadReport, TrailerFeatures
from movierec.data.errors import DataError, DataFormatError
from movierec.data.loading import load_dataset

__all__ = ["Dataset", "LoadReport", "TrailerFeatures", "DataError", "DataFormatError", "load_dataset"]
