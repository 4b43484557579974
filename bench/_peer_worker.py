"""One reranking system in its own process, for ``bench/bench_peers.py``.

    <venv>/bin/python bench/_peer_worker.py SYSTEM CONFIG_JSON
    <venv>/bin/python bench/_peer_worker.py --export onnx|openvino SOURCE DEST

The worker runs under the Python of that system's virtualenv, so it imports nothing from the
benchmark or from rerankit at module level (only the standard library): each adapter imports
its own library. It loads the model, prints one JSON line (``{"ready": true, "info": {...}}``
or ``{"error": "..."}``) and then answers, one JSON line each, the requests it reads on stdin:

    {"query": "...", "docs": ["...", ...]}  ->  {"scores": [...], "wall_s": ..., "cpu_s": ...}

``scores`` are in the order of ``docs``: raw logits where the library can return them, else
what it returns (a monotone function of the logit, which is all that Spearman needs).
``wall_s`` and ``cpu_s`` (this process, all threads) cover the library call alone. Anything a
library prints goes to stderr: stdout carries the protocol only.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

Scorer = Callable[[str, Sequence[str]], list[float]]
SHORT_DTYPE = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _versions(*packages: str) -> dict[str, str]:
    return {p: _version(p) for p in packages if _version(p) != "not installed"}


# -- adapters: each returns (scorer, info) -----------------------------------------------------


def rerankit(config: dict[str, Any]) -> tuple[Scorer, dict[str, Any]]:
    from rerankit import CrossEncoderReranker
    from rerankit._torch import resolve_dtype
    from rerankit.backends._packed import PACKED_TOKENS

    dtype = config.get("dtype", "auto")
    runtime = config.get("runtime", "torch")
    reranker = CrossEncoderReranker(
        model=config["model"], dtype=dtype, dedupe=False, runtime=runtime
    )
    reranker.warm_up()

    def score(query: str, docs: Sequence[str]) -> list[float]:
        out = [0.0] * len(docs)
        for r in reranker.rerank(query, list(docs)):
            out[r.index] = float(r.raw_score)
        return out

    resolved = str(resolve_dtype(dtype, "cpu")).removeprefix("torch.")
    resolved = SHORT_DTYPE.get(resolved, resolved)
    return score, {
        "library": "rerankit",
        "call": (
            f'CrossEncoderReranker(dtype="{dtype}").rerank'
            if runtime == "torch"
            else f'CrossEncoderReranker(runtime="{runtime}", dtype="{dtype}").rerank'
        ),
        "dtype": resolved,
        # Unpadded passes hold up to PACKED_TOKENS tokens; the padded path, batch_size pairs.
        "batch_size": (
            f"{PACKED_TOKENS:,} tokens"
            if runtime == "torch" and reranker._packs(reranker._load())
            else reranker.batch_size
        ),
        "scores": "logit",
        "versions": _versions(
            "rerankit",
            "torch",
            "transformers",
            "sentence-transformers",
            *(["openvino"] if runtime == "openvino" else []),
        ),
    }


def _st_predict(encoder: Any) -> Scorer:
    import torch

    identity = torch.nn.Identity()

    def score(query: str, docs: Sequence[str]) -> list[float]:
        logits = encoder.predict(
            [(query, d) for d in docs], show_progress_bar=False, activation_fn=identity
        )
        return [float(x) for x in logits]

    return score


def sentence_transformers(config: dict[str, Any]) -> tuple[Scorer, dict[str, Any]]:
    import torch
    from sentence_transformers import CrossEncoder

    backend = config.get("backend", "torch")
    dtype = config.get("dtype", "float32")
    kwargs: dict[str, Any] = {}
    how = ""
    if config.get("file_name"):
        kwargs["file_name"] = config["file_name"]
    if dtype == "bfloat16":
        kwargs["torch_dtype"] = torch.bfloat16
        how = 'model_kwargs={"torch_dtype": torch.bfloat16}'
    encoder = CrossEncoder(
        config["model"], device="cpu", backend=backend, model_kwargs=kwargs or None
    )
    if dtype == "bfloat16":
        first = next(encoder.parameters()).dtype
        if first != torch.bfloat16:  # the keyword was ignored: cast instead
            encoder.to(torch.bfloat16)
            how = ".to(torch.bfloat16)"
    args = [f'backend="{backend}"']
    if config.get("file_name"):
        args.append(f'model_kwargs={{"file_name": "{config["file_name"]}"}}')
    if how.startswith("model_kwargs"):
        args.append(how)
    call = f"CrossEncoder({', '.join(args)})" + (how if how.startswith(".") else "")
    precision = SHORT_DTYPE.get(dtype, dtype)
    extra: list[str] = []
    if backend == "onnx":
        precision = "int8 (dynamic)" if config.get("file_name") else "fp32"
        extra = ["optimum", "optimum-onnx", "onnxruntime"]
    elif backend == "openvino":
        import openvino

        hint = openvino.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
        hint = hint.to_string() if hasattr(hint, "to_string") else str(hint)
        precision = f"fp32 model; OpenVINO's CPU plugin computes in {hint} (its default)"
        extra = ["optimum", "optimum-intel", "openvino"]
    return _st_predict(encoder), {
        "library": "sentence-transformers",
        "call": call + ".predict",
        "dtype": precision,
        "batch_size": 32,
        "scores": "logit",
        "versions": _versions("sentence-transformers", "torch", "transformers", *extra),
    }


def haystack(config: dict[str, Any]) -> tuple[Scorer, dict[str, Any]]:
    from haystack import Document

    try:  # Haystack 3 moved it to the sentence-transformers-haystack integration
        from haystack_integrations.components.rankers.sentence_transformers import (
            SentenceTransformersSimilarityRanker,
        )
    except ImportError:
        from haystack.components.rankers import SentenceTransformersSimilarityRanker
    from haystack.utils import ComponentDevice

    ranker = SentenceTransformersSimilarityRanker(
        model=config["model"],
        device=ComponentDevice.from_str("cpu"),
        top_k=100_000,
        scale_score=False,
    )
    ranker.warm_up()

    def score(query: str, docs: Sequence[str]) -> list[float]:
        documents = [Document(id=str(i), content=d) for i, d in enumerate(docs)]
        ranked = ranker.run(query=query, documents=documents)["documents"]
        out = [0.0] * len(docs)
        for d in ranked:
            out[int(d.id)] = float(d.score)
        return out

    return score, {
        "library": "haystack-ai",
        "call": "SentenceTransformersSimilarityRanker(scale_score=False).run",
        "dtype": "fp32",
        "batch_size": ranker.batch_size,
        "scores": "logit",
        "versions": _versions(
            "haystack-ai",
            "sentence-transformers-haystack",
            "sentence-transformers",
            "torch",
            "transformers",
        ),
    }


def fastembed(config: dict[str, Any]) -> tuple[Scorer, dict[str, Any]]:
    from fastembed.common.model_description import ModelSource
    from fastembed.rerank.cross_encoder import TextCrossEncoder

    name = "rerankit-bench/minilm-cross-encoder"
    folder = Path(config["model"])
    TextCrossEncoder.add_custom_model(
        model=name,
        sources=ModelSource(hf="rerankit-bench/not-on-the-hub"),
        model_file="onnx/model.onnx",
        description="MiniLM cross-encoder with a seeded random head (rerankit bench)",
        license="apache-2.0",
        size_in_gb=0.1,
    )
    encoder = TextCrossEncoder(model_name=name, specific_model_path=str(folder), cuda=False)

    def score(query: str, docs: Sequence[str]) -> list[float]:
        return [float(x) for x in encoder.rerank(query, list(docs))]

    return score, {
        "library": "fastembed",
        "call": "TextCrossEncoder.add_custom_model + TextCrossEncoder.rerank",
        "dtype": "fp32 (ONNX Runtime)",
        "batch_size": 64,
        "scores": "logit",
        "versions": _versions("fastembed", "onnxruntime", "tokenizers"),
    }


def flashrank(config: dict[str, Any]) -> tuple[Scorer, dict[str, Any]]:
    import flashrank.Config
    from flashrank import Ranker, RerankRequest

    # FlashRank has no public way to load a local model: Ranker(model_name, cache_dir) reads
    # cache_dir/model_name/<file> where <file> comes from its own table of hosted models (a
    # missing folder is downloaded). Registering the folder's name in that table is the only way.
    folder = Path(config["model"])
    flashrank.Config.model_file_map[folder.name] = "onnx/model.onnx"
    ranker = Ranker(
        model_name=folder.name, cache_dir=str(folder.parent), max_length=config["max_length"]
    )

    def score(query: str, docs: Sequence[str]) -> list[float]:
        passages = [{"id": i, "text": d} for i, d in enumerate(docs)]
        ranked = ranker.rerank(RerankRequest(query=query, passages=passages))
        out = [0.0] * len(docs)
        for p in ranked:
            out[int(p["id"])] = float(p["score"])
        return out

    return score, {
        "library": "flashrank",
        "call": "Ranker.rerank (folder name added to flashrank.Config.model_file_map)",
        "dtype": "fp32 (ONNX Runtime)",
        "batch_size": "all",
        "scores": "sigmoid(logit)",
        "versions": _versions("flashrank", "onnxruntime", "tokenizers"),
    }


def rerankers(config: dict[str, Any]) -> tuple[Scorer, dict[str, Any]]:
    import torch
    from rerankers import Reranker

    ranker = Reranker(
        config["model"],
        model_type="cross-encoder",
        device="cpu",
        dtype=torch.float32,
        verbose=0,
    )

    def score(query: str, docs: Sequence[str]) -> list[float]:
        ranked = ranker.rank(query=query, docs=list(docs), doc_ids=list(range(len(docs))))
        out = [0.0] * len(docs)
        for r in ranked.results:
            out[int(r.document.doc_id)] = float(r.score)
        return out

    return score, {
        "library": "rerankers",
        "call": 'Reranker(model_type="cross-encoder", dtype=torch.float32).rank',
        "dtype": "fp32",
        "batch_size": getattr(ranker, "batch_size", "?"),
        "scores": "logit",
        "versions": _versions("rerankers", "torch", "transformers"),
    }


ADAPTERS: dict[str, Callable[[dict[str, Any]], tuple[Scorer, dict[str, Any]]]] = {
    "rerankit": rerankit,
    "sentence-transformers": sentence_transformers,
    "haystack": haystack,
    "fastembed": fastembed,
    "flashrank": flashrank,
    "rerankers": rerankers,
}


# -- exports (run once, in the ONNX / OpenVINO virtualenv) -------------------------------------


def export(kind: str, source: str, dest: str) -> dict[str, Any]:
    """Save ``source`` with ST's ``backend=kind`` into ``dest`` (and, for ONNX, an int8 copy)."""
    from sentence_transformers import CrossEncoder

    encoder = CrossEncoder(source, device="cpu", backend=kind)
    encoder.save_pretrained(dest)
    out: dict[str, Any] = {"files": []}
    if kind == "onnx":
        from sentence_transformers import export_dynamic_quantized_onnx_model

        config = os.environ.get("RERANKIT_BENCH_QUANT", "avx512_vnni")
        export_dynamic_quantized_onnx_model(encoder, config, dest)
        out["quantization"] = config
    out["files"] = sorted(str(p.relative_to(dest)) for p in Path(dest).rglob("*") if p.is_file())
    return out


