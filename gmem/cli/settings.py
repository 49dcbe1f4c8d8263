"""Options every command shares, and how a command turns them into a :class:`Memory`.

Opening memory is deferred to the command that needs it, so that ``--help`` and
``--version`` answer without loading the embedder or the OpenAI client.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gmem.errors import NotFoundError
from graph_store.url import parse_store_url

if TYPE_CHECKING:
    from gmem.memory import Memory

DEFAULT_STORE = "./.gmem/memory.db"
DEFAULT_DEMO_STORE = "./.gmem/demo.db"  # the demo's own file, so it never meets a user's memory


@dataclass(frozen=True)
class Settings:
    store: str = DEFAULT_STORE
    llm_base_url: str | None = None
    llm_model: str | None = None
    embedder: str | None = None
    store_given: bool = False  # --store or GMEM_STORE was set, not the default


def settings(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    obj = root.obj
    return obj if isinstance(obj, Settings) else Settings()


def store_file(url: str) -> Path | None:
    """The file behind an embedded store URL; None for servers and ``:memory:``."""
    return parse_store_url(url).file


def open_memory(s: Settings, *, must_exist: bool = True, store: str | None = None) -> Memory:
    """A Memory on the configured store; reading commands refuse to create a new file,
    since an empty store silently answering "nothing found" hides a wrong ``--store``."""
    from gmem.llm import make_llm
    from gmem.memory import Memory

    url = store or s.store
    path = store_file(url)
    if must_exist and path is not None and not path.exists():
        if not s.store_given and store is None and Path(DEFAULT_DEMO_STORE).is_file():
            raise NotFoundError(
                f"no gmem store at {path}; the demo's memory is in {DEFAULT_DEMO_STORE}: "
                f"add --store {DEFAULT_DEMO_STORE}"
            )
        raise NotFoundError(
            f"no gmem store at {path}; pass --store, or create one with `gmem ingest` or "
            "`gmem demo`"
        )
    if path is not None and path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    from gmem.config import MemoryConfig
    from gmem.embedding import make_embedder

    config = MemoryConfig.from_env()
    embedder = make_embedder(s.embedder)
    llm = make_llm(config, base_url=s.llm_base_url, model=s.llm_model, embedder=embedder)
    return Memory(url, embedder=embedder, llm=llm, config=config)
