"""ColBERT checkpoints in the original Stanford format, for :class:`LateInteractionReranker`.

``HF_ColBERT``: a BERT plus a ``linear`` projection, with query/document markers, ``[MASK]``
query augmentation and punctuation masking as configured in its ``artifact.metadata``.
:func:`detect_encoder` decides from a checkpoint's files (never from its name) whether it is
one; :func:`load_colbert` loads it once per process.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rerankit._deps import require
from rerankit._models import shared_model
from rerankit._torch import resolve_device, resolve_dtype, torch_module
from rerankit.errors import BackendError, ConfigurationError
from rerankit.sentence import locate_model

__all__ = ["ColbertEncoder", "ColbertSettings", "detect_encoder", "load_colbert"]

FEATURE = "LateInteractionReranker"
_METADATA_FILE = "artifact.metadata"
_PROJECTION_KEY = "linear.weight"


# -- checkpoint files ------------------------------------------------------------------------------


def _checkpoint_file(model: str, filename: str) -> Path | None:
    """``filename`` of a local model directory or a hub repository, or None when it has none.

    Hub files are resolved with ``huggingface_hub`` (so the usual cache, ``HF_HUB_OFFLINE`` and
    token settings apply). A file that cannot be had (absent, offline and not cached, unknown
    repository) counts as absent.
    """
    local = Path(locate_model(model, feature=FEATURE))
    if local.is_dir():
        path = local / filename
        return path if path.is_file() else None
    hub = require("huggingface_hub", extra="local", feature=FEATURE, package="huggingface-hub")
    try:
        return Path(hub.hf_hub_download(repo_id=model, filename=filename))
    except (OSError, ValueError):
        # EntryNotFound / LocalEntryNotFound / RepositoryNotFound / offline errors are OSErrors,
        # an invalid repo id is a ValueError (HFValidationError).
        return None


def _read_json(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def detect_encoder(model: str) -> Literal["sentence-transformers", "colbert"]:
    """Which encoder a checkpoint needs, decided from its files (never from its name).

    A checkpoint is ColBERT when its ``config.json`` lists ``HF_ColBERT`` among its
    ``architectures`` or when it ships an ``artifact.metadata`` file; anything else is read
    as a sentence-transformers model.
    """
    config = _read_json(_checkpoint_file(model, "config.json"))
    architectures = config.get("architectures") if config else None
    if isinstance(architectures, list) and "HF_ColBERT" in architectures:
        return "colbert"
    if _checkpoint_file(model, _METADATA_FILE) is not None:
        return "colbert"
    return "sentence-transformers"


@dataclass(frozen=True)
class ColbertSettings:
    """The encoding settings of a ColBERT checkpoint (from its ``artifact.metadata``).

    Defaults are ColBERT's own defaults, used for keys the metadata does not set.
    """

    query_maxlen: int = 32
    doc_maxlen: int = 220
    query_token_id: str = "[unused0]"
    doc_token_id: str = "[unused1]"
    mask_punctuation: bool = True
    attend_to_mask_tokens: bool = False

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> ColbertSettings:
        """Settings from a parsed ``artifact.metadata`` (missing keys keep the defaults)."""
        defaults = cls()
        data = dict(metadata or {})

        def pick(name: str, kind: type) -> Any:
            value = data.get(name)
            if value is None:
                return getattr(defaults, name)
            if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 4):
                raise ConfigurationError(
                    f"artifact.metadata: {name} must be an int >= 4, got {value!r}"
                )
            if kind is not int and not isinstance(value, kind):
                raise ConfigurationError(
                    f"artifact.metadata: {name} must be a {kind.__name__}, got {value!r}"
                )
            return value

        return cls(
            query_maxlen=pick("query_maxlen", int),
            doc_maxlen=pick("doc_maxlen", int),
            query_token_id=pick("query_token_id", str),
            doc_token_id=pick("doc_token_id", str),
            mask_punctuation=pick("mask_punctuation", bool),
            attend_to_mask_tokens=pick("attend_to_mask_tokens", bool),
        )


def _load_projection(model: str) -> Any | None:
    """The ``linear.weight`` projection of a ColBERT checkpoint, or None if it has none."""
    torch = torch_module()
    for index_name, single in (
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ):
        path = _checkpoint_file(model, single)
        if path is None:
            index = _read_json(_checkpoint_file(model, index_name))
            weight_map = index.get("weight_map") if index else None
            shard = weight_map.get(_PROJECTION_KEY) if isinstance(weight_map, dict) else None
            path = _checkpoint_file(model, shard) if isinstance(shard, str) else None
        if path is None:
            continue
        if path.name.endswith(".safetensors"):
            safetensors = require("safetensors", extra="local", feature=FEATURE)
            with safetensors.safe_open(str(path), framework="pt") as handle:
                if _PROJECTION_KEY in set(handle.keys()):
                    return handle.get_tensor(_PROJECTION_KEY)
            continue
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(state, dict) and _PROJECTION_KEY in state:
            return state[_PROJECTION_KEY]
    return None


class ColbertEncoder:
    """A loaded ColBERT checkpoint: BERT, projection, tokenizer and encoding settings."""

    def __init__(self, bert: Any, projection: Any, tokenizer: Any, settings: ColbertSettings):
        self.bert = bert
        self.projection = projection
        self.tokenizer = tokenizer
        self.settings = settings
        self.device = projection.device
        markers = tokenizer.convert_tokens_to_ids([settings.query_token_id, settings.doc_token_id])
        unk = tokenizer.unk_token_id
        for token, marker in zip(
            (settings.query_token_id, settings.doc_token_id), markers, strict=True
        ):
            if marker is None or (unk is not None and marker == unk):
                raise ConfigurationError(
                    f"the ColBERT marker token {token!r} is not in the vocabulary"
                )
        self.query_marker, self.doc_marker = int(markers[0]), int(markers[1])
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ConfigurationError("a ColBERT tokenizer needs a mask token and a pad token")
        self.skip_ids: list[int] = []
        if settings.mask_punctuation:
            for symbol in string.punctuation:
                ids = tokenizer.encode(symbol, add_special_tokens=False)
                if ids:
                    self.skip_ids.append(int(ids[0]))
        # [CLS] + marker + [SEP] (markers take the place of the "." placeholder ColBERT inserts).
        self.specials = int(tokenizer.num_special_tokens_to_add(pair=False)) + 1
        limit = getattr(bert.config, "max_position_embeddings", None) or 512
        tok_limit = getattr(tokenizer, "model_max_length", None)
        if isinstance(tok_limit, int) and 0 < tok_limit < limit:
            limit = tok_limit
        self.max_positions = int(limit)

    def doc_window(self, max_length: int | None) -> int:
        """Document tokens per pass, special tokens included."""
        return min(max_length or self.settings.doc_maxlen, self.max_positions)

    def _project(self, input_ids: Any, attention_mask: Any) -> Any:
        torch = torch_module()
        try:
            with torch.inference_mode():
                hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]
                out = (hidden @ self.projection.T).float()
        except RuntimeError as exc:
            raise BackendError(f"the ColBERT model failed to encode a batch: {exc}") from exc
        return torch.nn.functional.normalize(out, dim=-1)

    def encode_query(self, query: str) -> Any:
        """``(query_maxlen, dim)`` normalised embeddings: marker, [MASK] augmentation."""
        s = self.settings
        features = self.tokenizer(
            [". " + query],
            padding="max_length",
            truncation=True,
            max_length=s.query_maxlen,
            return_tensors="pt",
        )
        ids, mask = features["input_ids"], features["attention_mask"]
        ids[:, 1] = self.query_marker
        augment = ids == self.tokenizer.pad_token_id
        ids[augment] = self.tokenizer.mask_token_id
        if s.attend_to_mask_tokens:
            mask[augment] = 1
        return self._project(ids.to(self.device), mask.to(self.device))[0]

    def encode_documents(
        self, texts: Sequence[str], window: int, lengths: Sequence[int], batch_size: int
    ) -> list[Any]:
        """Normalised embeddings of each document's kept tokens (punctuation masked out)."""
        torch = torch_module()
        out: list[Any] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        skip = torch.tensor(self.skip_ids, dtype=torch.long)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            features = self.tokenizer(
                [". " + texts[i] for i in chunk],
                padding="longest",
                truncation="longest_first",
                max_length=window,
                return_tensors="pt",
            )
            ids, mask = features["input_ids"], features["attention_mask"]
            ids[:, 1] = self.doc_marker
            embeddings = self._project(ids.to(self.device), mask.to(self.device)).cpu()
            keep = mask.bool() & ~torch.isin(ids, skip)
            for row, i in enumerate(chunk):
                out[i] = embeddings[row][keep[row]]
        return out


