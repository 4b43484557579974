"""Which model a calibration was fitted for: :class:`ModelFingerprint`, :func:`model_fingerprint`.

A calibration maps one model's raw scores to probabilities, so its file names the model the
way :func:`rerankit.cache.score_fields` sees it (the options that change raw scores), with the
parts that say nothing about the scores' meaning left out or made portable:

* the model is named by its short name (:attr:`~rerankit.Reranker.model_name`, never a
  machine's site-packages path) and a **revision**: a SHA-256 over the contents of a local
  folder's weight files, or the snapshot (commit) of a hub model in the local Hugging Face
  cache; ``None`` for hosted models, whose provider may change them under the same name;
* numeric precision (``device``, ``dtype``) and library versions are left out: they move a
  score by far less than a calibration can resolve, and a file fitted on one machine should
  load without a warning on another;
* the members of a composite (fusion, fallback) are fingerprinted too; a
  :class:`~rerankit.CachedReranker` is its wrapped reranker.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerankit.base import Reranker
from rerankit.errors import CalibrationError

__all__ = ["ModelFingerprint", "model_fingerprint", "weights_revision"]

_LEFT_OUT = frozenset(
    {
        "versions",
        "device",
        "dtype",
        "class",
        "backend",
        "model",
        "model_revision",
        "rerankit",
        "cache_format",
    }
)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".gguf")
_revisions: dict[tuple[str, int, int], str] = {}
_revisions_lock = threading.Lock()


@dataclass(frozen=True)
class ModelFingerprint:
    """What a calibration was fitted for: backend, model, revision and score-changing options.

    ``digest`` names the whole (the file name in a calibrations folder);
    :meth:`differences` says in words what differs from another fingerprint.

    Example:
        >>> from rerankit.calibrate import ModelFingerprint
        >>> a = ModelFingerprint("embedding", "all-MiniLM-L6-v2", None, {"max_length": None})
        >>> b = ModelFingerprint("embedding", "all-MiniLM-L6-v2", None, {"max_length": 128})
        >>> a.digest == b.digest, a.differences(b)
        (False, ['option max_length: None here, 128 in the other'])
    """

    backend: str
    model: str
    revision: str | None
    options: Mapping[str, Any] = field(default_factory=dict)
    members: tuple[ModelFingerprint, ...] = ()

    def __post_init__(self) -> None:
        # Options as JSON sees them (tuples become lists), so a loaded file compares equal.
        plain = json.loads(json.dumps(dict(self.options), sort_keys=True, default=repr))
        object.__setattr__(self, "options", plain)
        object.__setattr__(self, "members", tuple(self.members))

    def _body(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "revision": self.revision,
            "options": dict(self.options),
            "members": [m._body() for m in self.members],
        }

    @property
    def digest(self) -> str:
        """A 20-hex-digit SHA-256 of the fingerprint (stable across machines and versions)."""
        text = json.dumps(self._body(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def describe(self) -> str:
        """One phrase: ``embedding (sentence-transformers/all-MiniLM-L6-v2, revision ...)``."""
        parts = [p for p in (self.model, self.revision and f"revision {self.revision}") if p]
        inner = ", ".join(parts)
        return f"{self.backend} ({inner})" if inner else self.backend

    def differences(
        self,
        other: ModelFingerprint,
        *,
        labels: tuple[str, str] = ("here", "in the other"),
        prefix: str = "",
    ) -> list[str]:
        """What differs from ``other``, one phrase each (empty when the digests agree);
        ``labels`` name this side and the other in the phrases."""
        here, there = labels
        out = []
        for name in ("backend", "model", "revision"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                out.append(f"{prefix}{name}: {mine!r} {here}, {theirs!r} {there}")
        for key in sorted(set(self.options) | set(other.options)):
            mine, theirs = self.options.get(key), other.options.get(key)
            if mine != theirs or (key in self.options) != (key in other.options):
                out.append(f"{prefix}option {key}: {mine!r} {here}, {theirs!r} {there}")
        if len(self.members) != len(other.members):
            out.append(f"{prefix}members: {len(self.members)} {here}, {len(other.members)} {there}")
        else:
            for i, (mine, theirs) in enumerate(zip(self.members, other.members, strict=True)):
                out += mine.differences(theirs, labels=labels, prefix=f"{prefix}member {i} ")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, with the digest."""
        return {"digest": self.digest, **self._body()}

    @classmethod
    def from_dict(cls, data: object, *, where: str = "fingerprint") -> ModelFingerprint:
        """The inverse of :meth:`to_dict`; :class:`~rerankit.CalibrationError` naming ``where``
        for a malformed value."""
        if not isinstance(data, Mapping):
            raise CalibrationError(f"{where} must be an object, got {type(data).__name__}")
        backend, model, revision = data.get("backend"), data.get("model"), data.get("revision")
        options, members = data.get("options", {}), data.get("members", [])
        if not isinstance(backend, str) or not isinstance(model, str):
            raise CalibrationError(f"{where} needs 'backend' and 'model' strings")
        if revision is not None and not isinstance(revision, str):
            raise CalibrationError(f"{where}.revision must be a string or null")
        if not isinstance(options, Mapping) or not isinstance(members, Sequence):
            raise CalibrationError(f"{where} needs an 'options' object and a 'members' list")
        return cls(
            backend,
            model,
            revision,
            options,
            tuple(cls.from_dict(m, where=f"{where}.members[{i}]") for i, m in enumerate(members)),
        )


