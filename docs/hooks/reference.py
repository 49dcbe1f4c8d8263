"""mkdocs hook: the CLI and configuration reference pages, generated from the code at build.

Written by hand, these pages would fall behind the first time someone adds a
``MemoryConfig`` field or a ``gmem`` command; generated, they cannot, and
``tests/test_docs_reference.py`` checks that nothing is left out. The hook walks typer's
click command tree and pydantic's field table itself, so the build needs no plugin and no
network.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `mkdocs build` from a checkout that is not installed
    sys.path.insert(0, str(ROOT))

CLI_PAGE = "reference/cli.md"
CONFIG_PAGE = "reference/configuration.md"
_SECTION = re.compile(r"^\s*#\s*-+\s*(?P<title>[^-].*?)\s*-*\s*$")
_FIELD = re.compile(r"^\s{4}(?P<name>[a-z_][a-z0-9_]*)\s*:")
_ENV_NAME = re.compile(r"\bGMEM_[A-Z0-9_]*[A-Z0-9]\b")
_ENV_SOURCES = ("gmem", "graph_store", "integrations")


def env_var(field: str) -> str:
    """The variable ``MemoryConfig.from_env`` reads for ``field``."""
    return f"GMEM_{field.upper()}"


def _cell(text: object) -> str:
    """One table cell: a single line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return f"`{text}`"


# --- CLI ------------------------------------------------------------------------------


def _commands(group: Any, ctx: Any, path: tuple[str, ...]) -> Iterator[tuple[Any, Any, str]]:
    """Every visible command under ``group``, depth first, with its context and full name."""
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub_ctx = command.context_class(command, info_name=name, parent=ctx)
        full = " ".join((*path, name))
        yield command, sub_ctx, full
        if hasattr(command, "list_commands"):
            yield from _commands(command, sub_ctx, (*path, name))


def _click_root() -> tuple[Any, Any]:
    import typer.main

    from gmem.cli import app

    root = typer.main.get_command(app)
    return root, root.context_class(root, info_name="gmem")


def cli_commands() -> list[str]:
    """Full names of every visible command, e.g. ``gmem recall``."""
    root, ctx = _click_root()
    return [full for _, _, full in _commands(root, ctx, ("gmem",))]


def _param_rows(params: list[Any]) -> list[str]:
    rows = []
    for param in params:
        if param.hidden or "--help" in param.opts:
            continue
        if param.param_type_name == "argument":
            names = f"`{param.name.upper()}`"
        else:
            names = ", ".join(f"`{opt}`" for opt in (*param.opts, *param.secondary_opts))
        default = ""
        if param.required:
            default = "required"
        elif param.default is not None and not callable(param.default):
            default = _code(param.default)
        env = f"`{param.envvar}`" if isinstance(param.envvar, str) else ""
        rows.append(f"| {names} | {default} | {env} | {_cell(param.help or '')} |")
    if not rows:
        return []
    return ["| option | default | variable | meaning |", "|---|---|---|---|", *rows, ""]


def _help_text(command: Any) -> list[str]:
    """The command's docstring as paragraphs; ``Example:`` lines become shell blocks."""
    lines: list[str] = []
    for paragraph in inspect.cleandoc(command.help or "").split("\n\n"):
        text = paragraph.strip()
        if text.startswith("Example:"):
            examples = [e.strip() for e in text.removeprefix("Example:").split("   ")]
            lines += ["```bash", *(e for e in examples if e), "```", ""]
        elif text:
            lines += [" ".join(text.split()), ""]
    return lines


def cli_reference() -> str:
    """Markdown for every command of the ``gmem`` CLI: usage, help, options, variables."""
    root, ctx = _click_root()
    out = [
        "# Command line reference",
        "",
        "Generated from the `gmem` command's own definition when the site is built, so it",
        "matches the installed version. Every command also answers `--help`. User errors",
        "print one `error: ...` line on stderr and exit with status 2.",
        "",
        "## gmem",
        "",
        "```text",
        root.get_usage(ctx),
        "```",
        "",
        *_help_text(root),
        "Options given before the command apply to every command:",
        "",
        *_param_rows(root.params),
    ]
    for command, sub_ctx, full in _commands(root, ctx, ("gmem",)):
        out += [f"## {full}", "", "```text", command.get_usage(sub_ctx), "```", ""]
        out += _help_text(command)
        out += _param_rows(command.params)
    return "\n".join(out) + "\n"


