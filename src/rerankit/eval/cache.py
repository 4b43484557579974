"""Embeddings cached on disk, so a second evaluation of the same corpus skips encoding.

:class:`EmbeddingCache` stores the normalised sentence embeddings of a list of texts as one
``.npy`` file per (model, texts): the file name holds a short model name and a SHA-256 over the
model's identity (path or hub id, dtype, window, and for a local folder the size and mtime of
its weight files) and every text. The same cache serves

* the dense first stage of the full pipeline (corpus and query embeddings), and
* the rerankers under evaluation: :meth:`EmbeddingCache.attach` routes the
  sentence-transformers model of an :class:`~rerankit.EmbeddingReranker` (and of a
  :class:`~rerankit.LateInteractionReranker` with the sentence-transformers encoder, and of
  every member of a :class:`~rerankit.FusionReranker`) through the cache. The reranker's own
  code runs unchanged; only the model's ``encode`` answers from the cache for texts it has seen.
  Token embeddings (late interaction) are memoised in memory only, within ``memory_bytes``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rerankit._models import encoding
from rerankit.base import Reranker
from rerankit.errors import ConfigurationError
from rerankit.eval._progress import progress_bar

__all__ = ["EmbeddingCache"]

_SENTENCE = "sentence_embedding"
_TOKENS = "token_embeddings"
_SERVED_KWARGS = frozenset(
    {
        "batch_size",
        "show_progress_bar",
        "normalize_embeddings",
        "convert_to_tensor",
        "convert_to_numpy",
        "output_value",
    }
)


def _weights_fingerprint(model: str) -> list[Any]:
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".safetensors", ".bin", ".pt", ".onnx") and path.is_file():
            stat = path.stat()
            found.append([str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns])
    return found


def _identity(encoder: Any, model: str) -> str:
    """What decides an encoder's embeddings: model, weights, dtype and window."""
    dtype = ""
    parameters = getattr(encoder, "parameters", None)
    if callable(parameters):
        first = next(iter(parameters()), None)
        dtype = str(getattr(first, "dtype", ""))
    window = getattr(encoder, "max_seq_length", None)
    return json.dumps([model, dtype, window, _weights_fingerprint(model)])


def _slug(model: str) -> str:
    path = Path(model)
    name = path.name if path.name not in ("model", "") else path.parent.name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:48] or "model"


