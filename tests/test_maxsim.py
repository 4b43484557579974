"""The batched MaxSim equals the per-document MaxSim it replaces."""

from __future__ import annotations

import pytest
import torch

from rerankit.backends.late_interaction import maxsim, maxsim_many


@pytest.mark.parametrize("chunk", [1, 3, 256])
def test_maxsim_many_equals_per_document_maxsim(chunk: int) -> None:
    gen = torch.Generator().manual_seed(7)

    def unit(n: int) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.randn(n, 16, generator=gen), dim=-1)

    query = unit(5)
    # Varied lengths, so padding is present; all-negative similarities must not lose to padding.
    docs = [unit(n) for n in (1, 7, 3, 12, 2)] + [-query[:1].clone()]
    expected = [maxsim(query, d) for d in docs]
    got = maxsim_many(query, docs, chunk=chunk)
    assert got == pytest.approx(expected, abs=1e-6)
    assert got[-1] < 0
    assert maxsim_many(query, []) == []
