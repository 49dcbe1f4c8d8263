"""The ``gmem`` command line: the demo, inspection of a store, import and export.

User errors (anything gmem raises as :class:`gmem.errors.GmemError`, unreadable files,
bad options) end the program with one ``error: ...`` line on stderr and exit code 2,
never a traceback: the group below runs click in non-standalone mode and reports them
itself, which also keeps typer's multi-line error panels out of scripts' stderr.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from gmem import __version__
from gmem.cli import commands, render
from gmem.cli.browser import browser_queries
from gmem.cli.demo import demo
from gmem.cli.embed import embed
from gmem.cli.mcp import mcp
from gmem.cli.settings import DEFAULT_STORE, Settings
from gmem.cli.upgrade import upgrade
from gmem.errors import GmemError

USER_ERROR = 2


def _fail(message: str, code: int = USER_ERROR) -> None:
    line = " ".join(render.printable(str(message)).split()) or "unknown error"
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()
    sys.exit(code)


# Options of the whole program that take a value. Given after a command they are moved in
# front of it, so `gmem recall "task" --store x.db` means `gmem --store x.db recall "task"`.
_GLOBAL_OPTIONS = ("--store", "-s", "--llm-base-url", "--llm-model", "--embedder")


# What Ctrl-C leaves behind, for the commands whose work is long and can be resumed. Each
# of them writes in transactions (a trajectory, a batch of them, a slice of a copy), so an
# interrupt loses at most the one in flight, and running the command again skips what
# is already there.
_RESUME = {
    "ingest": "every trajectory stored before it is kept; run the same command again to "
    "store the rest (the stored ones are skipped)",
    "migrate": "run the same command again to finish the copy (what is copied stays)",
    "upgrade": "run `gmem upgrade` again to finish; the store opens once it is current",
    "embed": "the tasks embedded before it keep their new vectors; run it again so that "
    "one model embeds them all",
}
INTERRUPTED = 130  # 128 + SIGINT, what shells report for a program stopped by Ctrl-C


def _command_at(args: Sequence[str]) -> int:
    """Index of the command's name in ``args``: past the global options and their values."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in _GLOBAL_OPTIONS else 1
    return i


class _Group(TyperGroup):
    def hoist(self, args: Sequence[str]) -> list[str]:
        """Move global options that follow the command in front of it. A command that
        declares an option of the same name (``demo --store``) keeps it; ``--`` ends
        the options, so a task text that looks like one stays where it is."""
        rest = list(args)
        i = _command_at(rest)
        if i >= len(rest) or (command := self.commands.get(rest[i])) is None:
            return rest
        own = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        head, tail, j = rest[: i + 1], [], i + 1
        moved: list[str] = []
        while j < len(rest):
            token = rest[j]
            if token == "--":
                tail.extend(rest[j:])
                break
            name = token.split("=", 1)[0] if token.startswith("--") else token
            if name in _GLOBAL_OPTIONS and name not in own:
                width = 1 if "=" in token else 2
                moved.extend(rest[j : j + width])
                j += width
                continue
            tail.append(token)
            j += 1
        return [*moved, *head, *tail]

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,  # noqa: ARG002  click's signature; gmem always exits itself
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        argv = self.hoist(sys.argv[1:] if args is None else args)
        try:
            code = super().main(
                argv,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except GmemError as exc:
            _fail(str(exc))
        except typer.Abort:
            _fail("aborted", 1)
        except typer.TyperException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `gmem`: help was shown
                sys.exit(0)
            _fail(exc.format_message(), exc.exit_code)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(f"{where}{exc.strerror or exc}")
        if code == INTERRUPTED:  # typer turns KeyboardInterrupt into this exit code
            at = _command_at(argv)
            hint = _RESUME.get(argv[at]) if at < len(argv) else None
            sys.stderr.write(f"interrupted{'; ' + hint if hint else ''}\n")
            sys.exit(code)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=_Group,
    name="gmem",
    help="gmem: hierarchical, evolving graph memory for LLM agent teams (after G-Memory).\n\n"
    "Start with: gmem demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gmem {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    store: Annotated[
        str,
        typer.Option(
            "--store",
            "-s",
            envvar="GMEM_STORE",
            help="Store: a file path, sqlite:///path or neo4j://host.",
        ),
    ] = DEFAULT_STORE,
    llm_base_url: Annotated[
        str | None,
        typer.Option(
            "--llm-base-url",
            envvar="GMEM_LLM_BASE_URL",
            help="OpenAI-compatible endpoint for memory reasoning (default: offline heuristic).",
        ),
    ] = None,
    llm_model: Annotated[
        str | None,
        typer.Option("--llm-model", envvar="GMEM_LLM_MODEL", help="Model name at that endpoint."),
    ] = None,
    embedder: Annotated[
        str | None,
        typer.Option(
            "--embedder",
            envvar="GMEM_EMBEDDER",
            help="Text embedder: minilm (default; minilm:numpy or minilm:sentence-transformers "
            "pins the runtime), hashing or hashing:<dim>, openai:<model> (with "
            "GMEM_EMBED_BASE_URL / GMEM_EMBED_API_KEY), or auto (MiniLM if installed, else "
            "hashing). A store keeps the dimension it was written with.",
        ),
    ] = None,
    version: Annotated[  # noqa: ARG001  read by its eager callback, typer still passes it
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """gmem: hierarchical, evolving graph memory for LLM agent teams (after G-Memory).

    Example: gmem demo   then   gmem --store .gmem/demo.db insights
    """
    source = ctx.get_parameter_source("store")
    given = source is not None and source.name != "DEFAULT"
    ctx.obj = Settings(store, llm_base_url or None, llm_model or None, embedder or None, given)


app.command()(demo)
app.command()(commands.recall)
app.command()(commands.ingest)
app.command()(commands.insights)
app.command()(commands.show)
app.command()(commands.stats)
app.command()(commands.export)
app.command()(commands.forget)
app.command()(commands.migrate)
app.command()(upgrade)
app.command()(mcp)
app.command()(embed)
app.command("browser-queries")(browser_queries)


def main() -> None:
    # Progress bars and colours are for terminals; CI logs get plain lines.
    if os.environ.get("CI") and "TERM" not in os.environ:
        os.environ.setdefault("NO_COLOR", "1")
    # The Neo4j driver logs connection failures; with no handler configured Python prints
    # them to stderr, in front of the one-line error the CLI gives for the same failure.
    logging.getLogger("neo4j").addHandler(logging.NullHandler())
    # Stores written before gmem refused lone surrogates may still hold some; printed as
    # \udXXX escapes (in JSON output exactly the JSON escape) instead of a traceback.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        app()
    except BrokenPipeError:  # `gmem export | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


__all__ = ["app", "main"]