def _nbytes(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    size = getattr(value, "element_size", None)
    count = getattr(value, "nelement", None)
    if callable(size) and callable(count):
        return int(size()) * int(count())
    return 1024


class EmbeddingCache:
    """Sentence embeddings on disk (one ``.npy`` per model and text list) plus a memory memo.

    ``directory=None`` keeps everything in memory (nothing survives the process).
    ``encoded`` counts the texts this cache sent to a model (the model boundary), and
    ``from_disk`` the embedding files it loaded instead of encoding.

    Example:
        >>> import tempfile
        >>> from rerankit.eval import EmbeddingCache
        >>> class Toy:  # anything with a sentence-transformers style encode()
        ...     def encode(self, texts, **kwargs):
        ...         return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)
        >>> folder = tempfile.mkdtemp()
        >>> first = EmbeddingCache(directory=folder, progress=False)
        >>> first.embeddings(Toy(), ["a", "bb"], model="toy").shape, first.encoded
        ((2, 2), 2)
        >>> second = EmbeddingCache(directory=folder, progress=False)
        >>> _ = second.embeddings(Toy(), ["a", "bb"], model="toy")
        >>> second.encoded, second.from_disk
        (0, 1)
    """

    def __init__(
        self,
        *,
        directory: str | Path | None = None,
        memory_bytes: int = 2 * 1024**3,
        progress: bool = True,
    ) -> None:
        if directory is not None and not isinstance(directory, str | os.PathLike):
            raise ConfigurationError(f"directory must be a path or None, got {directory!r}")
        if isinstance(memory_bytes, bool) or not isinstance(memory_bytes, int) or memory_bytes < 0:
            raise ConfigurationError(
                f"memory_bytes must be a non-negative int, got {memory_bytes!r}"
            )
        self.directory = Path(directory).expanduser() if directory is not None else None
        self.memory_bytes = memory_bytes
        self.progress = progress
        self.encoded = 0
        self.from_disk = 0
        self._tables: dict[str, dict[str, tuple[np.ndarray, int]]] = {}
        self._memo: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self._memo_size = 0

    # -- corpus tables ---------------------------------------------------------------------------

    def path_for(self, encoder: Any, texts: Sequence[str], *, model: str) -> Path | None:
        """Where the embeddings of ``texts`` by this encoder are (or would be) stored."""
        if self.directory is None:
            return None
        digest = hashlib.sha256(_identity(encoder, model).encode("utf-8"))
        for text in texts:
            digest.update(text.encode("utf-8"))
            digest.update(b"\x00")
        return self.directory / f"{_slug(model)}-{len(texts)}-{digest.hexdigest()[:24]}.npy"

    def embeddings(
        self,
        encoder: Any,
        texts: Sequence[str],
        *,
        model: str,
        batch_size: int = 64,
        desc: str = "encode",
    ) -> np.ndarray:
        """L2-normalised embeddings of ``texts`` (float32, one row each), from disk if cached.

        ``encoder`` is a sentence-transformers model (or anything with its ``encode``).
        The texts are encoded longest first, in chunks, with a progress bar.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")
        texts = list(texts)
        identity = _identity(encoder, model)
        table = self._tables.get(identity, {})
        if texts and all(t in table for t in texts):
            # Already here (e.g. a subset of a corpus encoded earlier in this process).
            return np.stack([table[t][0][table[t][1]] for t in texts])
        path = self.path_for(encoder, texts, model=model)
        matrix: np.ndarray | None = None
        if path is not None and path.is_file():
            try:
                loaded = np.load(path)
            except (OSError, ValueError):
                loaded = None
            if loaded is not None and loaded.ndim == 2 and loaded.shape[0] == len(texts):
                matrix = loaded.astype(np.float32, copy=False)
                self.from_disk += 1
        if matrix is None:
            matrix = self._encode_all(encoder, texts, batch_size, desc)
            if path is not None:
                self._save(path, matrix, model=model, count=len(texts))
        self._register(identity, texts, matrix)
        return matrix

    def _encode_all(self, encoder: Any, texts: list[str], batch_size: int, desc: str) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        chunk = batch_size * 8
        parts: list[np.ndarray] = []
        with progress_bar(total=len(texts), desc=desc, unit="doc", enabled=self.progress) as bar:
            for start in range(0, len(order), chunk):
                batch = [texts[i] for i in order[start : start + chunk]]
                with encoding(encoder):  # encode() tokenises with per-call settings
                    out = encoder.encode(
                        batch,
                        batch_size=batch_size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                self.encoded += len(batch)
                parts.append(np.asarray(out, dtype=np.float32))
                bar(len(batch))
        if not parts:
            return np.zeros((0, 0), dtype=np.float32)
        stacked = np.concatenate(parts)
        matrix = np.empty_like(stacked)
        matrix[np.asarray(order)] = stacked
        return matrix

    def _save(self, path: Path, matrix: np.ndarray, *, model: str, count: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.save(out, matrix)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; cache files need not be
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        meta = {
            "model": model,
            "texts": count,
            "dim": int(matrix.shape[1]) if matrix.ndim == 2 else 0,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    def _register(self, identity: str, texts: Sequence[str], matrix: np.ndarray) -> None:
        table = self._tables.setdefault(identity, {})
        for row, text in enumerate(texts):
            table.setdefault(text, (matrix, row))

    # -- memo ------------------------------------------------------------------------------------

    def _memo_get(self, key: tuple[str, str, str]) -> Any:
        value = self._memo.get(key)
        if value is not None:
            self._memo.move_to_end(key)
        return value

    def _memo_put(self, key: tuple[str, str, str], value: Any) -> None:
        size = _nbytes(value)
        if size > self.memory_bytes:
            return
        if key in self._memo:
            self._memo_size -= _nbytes(self._memo.pop(key))
        self._memo[key] = value
        self._memo_size += size
        while self._memo_size > self.memory_bytes and self._memo:
            _, old = self._memo.popitem(last=False)
            self._memo_size -= _nbytes(old)

    # -- rerankers -------------------------------------------------------------------------------

    def attach(
        self,
        reranker: Reranker,
        texts: Sequence[str] = (),
        *,
        queries: Sequence[str] = (),
        desc: str = "",
    ) -> int:
        """Route ``reranker``'s sentence-transformers models through this cache.

        For an :class:`~rerankit.EmbeddingReranker` the embeddings of ``texts`` (the documents it
        will see, with its ``document_prompt``) and of ``queries`` (with its ``query_prompt``)
        are loaded from disk or encoded now. A :class:`~rerankit.FusionReranker` is handled
        member by member; other rerankers are left alone. Returns how many models were attached.
        """
        from rerankit.backends.embedding import EmbeddingReranker
        from rerankit.backends.fusion import FusionReranker
        from rerankit.backends.late_interaction import LateInteractionReranker

        if isinstance(reranker, FusionReranker):
            return sum(
                self.attach(member, texts, queries=queries, desc=desc)
                for member in reranker.rerankers
            )
        if isinstance(reranker, EmbeddingReranker):
            encoder = _unwrap(reranker.loaded_model())
            identity = _identity(encoder, reranker.model)
            if texts:
                self.embeddings(
                    encoder,
                    [reranker.document_prompt + t for t in texts],
                    model=reranker.model,
                    batch_size=reranker.batch_size,
                    desc=desc or f"encode documents ({_slug(reranker.model)})",
                )
            if queries:
                self.embeddings(
                    encoder,
                    [reranker.query_prompt + q for q in queries],
                    model=reranker.model,
                    batch_size=reranker.batch_size,
                    desc=f"encode queries ({_slug(reranker.model)})",
                )
            reranker.use_model(_CachingEncoder(encoder, self, identity))
            return 1
        if (
            isinstance(reranker, LateInteractionReranker)
            and reranker.resolved_encoder() == "sentence-transformers"
        ):
            encoder = _unwrap(reranker.loaded_model())
            reranker.use_model(_CachingEncoder(encoder, self, _identity(encoder, reranker.model)))
            return 1
        return 0

    def _lookup(self, identity: str, text: str) -> np.ndarray | None:
        hit = self._tables.get(identity, {}).get(text)
        return hit[0][hit[1]] if hit is not None else None


def _unwrap(encoder: Any) -> Any:
    return encoder._encoder if isinstance(encoder, _CachingEncoder) else encoder


class _CachingEncoder:
    """A sentence-transformers model whose ``encode`` answers from an :class:`EmbeddingCache`.

    Normalised sentence embeddings come from the cache's tables or memo, token embeddings
    from the memo; only the texts it has not seen reach the model, in one call with the
    caller's arguments. Calls it does not understand go to the model unchanged.
    """

    def __init__(self, encoder: Any, cache: EmbeddingCache, identity: str) -> None:
        self._encoder = encoder
        self._cache = cache
        self._identity = identity

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def encode(self, sentences: Any, **kwargs: Any) -> Any:
        output = kwargs.get("output_value", _SENTENCE)
        if isinstance(sentences, str) or set(kwargs) - _SERVED_KWARGS:
            return self._encoder.encode(sentences, **kwargs)
        texts = list(sentences)
        if output == _TOKENS and kwargs.get("convert_to_numpy", True) is False:
            return self._tokens(texts, kwargs)
        if output == _SENTENCE and (
            kwargs.get("convert_to_tensor") or kwargs.get("convert_to_numpy", True)
        ):
            return self._sentences(texts, kwargs)
        return self._encoder.encode(sentences, **kwargs)

    def _tokens(self, texts: list[str], kwargs: dict[str, Any]) -> list[Any]:
        cache = self._cache
        signature = json.dumps([_TOKENS, bool(kwargs.get("normalize_embeddings", False))])
        out: list[Any] = [cache._memo_get((self._identity, signature, t)) for t in texts]
        misses = sorted({t for t, v in zip(texts, out, strict=True) if v is None})
        if misses:
            fresh = dict(zip(misses, self._encoder.encode(misses, **kwargs), strict=True))
            cache.encoded += len(misses)
            for text, value in fresh.items():
                cache._memo_put((self._identity, signature, text), value)
            out = [fresh[t] if v is None else v for t, v in zip(texts, out, strict=True)]
        return out

    def _sentences(self, texts: list[str], kwargs: dict[str, Any]) -> Any:
        cache = self._cache
        normalized = bool(kwargs.get("normalize_embeddings", False))
        signature = json.dumps([_SENTENCE, normalized])
        rows: list[np.ndarray | None] = []
        for text in texts:
            row = cache._lookup(self._identity, text) if normalized else None
            rows.append(
                row if row is not None else cache._memo_get((self._identity, signature, text))
            )
        misses = sorted({t for t, r in zip(texts, rows, strict=True) if r is None})
        if misses:
            plain = {**kwargs, "convert_to_tensor": False, "convert_to_numpy": True}
            encoded = np.asarray(self._encoder.encode(misses, **plain), dtype=np.float32)
            cache.encoded += len(misses)
            fresh = {t: encoded[i] for i, t in enumerate(misses)}
            for text, row in fresh.items():
                cache._memo_put((self._identity, signature, text), row)
            rows = [fresh[t] if r is None else r for t, r in zip(texts, rows, strict=True)]
        matrix = np.stack([np.asarray(r, dtype=np.float32) for r in rows]) if rows else None
        if matrix is None:
            matrix = np.zeros((0, 0), dtype=np.float32)
        if kwargs.get("convert_to_tensor"):
            from rerankit._torch import torch_module

            return torch_module().from_numpy(matrix)
        return matrix