def load_colbert(
    model: str, device: str | None, dtype: str, trust_remote_code: bool
) -> ColbertEncoder:
    """Load (once per process) a ColBERT checkpoint from a local directory or the hub."""
    transformers = require("transformers", extra="local", feature=FEATURE)
    resolved_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, resolved_device)

    def load() -> ColbertEncoder:
        projection = _load_projection(model)
        if projection is None or getattr(projection, "ndim", 0) != 2:
            raise ConfigurationError(
                f"{model} is not a ColBERT checkpoint: its weights hold no 2-d "
                f"{_PROJECTION_KEY!r} projection (use encoder='sentence-transformers' for a "
                "sentence-transformers model)"
            )
        settings = ColbertSettings.from_metadata(
            _read_json(_checkpoint_file(model, _METADATA_FILE))
        )
        source = locate_model(model, feature=FEATURE)
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            source, trust_remote_code=trust_remote_code
        )
        bert, info = transformers.AutoModel.from_pretrained(
            source, trust_remote_code=trust_remote_code, output_loading_info=True
        )
        missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith("pooler."))
        if missing:
            raise ConfigurationError(
                f"{model}: the checkpoint lacks encoder weights {missing[:5]} (is it a ColBERT "
                "checkpoint?)"
            )
        hidden = int(bert.config.hidden_size)
        if int(projection.shape[1]) != hidden:
            raise ConfigurationError(
                f"{model}: {_PROJECTION_KEY} has shape {tuple(projection.shape)}, which does not "
                f"project the model's hidden size {hidden}"
            )
        bert.to(device=resolved_device, dtype=torch_dtype)
        bert.eval()
        projection = projection.to(device=resolved_device, dtype=torch_dtype)
        return ColbertEncoder(bert, projection, tokenizer, settings)

    key = ("colbert", model, resolved_device, str(torch_dtype), trust_remote_code)
    return shared_model(key, load)
