"""The one exception type for user errors (bad input), as opposed to bugs.

Command-line entry points turn a :class:`FoodcastError` into a single line on
stderr and a non-zero exit; any other exception is a bug and keeps its traceback.
"""


class FoodcastError(Exception):
    """A problem with the user's input: bad weeks, missing data, malformed file, bad run id."""
