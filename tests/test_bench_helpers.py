"""The benchmark's own helpers: the numbers it reports are only as good as these."""

from __future__ import annotations

import os

from bench.run import busy_seconds, replicate, synthetic, tree_pss_mb
from scopematrix.matrix import load_matrix
from scopematrix.model import Outcome


def test_replicated_matrix_has_k_times_the_cells_with_unique_ids():
    matrix = load_matrix()
    bigger = replicate(matrix, 3)
    assert len(bigger.cells()) == 3 * len(matrix.cells()) == len({c.id for c in bigger.cells()})


def test_synthetic_records_cover_every_outcome_with_unique_cells():
    records = synthetic(1_000)
    assert len({r.cell_id for r in records}) == 1_000
    assert {r.outcome for r in records} == set(Outcome)


def test_memory_and_cpu_probes_read_real_values():
    assert tree_pss_mb(os.getpid()) > 10
    before = busy_seconds()
    sum(i * i for i in range(2_000_000))
    assert busy_seconds() > before
