"""Command line of foodcast: ``foodcast generate`` and ``foodcast import``.

Also run as ``python -m foodcast``. The heavy modules (numpy, pandas) are imported inside the
commands so that ``--help`` answers at once.
"""

from __future__ import annotations

import functools

import click

LAYOUT_HELP = (
    "Batches live in DATA_DIR/<restaurant>/week_NNN.csv.gz, one file per restaurant per "
    "week. Week 1 starts on Monday 2014-12-29; week N covers Monday 00:00 to Sunday 23:59 "
    "of the seven days starting 2014-12-29 + 7*(N-1) days."
)


def _user_errors(command):
    """Turn a FoodcastError into one line on stderr and exit status 1, without traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from foodcast.errors import FoodcastError

        try:
            return command(*args, **kwargs)
        except FoodcastError as exc:
            # Some messages quote a parser error that spans lines; keep to one line.
            raise click.ClickException(" ".join(str(exc).split())) from None

    return wrapper


def _default_data_dir() -> str:
    from foodcast.settings import data_dir

    return data_dir()


def _data_dir_option(command):
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Root of the batches (default: $FOODCAST_DATA_DIR, else data/ in the repository).",
    )(command)


def _size_text(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


@click.group(help=f"Weekly cash-in forecast of a chain of takeaway restaurants.\n\n{LAYOUT_HELP}")
def cli():
    """Entry point of the ``foodcast`` console script."""


@cli.command(
    short_help="Write the default synthetic dataset (2 restaurants, weeks 1-260).",
    help=(
        "Write the default synthetic dataset: two London Indian takeaways, weeks 1-260 "
        "(2014-12-29 to 2019-12-22), about 35 and 52 orders a day. The same seed gives "
        f"byte-identical files; existing batches of those weeks are overwritten.\n\n{LAYOUT_HELP}"
    ),
)
@_data_dir_option
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Seed of the random streams (default: the seed of the committed dataset).",
)
@_user_errors
def generate(data_dir, seed):
    """Generate the default dataset."""
    from foodcast.infrastructure import generator

    root = data_dir or _default_data_dir()
    seed = generator.DEFAULT_SEED if seed is None else seed
    files = generator.generate(root, seed=seed)
    size = sum(path.stat().st_size for path in files)
    click.echo(f"wrote {len(files)} files ({_size_text(size)}) under {root} with seed {seed}")


@cli.command(
    name="import",
    short_help="Import a raw order export as weekly batches.",
    help=(
        "Import ORDERS, a restaurant's raw order export (CSV, optionally .gz), as weekly "
        "batches of restaurant NAME. Columns: 'Order Number' (or 'Order ID'), 'Order Date' "
        "(ISO 'YYYY-MM-DD HH:MM:SS' or day-first 'DD/MM/YYYY HH:MM'), 'Item Name', "
        "'Quantity', 'Product Price', 'Total products'; UTF-8 text. The whole file, and every "
        "batch the restaurant already has, is checked before anything is written: values "
        "present and plausible (finite, not negative, at most 1000 items on a line, 1000 a "
        "unit price, 10000 items in an order), each order id naming one order (one date). A "
        "week that already has a batch is merged with it, so importing the same file twice "
        f"changes nothing.\n\n{LAYOUT_HELP}"
    ),
)
@click.argument("orders", type=click.Path(dir_okay=False))
@click.option(
    "--restaurant",
    required=True,
    metavar="NAME",
    help="Restaurant (directory) name: letters, digits, '_', '.', '-'.",
)
@_data_dir_option
@_user_errors
def import_command(orders, restaurant, data_dir):
    """Import a raw export."""
    from foodcast.domain.weeks import describe_weeks
    from foodcast.infrastructure.batches import BATCH_PATTERN
    from foodcast.infrastructure.importer import import_export

    root = data_dir or _default_data_dir()
    written = import_export(orders, restaurant, root)
    weeks = [int(BATCH_PATTERN.match(path.name).group(1)) for path in written]
    click.echo(
        f"{restaurant}: wrote {len(written)} weekly batches "
        f"(weeks {describe_weeks(weeks)}) under {root}"
    )


if __name__ == "__main__":
    cli()
