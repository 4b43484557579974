"""The demo's Qdrant collection: BM25 sparse and MiniLM dense vectors, written idempotently."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rerankit._deps import require
from rerankit.qdrant import open_client, point_id
from rerankit.sparse import BM25Encoder

DENSE = "dense"
SPARSE = "bm25"

__all__ = ["DENSE", "SPARSE", "DemoStore", "Hit", "open_client", "point_id"]


@dataclass
class Hit:
    doc_id: str
    text: str
    score: float
    rank: int


class DemoStore:
    """Builds and searches the demo collection."""

    def __init__(self, client: Any, collection: str, texts: Sequence[str], embed: Any) -> None:
        self.client = client
        self.collection = collection
        self.bm25 = BM25Encoder.fit(texts)
        self.embed = embed

    def build(self, passages: Sequence[tuple[str, str]]) -> None:
        models = require(
            "qdrant_client.models",
            extra="qdrant",
            feature="The Qdrant store",
            package="qdrant-client",
        )
        dense = self.embed([text for _, text in passages])
        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config={
                    DENSE: models.VectorParams(size=len(dense[0]), distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
        points = []
        for (doc_id, text), vector in zip(passages, dense, strict=True):
            sparse = self.bm25.encode_document(text)
            points.append(
                models.PointStruct(
                    id=point_id(text),
                    vector={
                        DENSE: list(vector),
                        SPARSE: models.SparseVector(indices=sparse.indices, values=sparse.values),
                    },
                    payload={"doc_id": doc_id, "text": text},
                )
            )
        self.client.upsert(self.collection, points=points, wait=True)

    def search(self, query: str, *, limit: int, using: str = SPARSE) -> list[Hit]:
        models = require(
            "qdrant_client.models",
            extra="qdrant",
            feature="The Qdrant store",
            package="qdrant-client",
        )
        if using == SPARSE:
            sparse = self.bm25.encode_query(query)
            vector: Any = models.SparseVector(indices=sparse.indices, values=sparse.values)
        else:
            vector = list(self.embed([query])[0])
        response = self.client.query_points(
            self.collection, query=vector, using=using, limit=limit, with_payload=True
        )
        return [
            Hit(doc_id=p.payload["doc_id"], text=p.payload["text"], score=float(p.score), rank=i)
            for i, p in enumerate(response.points)
        ]
