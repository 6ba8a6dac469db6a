"""The data: weekly batch files of order lines, the rule of complete weeks, the importer of raw
exports and the generator of the default dataset.

``batch_files`` and ``coverage`` only list files and peek at their first lines (no pandas);
``orders`` reads and validates their content, ``chain`` turns it into the chain's hourly cash-in, or each restaurant's.
"""
