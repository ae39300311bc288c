"""ruledger: an accounts-receivable and collections engine; rules compiled to SQL."""

__version__ = "0.1.0"