# --- configuration --------------------------------------------------------------------


def _sections(model: type) -> dict[str, str]:
    """Field name -> the ``# --- title ---`` comment above it in the class source."""
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    title = ""
    for line in source.splitlines():
        if match := _SECTION.match(line):
            title = match["title"]
        elif (match := _FIELD.match(line)) and title:
            found.setdefault(match["name"], title)
    return found


def _constraints(info: Any) -> str:
    words = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for item in info.metadata:
        for attr, sign in words.items():
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return ", ".join(parts)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _other_env_vars(known: set[str]) -> dict[str, list[str]]:
    """``GMEM_*`` names read elsewhere in the code (the store, the LLM, the servers)."""
    found: dict[str, set[str]] = {}
    for package in _ENV_SOURCES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix not in (".py", ".sh") or not path.is_file():
                continue
            for name in _ENV_NAME.findall(path.read_text(encoding="utf-8")):
                if name not in known:
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return {name: sorted(paths) for name, paths in sorted(found.items())}


def config_reference() -> str:
    """Markdown for every ``MemoryConfig`` field: type, default, bounds, variable, meaning."""
    from gmem.config import MemoryConfig

    sections = _sections(MemoryConfig)
    out = [
        "# Configuration reference",
        "",
        "Every constant that shapes gmem's behaviour is a field of `gmem.MemoryConfig`,",
        "generated into this page from the model when the site is built. Set a field by",
        "passing `MemoryConfig(field=value)` to `Memory`, or through its `GMEM_<FIELD>`",
        "environment variable (read by `MemoryConfig.from_env()`, which the command line",
        "uses): defaults, then variables, then explicit arguments. Tuple fields take",
        "comma-separated values, e.g. `GMEM_INSIGHT_WEIGHTS=0.5,0.2,0.3`. An invalid value",
        "fails at once with a one-line `ConfigError` naming the field.",
        "",
        "```python",
        "from gmem import Memory, MemoryConfig",
        "",
        'memory = Memory("team.db", config=MemoryConfig(hops=2, role_token_budget=400))',
        "```",
        "",
    ]
    current = None
    for name, info in MemoryConfig.model_fields.items():
        section = sections.get(name, "other")
        if section != current:
            if current is not None:
                out.append("")
            current = section
            out += [
                f"## {section[:1].upper()}{section[1:]}",
                "",
                "| field | type | default | bounds | variable | meaning |",
                "|---|---|---|---|---|---|",
            ]
        default = info.get_default(call_default_factory=True)
        out.append(
            f"| `{name}` | `{_cell(_type_name(info.annotation))}` | {_cell(_code(default))} "
            f"| {_constraints(info)} | `{env_var(name)}` | {_cell(info.description or '')} |"
        )
    known = {env_var(name) for name in MemoryConfig.model_fields}
    root, ctx = _click_root()
    cli_vars = [
        (param.envvar, param.help or "")
        for command in (root, *(c for c, _, _ in _commands(root, ctx, ("gmem",))))
        for param in command.params
        if isinstance(param.envvar, str)
    ]
    if cli_vars:
        out += [
            "",
            "## Variables of the command line",
            "",
            "Where the store is and which reasoner and embedder run are not `MemoryConfig`",
            "fields: they pick the parts memory is built from. The command line reads them",
            "(see the [command line reference](cli.md)); `Memory(...)` takes them as arguments.",
            "",
            "| variable | meaning |",
            "|---|---|",
        ]
        for envvar, help_text in dict(cli_vars).items():
            known.add(envvar)
            out.append(f"| `{envvar}` | {_cell(help_text)} |")
    others = _other_env_vars(known)
    if others:
        out += [
            "",
            "## Other variables",
            "",
            "Read where the part that needs them is built (the Neo4j connection and server",
            "script, the LLM and embedding endpoints). Found in the code at build time.",
            "",
            "| variable | appears in |",
            "|---|---|",
        ]
        for envvar, paths in others.items():
            out.append(f"| `{envvar}` | {', '.join(f'`{p}`' for p in paths)} |")
    return "\n".join(out) + "\n"


# --- the mkdocs hook ------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for page, render in ((CLI_PAGE, cli_reference), (CONFIG_PAGE, config_reference)):
        files.append(File.generated(config, page, content=render()))
    return files
