"""The `aidsafe` command. Each subcommand parses options and calls one library function.

The app is assembled once, at import: one typer sub-app per command group (`generate.app` merges
generate/validate/check/graph into the root, `report.app` report/show/schema; `eval`, `pairs`, `predict`
and `train` are groups). Subcommand modules import heavy libraries (langgraph, torch, trl) inside
their functions so that `aidsafe --help` and the first teacher call start quickly.
"""

from __future__ import annotations

import signal
import sys
import threading
from functools import cache
from typing import Annotated, Any

import typer

from aidsafe.cli import evaluate, export, generate, pairs, predict, report, train
from aidsafe.errors import AidsafeError
from aidsafe.teacher.wire import hide_credentials
from aidsafe.terminal import printable

__all__ = ["app", "main"]

app = typer.Typer(
    name="aidsafe",
    help="Safety-reasoning training data from deliberating LLM agents; guard recipes; training; evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(generate.app)
app.add_typer(export.app)
app.add_typer(report.app)
app.add_typer(evaluate.app, name="eval")
app.add_typer(predict.app, name="predict")
app.add_typer(train.app, name="train")
app.add_typer(pairs.app, name="pairs")

_INTERRUPTED = 130


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, help="Print the version and exit.", callback=_print_version)
    ] = False,
) -> None:
    pass  # only --version; the help is the app's


@cache
def _command() -> Any:
    """The click command behind `app`, converted once per process (tests call main() many times)."""
    command = typer.main.get_command(app)
    _plain_help(command)
    return command


# What --help shows for a value of each type (typer's own labels are Python types: <str>, <list[str]>).
_METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "int range": "INTEGER", "float range": "NUMBER",
             "path": "PATH", "file": "FILE", "directory": "DIR", "list[str]": "TEXT", "list[path]": "PATH"}  # fmt: skip


def _plain_help(command: Any) -> None:
    """Every command's help in click's plain layout, with value names instead of Python types.

    Typer's rich panels squeeze option names to fit an 80-column terminal (`--near-dup-thr…`);
    click's layout never cuts an option name and wraps only the help text. A value is named by
    its metavar (`RECIPE`, `OWNER/NAME`), else by its kind (TEXT, INTEGER, PATH); a flag by nothing.
    A group lists each command with the whole first paragraph of its help (click would cut it to
    one line with "...").
    """
    command.rich_markup_mode = None
    ctx = typer.Context(command, info_name=command.name)
    for param in command.params:
        if param.param_type_name == "argument":
            param.metavar = param.metavar or param.name.upper()
            param.display_type_rich = lambda ctx: None  # the name says it
        elif param.metavar is None and not param.is_flag:
            label = param.display_type(ctx).strip("<>")
            param.metavar = label if "|" in label else _METAVARS.get(label, label.upper())
    for sub in getattr(command, "commands", {}).values():
        if sub.help and not sub.short_help:  # a group's list shows the whole first paragraph, wrapped, not cut
            sub.short_help = " ".join(sub.help.split("\n\n")[0].split())
        _plain_help(sub)


def _print_version(value: bool) -> None:
    if value:
        from aidsafe import __version__

        typer.echo(f"aidsafe {__version__}")
        raise typer.Exit()


def _terminate_like_ctrl_c(signum: int, frame: Any) -> None:
    """SIGTERM (Slurm preemption, `ray stop`, `kill`, a container's stop) does what Ctrl-C does:
    whatever handles SIGINT now runs (inside asyncio.run, the runner's handler, which cancels the
    run so that finished records are kept and in-flight samples store their checkpoints;
    elsewhere a KeyboardInterrupt). Otherwise a stop would cost what kill -9 costs."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one red line on stderr and exit code 2, never a traceback.

    Usage errors (missing argument, bad option value, unknown command; also no arguments at all,
    which prints the help) are shown as click shows them, exit code 2.
    """
    from rich.console import Console

    stderr = Console(stderr=True, highlight=False, soft_wrap=True)
    in_main_thread = threading.current_thread() is threading.main_thread()  # signals need it
    previous = signal.signal(signal.SIGTERM, _terminate_like_ctrl_c) if in_main_thread else None
    try:
        code = _command().main(args=argv, prog_name="aidsafe", standalone_mode=False)
    except AidsafeError as exc:
        _print_error(stderr, exc)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        code = _INTERRUPTED
    except typer.TyperException as exc:
        # typer >= 0.29 raises its bundled click's exceptions (subclasses of TyperException),
        # not click's own: with standalone_mode=False they arrive here for us to show.
        show = getattr(exc, "show", None)
        if show is None:  # a TyperException that is not a click usage/file error
            _print_error(stderr, exc)
            sys.exit(2)
        show()
        sys.exit(exc.exit_code)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    if code == _INTERRUPTED:  # typer turns Ctrl-C into this exit code
        stderr.print("interrupted; rerun the same command to resume")
    if isinstance(code, int) and code:
        sys.exit(code)


def _print_error(console: Any, exc: BaseException) -> None:
    """`error: MESSAGE` in one line. The message quotes ids, paths, URLs and server replies: it goes
    to rich as Text (never markup), with its control characters shown escaped (aidsafe.terminal)
    and no URL's password."""
    from rich.text import Text

    console.print(Text.assemble(("error:", "red"), " ", printable(hide_credentials(str(exc)))))
