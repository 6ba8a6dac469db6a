"""The tutorial's ``etl``: re-exported from :mod:`foodcast.data.chain`."""

from foodcast.data.chain import etl, read_chain

__all__ = ["etl", "read_chain"]
