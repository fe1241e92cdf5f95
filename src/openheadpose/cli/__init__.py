"""The ``headpose`` command line: a thin shell over the Python API, one module per command.

Commands are loaded when they are called (or listed), and each imports its heavy
dependencies only when it runs, so ``headpose --help`` starts fast and no
inference command ever imports PyTorch.
"""

from __future__ import annotations

import importlib

import click

from openheadpose.cli._common import CONTEXT

#: command name -> "module:function" (module under openheadpose.cli).
COMMANDS = {
    "predict": "predict:predict",
    "interact": "interact:interact",
    "evaluate": "evaluate:evaluate",
    "models": "models:models",
    "train": "train:train",
    "average": "train:average",
    "export": "convert:export",
    "convert": "convert:convert",
    "synth": "synth:synth",
    "serve": "serve:serve",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported when first needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(f"openheadpose.cli.{module}"), attr)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(package_name="openheadpose")
def cli() -> None:
    """openheadpose: find every head in photos, folders, videos and camera streams and say which way it is turned.

    \b
    Examples:
      headpose predict example:astronaut --save out --json -
      headpose predict photos/ --json heads.jsonl --csv heads.csv
      headpose predict clip.mp4 --save out --draw cube
      headpose predict 0 --show            # webcam 0
      headpose models                      # the stages you can choose
    """
    from openheadpose.io.noise import divert_native_stderr, quiet_libraries

    quiet_libraries()  # stderr carries the tool's own lines; --verbose gives the libraries' back
    if click.get_current_context().invoked_subcommand in ("predict", "interact", "evaluate"):
        divert_native_stderr()  # also what C code prints on other threads (the folder stream decodes on one)


def main() -> None:
    cli(prog_name="headpose")


if __name__ == "__main__":
    main()
