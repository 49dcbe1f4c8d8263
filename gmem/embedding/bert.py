"""The BERT encoder of all-MiniLM-L6-v2 as plain numpy, for installs without torch."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from gmem.embedding.protocol import FloatMatrix
from graph_store.blas import one_blas_thread

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: Batches of at most this many texts run on one BLAS thread (see :meth:`NumpyMiniLM.encode`).
SINGLE_THREAD_BELOW = 8


@dataclass(frozen=True, slots=True)
class _BertLayer:
    """One encoder layer with weights laid out (in, out) for ``x @ w`` on row-major data."""

    qkv_w: FloatMatrix  # query, key and value fused: one GEMM instead of three
    qkv_b: FloatMatrix
    attn_out_w: FloatMatrix
    attn_out_b: FloatMatrix
    attn_norm_g: FloatMatrix
    attn_norm_b: FloatMatrix
    ffn_in_w: FloatMatrix
    ffn_in_b: FloatMatrix
    ffn_out_w: FloatMatrix
    ffn_out_b: FloatMatrix
    ffn_norm_g: FloatMatrix
    ffn_norm_b: FloatMatrix


# Abramowitz & Stegun 7.1.26: erf to within 1.5e-7, below float32 resolution of GELU's
# inputs here. numpy has no erf and BERT's GELU is the exact (erf) one, not the tanh form.
# With z = |x| / sqrt 2 and t = 1 / (1 + p z), 1 - erf(z) = P(t) exp(-z^2) for the
# polynomial P below (highest power first); GELU's 1/2 is folded into its coefficients.
_ERF_P_OVER_SQRT2 = np.float32(0.3275911 / math.sqrt(2.0))
_HALF_ERF_A = tuple(
    np.float32(0.5 * a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
)
_MINUS_HALF = np.float32(-0.5)


def _gelu_inplace(x: FloatMatrix) -> FloatMatrix:
    """Exact-erf GELU, in place, with few passes because ``x`` is the widest tensor.

    ``x * (1 + erf(x / sqrt 2)) / 2`` is ``max(x, 0) - h`` on both signs of ``x``, with
    ``h = |x| P(t) exp(-x^2 / 2) / 2``, which needs no sign copy and no ``1 - erf``.
    """
    a = np.abs(x)
    t = a * _ERF_P_OVER_SQRT2
    t += 1.0
    np.reciprocal(t, out=t)
    h = t * _HALF_ERF_A[0]
    for c in _HALF_ERF_A[1:]:
        h += c
        h *= t
    h *= a
    np.square(a, out=a)
    a *= _MINUS_HALF
    np.exp(a, out=a)
    h *= a
    np.maximum(x, 0.0, out=x)
    x -= h
    return x


def _layer_norm(
    x: FloatMatrix, gain: FloatMatrix, bias: FloatMatrix, eps: np.float32, mean_of: FloatMatrix
) -> FloatMatrix:
    """Layer norm of the rows of ``x``, in place (every caller's ``x`` is a temporary).

    ``mean_of`` is a column of ``1 / width``: the row means are one matrix-vector
    product each, which costs less than numpy's reductions on rows this short.
    """
    mean = x @ mean_of
    x -= mean
    var = np.square(x) @ mean_of
    var += eps
    np.sqrt(var, out=var)
    np.reciprocal(var, out=var)
    x *= var
    x *= gain
    x += bias
    return x


class NumpyMiniLM:
    """The BERT encoder of all-MiniLM-L6-v2 as plain numpy, for installs without torch.

    Inference only: no dropout, fixed token type 0 (single sentences), absolute position
    embeddings. Numerically it matches the torch model to about 1e-6 cosine, which the
    equivalence test checks.
    """

    def __init__(self, path: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((path / "config.json").read_text())
        st_config_path = path / "sentence_bert_config.json"
        st_config = json.loads(st_config_path.read_text()) if st_config_path.is_file() else {}
        self.max_length = int(st_config.get("max_seq_length", 256))
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = np.float32(config["layer_norm_eps"])
        self._mean_of = np.full((self.hidden, 1), 1.0 / self.hidden, dtype=np.float32)
        head_dim = self.hidden // self.heads

        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json pads every input to 128 and truncates there; sentence-transformers
        # overrides both (256 word pieces, padding to the longest in a batch) and so do we.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer: Tokenizer = tokenizer

        w = {
            k: np.ascontiguousarray(v, dtype=np.float32)
            for k, v in load_file(str(path / "model.safetensors")).items()
            if not k.endswith("position_ids")
        }
        # Checkpoints saved from BertModel carry no prefix; from a task head, "bert.".
        w = {k.removeprefix("bert."): v for k, v in w.items()}

        def t(name: str) -> FloatMatrix:
            return np.ascontiguousarray(w[name].T)

        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.emb_norm_g = w["embeddings.LayerNorm.weight"]
        self.emb_norm_b = w["embeddings.LayerNorm.bias"]
        scale = np.float32(1.0 / math.sqrt(head_dim))
        self.layers: list[_BertLayer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            att = p + "attention.self."
            self.layers.append(
                _BertLayer(
                    # The 1/sqrt(d) attention scale is folded into the query projection.
                    qkv_w=np.ascontiguousarray(
                        np.concatenate(
                            [
                                t(att + "query.weight") * scale,
                                t(att + "key.weight"),
                                t(att + "value.weight"),
                            ],
                            axis=1,
                        )
                    ),
                    qkv_b=np.concatenate(
                        [w[att + "query.bias"] * scale, w[att + "key.bias"], w[att + "value.bias"]]
                    ),
                    attn_out_w=t(p + "attention.output.dense.weight"),
                    attn_out_b=w[p + "attention.output.dense.bias"],
                    attn_norm_g=w[p + "attention.output.LayerNorm.weight"],
                    attn_norm_b=w[p + "attention.output.LayerNorm.bias"],
                    ffn_in_w=t(p + "intermediate.dense.weight"),
                    ffn_in_b=w[p + "intermediate.dense.bias"],
                    ffn_out_w=t(p + "output.dense.weight"),
                    ffn_out_b=w[p + "output.dense.bias"],
                    ffn_norm_g=w[p + "output.LayerNorm.weight"],
                    ffn_norm_b=w[p + "output.LayerNorm.bias"],
                )
            )

    def encode(self, texts: list[str], batch_size: int) -> FloatMatrix:
        # A few short texts are too little work to share between BLAS threads; on a busy
        # two-core machine extra threads made one recall's embedding 100x slower.
        if len(texts) <= SINGLE_THREAD_BELOW:
            with one_blas_thread():
                return self._encode_batches(texts, batch_size)
        return self._encode_batches(texts, batch_size)

    def _encode_batches(self, texts: list[str], batch_size: int) -> FloatMatrix:
        if len(texts) == 1:
            # A recall's one task text: nothing to sort or pad, and encode_batch's
            # thread pool would cost more than the tokenizing.
            ids = np.array([self.tokenizer.encode(texts[0]).ids], dtype=np.int64)
            return self.forward(ids, None)
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings])
        # Batches of similar length waste little compute on padding.
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.hidden), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            width = int(lengths[idx].max())
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=bool)
            for row, i in enumerate(idx):
                n = int(lengths[i])
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = True
            out[idx] = self.forward(ids, None if mask.all() else mask)
        return out

    def forward(self, ids: NDArray[np.int64], mask: NDArray[np.bool_] | None) -> FloatMatrix:
        """Mean-pooled last hidden states of a padded batch (not yet normalized).

        ``mask`` marks the real tokens; ``None`` says there is no padding (one text, or
        texts of one length), which spares the key bias and the weighted pooling.
        """
        batch, width = ids.shape
        heads, hidden = self.heads, self.hidden
        head_dim = hidden // heads
        mean_of = self._mean_of
        x = self.word[ids.reshape(-1)]
        x = x.reshape(batch, width, hidden)
        x += self.position[:width]
        x += self.token_type0
        x = _layer_norm(
            x.reshape(batch * width, hidden), self.emb_norm_g, self.emb_norm_b, self.eps, mean_of
        )
        # Padded keys get a large negative score so softmax gives them zero weight.
        key_bias = (
            None
            if mask is None
            else np.where(mask, np.float32(0.0), np.float32(-1e9))[:, None, None, :]
        )
        for layer in self.layers:
            qkv = x @ layer.qkv_w
            qkv += layer.qkv_b
            qkv = qkv.reshape(batch, width, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2)
            if key_bias is not None:
                scores += key_bias
            scores -= np.maximum.reduce(scores, axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= np.add.reduce(scores, axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * width, hidden)
            attn = context @ layer.attn_out_w
            attn += layer.attn_out_b
            attn += x
            x = _layer_norm(attn, layer.attn_norm_g, layer.attn_norm_b, self.eps, mean_of)
            h = x @ layer.ffn_in_w
            h += layer.ffn_in_b
            h = _gelu_inplace(h)
            ffn = h @ layer.ffn_out_w
            ffn += layer.ffn_out_b
            ffn += x
            x = _layer_norm(ffn, layer.ffn_norm_g, layer.ffn_norm_b, self.eps, mean_of)
        states = x.reshape(batch, width, hidden)
        if mask is None:
            pooled: FloatMatrix = states.mean(axis=1)
            return pooled
        weights = mask.astype(np.float32)
        summed: FloatMatrix = np.einsum("bwh,bw->bh", states, weights)
        counts: FloatMatrix = np.maximum(weights.sum(axis=1, keepdims=True), np.float32(1.0))
        pooled = summed / counts
        return pooled