def _hash_files(files: Sequence[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]


def _folder_revision(folder: Path) -> str | None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    weights = [p for p in files if p.suffix in _WEIGHT_SUFFIXES] or files
    if not weights:
        return None
    stats = [p.stat() for p in weights]
    key = (str(folder.resolve()), sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats))
    with _revisions_lock:
        known = _revisions.get(key)
    if known is None:
        known = _hash_files(weights, folder)
        with _revisions_lock:
            _revisions[key] = known
    return known


def _hub_revision(model: str) -> str | None:
    """The snapshot of a hub model in the local Hugging Face cache (never goes online)."""
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(model, local_files_only=True)
    except Exception:  # not installed, not a hub id, or not cached: no revision known
        return None
    return f"hub:{Path(path).name}"


def weights_revision(model: str) -> str | None:
    """The revision of ``model``: a content hash of a local folder's weight files (memoised
    per size and modification time), a hub model's cached snapshot, or ``None``."""
    if not isinstance(model, str) or not model:
        return None
    try:
        folder = Path(model).expanduser()
        if folder.is_dir():
            return _folder_revision(folder)
    except OSError:
        return None
    if "://" in model:
        return None
    return _hub_revision(model)


def _members(reranker: Reranker) -> list[Reranker]:
    found: list[Reranker] = []
    for name, value in sorted(vars(reranker).items()):
        if name.startswith("_"):
            continue
        if isinstance(value, Reranker):
            found.append(value)
        elif (
            isinstance(value, tuple | list)
            and value
            and all(isinstance(v, Reranker) for v in value)
        ):
            found.extend(value)
    return found


def model_fingerprint(reranker: Reranker) -> ModelFingerprint:
    """The :class:`ModelFingerprint` of ``reranker`` (see the module docstring).

    Example:
        >>> from rerankit import EmbeddingReranker
        >>> from rerankit.calibrate import model_fingerprint
        >>> fp = model_fingerprint(EmbeddingReranker(max_length=128))
        >>> fp.backend, fp.model, fp.options["max_length"]
        ('embedding', 'sentence-transformers/all-MiniLM-L6-v2', 128)
    """
    from rerankit.cache import CachedReranker
    from rerankit.cache.fingerprint import score_fields

    if isinstance(reranker, CachedReranker):
        return model_fingerprint(reranker.reranker)
    fields = score_fields(reranker)
    model = fields.get("model")
    return ModelFingerprint(
        backend=reranker.backend,
        model=reranker.model_name,
        revision=weights_revision(model) if isinstance(model, str) else None,
        options={k: v for k, v in fields.items() if k not in _LEFT_OUT},
        members=tuple(model_fingerprint(m) for m in _members(reranker)),
    )
