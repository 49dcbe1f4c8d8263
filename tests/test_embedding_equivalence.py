"""The numpy MiniLM runtime against sentence-transformers, the reference implementation.

Needs torch and sentence-transformers (extras ``embed``/``gnn``), which CI installs; the
test is marked ``torch`` so a torch-less run can deselect it with ``-m "not torch"``
instead of skipping silently.
"""

from __future__ import annotations

import numpy as np
import pytest

SENTENCES = [
    "put a clean mug in the coffee machine",
    "Heat some egg and put it in the garbage can.",
    "look at the alarm clock under the desk lamp",
    "",
    "Hi!",
    "In 1997, Deep Blue beat Garry Kasparov — the first loss of a reigning champion.",
    "日本語のテキストと emoji 🎉 を混ぜた文",
    "Café naïve résumé über straße",
    "def add(a, b):\n    return a + b",
    "word " * 400,  # truncated at 256 word pieces by both
    " ".join(f"step {i}: go to drawer {i % 7} and open it" for i in range(40)),
]


@pytest.mark.torch
def test_numpy_runtime_matches_sentence_transformers() -> None:
    import sentence_transformers  # noqa: F401  (fail, do not skip, when CI lacks it)
    import torch  # noqa: F401

    from gmem.embedding import MiniLMEmbedder

    reference = MiniLMEmbedder(backend="sentence-transformers")
    numpy_runtime = MiniLMEmbedder(backend="numpy", batch_size=4)
    assert reference.backend == "sentence-transformers"
    assert numpy_runtime.backend == "numpy"
    assert reference.name == numpy_runtime.name

    expected = reference.embed(SENTENCES)
    actual = numpy_runtime.embed(SENTENCES)
    cosines = np.sum(expected * actual, axis=1)
    assert cosines.min() > 0.999, dict(zip(SENTENCES, cosines.tolist(), strict=True))
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    # One text at a time (a recall's task) takes the unpadded path of the numpy runtime.
    alone = np.vstack([numpy_runtime.embed([s]) for s in SENTENCES])
    cosines = np.sum(expected * alone, axis=1)
    assert cosines.min() > 0.999, dict(zip(SENTENCES, cosines.tolist(), strict=True))
    np.testing.assert_allclose(alone, expected, atol=1e-4)


def test_numpy_gelu_is_the_exact_erf_form_to_float32_resolution() -> None:
    import math

    from gmem.embedding.bert import _gelu_inplace

    x = np.concatenate([np.linspace(-12, 12, 20001), [-1e-6, 0.0, 1e-6, 30.0, -30.0]])
    exact = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x])
    got = _gelu_inplace(x.astype(np.float32)).astype(np.float64)
    # Within a few float32 ulps of the larger of |x| and 1e-3, at every input.
    scale = np.maximum(np.abs(x), 1e-3)
    assert np.max(np.abs(got - exact) / scale) < 4e-7


@pytest.mark.torch
def test_auto_backend_uses_torch_only_on_a_gpu() -> None:
    import torch

    from gmem.embedding import MiniLMEmbedder

    expected = "sentence-transformers" if torch.cuda.is_available() else "numpy"
    assert MiniLMEmbedder().backend == expected
    assert MiniLMEmbedder(backend="sentence-transformers").backend == "sentence-transformers"


@pytest.mark.torch
def test_loading_the_torch_runtime_leaves_the_host_environment_alone() -> None:
    """The model loads from its local directory without the hub, and without setting
    HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE for the host application."""
    from tests.conftest import run_offline

    code = (
        "import os; from gmem.embedding import MiniLMEmbedder; "
        "e = MiniLMEmbedder(backend='sentence-transformers'); e.embed(['a']); "
        "print(e.backend, 'HF_HUB_OFFLINE' in os.environ, 'TRANSFORMERS_OFFLINE' in os.environ)"
    )
    done = run_offline(code, drop=("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["sentence-transformers", "False", "False"]
