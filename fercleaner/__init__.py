"""fercleaner: find and fix wrong or ambiguous labels in facial-expression datasets."""

__version__ = "0.1.0"
