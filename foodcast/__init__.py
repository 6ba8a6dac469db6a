"""foodcast: weekly cash-in forecast for a chain of takeaway restaurants."""

__version__ = "0.1.0"
