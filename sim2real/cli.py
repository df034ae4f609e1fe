"""The ``sim2real`` command line (click). Library code returns data; this module prints."""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import Sim2RealError, one_line


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sim2real")
def cli():
    """Labelled laparoscopy renders, made realistic by unpaired translation."""


def _register_commands() -> None:
    # Each domain keeps its commands beside its code; heavy imports (bpy, torch) stay
    # inside the command functions so `sim2real --help` is instant.
    from .rendering.cli import commands as render_commands
    from .translate.cli import commands as translate_commands
    from .segment.cli import commands as segment_commands
    from .addon_cli import commands as addon_commands
    from .dataset.cli import commands as dataset_commands

    for cmd in (*render_commands, *dataset_commands, *translate_commands, *segment_commands, *addon_commands):
        cli.add_command(cmd)


_register_commands()


def main(argv=None) -> None:
    """Entry point: user errors print one line and exit 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="sim2real", standalone_mode=False)
    except Sim2RealError as exc:
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
