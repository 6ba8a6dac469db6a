"""The Spark engine (``-P engine=spark``): the per-restaurant work of the stages on Apache Spark.

Nothing here forecasts. The core's per-restaurant functions hand their work to
``foodcast.core.pool.fan_out``; with ``engine=spark`` a stage sets the core's mapper to
:func:`foodcast.spark.engine.spark_map`, which ships each item (a restaurant's history, a fit's
rows) pickled in a DataFrame keyed by item, runs the same function on each with
``groupBy(...).applyInPandas`` and collects the pickled results in the items' order. So both
engines run the same code on the same inputs, and give the same numbers.

``pyspark`` is the package's ``spark`` extra: only ``engine=spark`` imports it.
"""
