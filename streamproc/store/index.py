"""In-memory search index: one contiguous float32 matrix of unit embeddings per collection.

Brute-force ``matrix @ query`` is a single BLAS sgemv, memory-bandwidth bound (about 28 ms
for 1M x 128 floats on the 2-core reference machine); float16 storage would halve the
bytes but numpy has no fast float16 GEMV or conversion, so it is slower, not faster.

Rows are kept in ascending store rowid order (new faces always get a larger rowid), so a
rowid's row is found by binary search; deletions are tombstones, compacted in bulk.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np

__all__ = ["FaceIndex"]

_DEAD_SCORE = np.float32(-3.0)  # below any cosine: tombstoned or excluded rows never match
# Below this many rows numpy's own single-threaded loop beats threaded BLAS sgemv, whose
# worker threads cost a scheduler wake-up (~8 ms on a busy 2-core machine) per call.
_BLAS_MIN_ROWS = 200_000
_SAMPLE_STRIDE = 64


class FaceIndex:
    """The embeddings of one collection at one store version; mutate only under ``lock``."""

    def __init__(self, collection_key: int, dimension: int, capacity: int = 0) -> None:
        self.collection_key = collection_key
        self.dimension = dimension
        self.lock = threading.Lock()
        # Sync state with the db: collection version, largest face rowid, deletion-log seq.
        self.version = -1
        self.last_face = 0
        self.last_deletion = 0
        self._n = 0
        self._matrix = np.empty((0, dimension), dtype=np.float32)
        self._rowids = np.empty(0, dtype=np.int64)
        self._scores = np.empty(0, dtype=np.float32)
        self._dead: set[int] = set()
        self._dead_positions = np.empty(0, dtype=np.int64)
        self.reset(capacity)

    def reset(self, capacity: int) -> None:
        """Drop everything (before a full reload), preallocating ``capacity`` rows."""
        self.version = -1
        self.last_face = 0
        self.last_deletion = 0
        self._n = 0
        self._matrix = np.empty((capacity, self.dimension), dtype=np.float32)
        self._rowids = np.empty(capacity, dtype=np.int64)
        self._scores = np.empty(capacity, dtype=np.float32)
        self._dead = set()
        self._dead_positions = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        """Number of live faces."""
        return self._n - len(self._dead)

    @property
    def nbytes(self) -> int:
        return self._matrix.nbytes + self._rowids.nbytes + self._scores.nbytes

    def _reserve(self, extra: int) -> None:
        needed = self._n + extra
        capacity = self._matrix.shape[0]
        if needed <= capacity:
            return
        capacity = max(needed, capacity + capacity // 2 + 1024)
        matrix = np.empty((capacity, self.dimension), dtype=np.float32)
        matrix[: self._n] = self._matrix[: self._n]
        rowids = np.empty(capacity, dtype=np.int64)
        rowids[: self._n] = self._rowids[: self._n]
        self._matrix, self._rowids = matrix, rowids
        self._scores = np.empty(capacity, dtype=np.float32)

    def append(self, rowids: np.ndarray, vectors: np.ndarray) -> None:
        """Add faces; ``rowids`` ascending and larger than any already held."""
        count = len(rowids)
        if count == 0:
            return
        if vectors.shape != (count, self.dimension):
            raise ValueError(f"expected {count} vectors of {self.dimension}, got {vectors.shape}")
        if self._n and rowids[0] <= self._rowids[self._n - 1]:
            raise ValueError("rowids must be appended in ascending order")
        self._reserve(count)
        self._matrix[self._n : self._n + count] = vectors
        self._rowids[self._n : self._n + count] = rowids
        self._n += count
        self.last_face = max(self.last_face, int(rowids[-1]))

    def _positions(self, rowids: Iterable[int]) -> np.ndarray:
        wanted = np.fromiter(rowids, dtype=np.int64)
        held = self._rowids[: self._n]
        pos = np.searchsorted(held, wanted)
        found = pos < self._n
        found[found] = held[pos[found]] == wanted[found]
        return pos[found]

    def remove(self, rowids: Iterable[int]) -> None:
        """Forget faces (unknown rowids are ignored); compacts when tombstones pile up."""
        for position in self._positions(rowids).tolist():
            self._dead.add(position)
        if len(self._dead) > max(4096, self._n // 8):
            self._compact()
        else:
            self._dead_positions = np.fromiter(self._dead, dtype=np.int64, count=len(self._dead))

    def _compact(self) -> None:
        keep = np.ones(self._n, dtype=bool)
        keep[np.fromiter(self._dead, dtype=np.int64, count=len(self._dead))] = False
        live = int(keep.sum())
        self._matrix[:live] = self._matrix[: self._n][keep]
        self._rowids[:live] = self._rowids[: self._n][keep]
        self._n = live
        self._dead.clear()
        self._dead_positions = np.empty(0, dtype=np.int64)

    def live_rowids(self) -> np.ndarray:
        """Rowids of the live faces, ascending."""
        rowids = self._rowids[: self._n]
        if not self._dead:
            return rowids.copy()
        keep = np.ones(self._n, dtype=bool)
        keep[self._dead_positions] = False
        return rowids[keep]

    def vectors_of(self, rowids: Iterable[int]) -> np.ndarray:
        """The held vectors of the given live rowids (for consistency checks)."""
        return self._matrix[self._positions(rowids)].copy()

    @staticmethod
    def _candidates(scores: np.ndarray, k: int, floor: float) -> np.ndarray:
        """Positions that include the top ``k`` scores >= floor, cheaply.

        A real threshold prunes directly. Without one, a threshold is guessed from a
        strided sample (expected to keep a few hundred rows more than k) so that only a
        small array is partitioned; if the guess keeps fewer than k, partition everything.
        """
        n = len(scores)
        if floor > -1.0:
            return np.flatnonzero(scores >= floor)
        if k >= n:
            return np.arange(n)
        if n >= 65_536:
            sample = scores[::_SAMPLE_STRIDE]
            rank = min(len(sample), k // _SAMPLE_STRIDE + 8)
            guess = np.partition(sample, len(sample) - rank)[len(sample) - rank]
            candidates = np.flatnonzero(scores >= guess)
            if len(candidates) >= k:
                return candidates
        return np.argpartition(scores, n - k)[n - k :]

    def search(
        self,
        query: np.ndarray,
        max_faces: int,
        *,
        min_score: float = -1.0,
        exclude_rowid: int | None = None,
    ) -> list[tuple[int, float]]:
        """Top ``max_faces`` (rowid, cosine) with cosine >= min_score, best first.

        Ties are broken by rowid so results are deterministic.
        """
        n = self._n
        if n == 0 or max_faces <= 0:
            return []
        scores = self._scores[:n]
        if n < _BLAS_MIN_ROWS:
            np.einsum("ij,j->i", self._matrix[:n], query, out=scores)
        else:
            np.dot(self._matrix[:n], query, out=scores)
        if self._dead:
            scores[self._dead_positions] = _DEAD_SCORE
        if exclude_rowid is not None:
            scores[self._positions([exclude_rowid])] = _DEAD_SCORE
        candidates = self._candidates(scores, max_faces, float(min_score))
        if len(candidates) > max_faces:
            cut = len(candidates) - max_faces
            candidates = candidates[np.argpartition(scores[candidates], cut)[cut:]]
        found = scores[candidates]
        live = found > _DEAD_SCORE
        candidates, found = candidates[live], found[live]
        rowids = self._rowids[candidates]
        order = np.lexsort((rowids, -found))
        return [(int(rowids[i]), float(found[i])) for i in order]
