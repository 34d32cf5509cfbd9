"""SFace identity embeddings from aligned 112 x 112 face crops."""

from __future__ import annotations

from typing import Any

import numpy as np

from streamproc.vision.align import align_face

__all__ = ["EMBEDDING_SIZE", "FaceEmbedder"]

EMBEDDING_SIZE = 128


class FaceEmbedder:
    """Aligns each face on its five landmarks, then embeds it; vectors are L2-normalised."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._input_name = session.get_inputs()[0].name  # type: ignore[attr-defined]

    def embed(
        self, rgb: np.ndarray, landmarks: list[np.ndarray], *, flip_average: bool = False
    ) -> np.ndarray:
        """``N x 128`` float32 unit vectors, one per landmark set."""
        return self.embed_crops([align_face(rgb, lm, 112) for lm in landmarks], flip_average)

    def embed_crops(self, crops: list[np.ndarray], flip_average: bool = False) -> np.ndarray:
        """Unit vectors of aligned 112 x 112 RGB crops.

        ``flip_average``: the mean of the crop's and its mirror image's vectors (one more
        model run a face), which evens out a face half in shadow or turned away.
        """
        if not crops:
            return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        vectors = self._run(np.stack(crops))
        if flip_average:
            vectors = _unit(vectors) + _unit(self._run(np.stack(crops)[:, :, ::-1]))
        return _unit(vectors)

    def _run(self, crops: np.ndarray) -> np.ndarray:
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        return np.concatenate(
            [
                self._session.run(None, {self._input_name: blob[i : i + 1]})[0]
                for i in range(len(blob))
            ]  # type: ignore[attr-defined]
        ).astype(np.float32)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