# -- protocol ----------------------------------------------------------------------------------


def serve(system: str, config: dict[str, Any], proto: Any) -> None:
    def send(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    try:
        started = time.perf_counter()
        scorer, info = ADAPTERS[config["adapter"]](config)
        info["load_s"] = time.perf_counter() - started
        info["python"] = sys.executable
    except Exception as exc:  # reported to the orchestrator, which records it
        traceback.print_exc()
        send({"error": f"{type(exc).__name__}: {exc}"})
        return
    send({"ready": True, "system": system, "info": info})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("cmd") == "quit":
            break
        try:
            gc.collect()
            cpu = time.process_time()
            wall = time.perf_counter()
            scores = scorer(request["query"], request["docs"])
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            send({"scores": scores, "wall_s": wall, "cpu_s": cpu})
        except Exception as exc:
            traceback.print_exc()
            send({"error": f"{type(exc).__name__}: {exc}"})


def main(argv: list[str]) -> int:
    # the protocol gets its own copy of stdout; whatever the libraries print goes to stderr
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if argv and argv[0] == "--export":
        kind, source, dest = argv[1:4]
        try:
            result = {"ok": True, **export(kind, source, dest)}
        except Exception as exc:
            traceback.print_exc()
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        proto.write(json.dumps(result) + "\n")
        return 0 if result["ok"] else 1
    system, config = argv[0], json.loads(argv[1])
    serve(system, config, proto)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
