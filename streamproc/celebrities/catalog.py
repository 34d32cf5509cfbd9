"""The celebrity catalog: who can be recognised, by which reference embeddings.

A catalog is plain data (Id, Name, Urls and SFace embeddings per person); matching a
face is one matrix product against every reference embedding, scored with the same
calibrated Similarity as CompareFaces and face search, so 80 means the same everywhere.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from streamproc.faces.embedder import EMBEDDING_SIZE
from streamproc.faces.similarity import similarity

__all__ = [
    "ID_PATTERN",
    "FACE_MODEL",
    "Celebrity",
    "CelebrityMatch",
    "Catalog",
    "CatalogError",
    "celebrity_id",
    "normalise_name",
]

#: The reference's pattern for celebrity Ids (non-empty here: an Id must name someone).
ID_PATTERN = re.compile(r"^[0-9A-Za-z]+$")
#: Embeddings are only comparable with the model that made them.
FACE_MODEL = "sface-2021dec"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_LENGTH = 8


class CatalogError(ValueError):
    """A catalog that cannot be used; the message says which file and why."""


def normalise_name(name: str) -> str:
    """``"  barack   OBAMA "`` and ``"Barack Obama"`` name the same person."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def celebrity_id(name: str) -> str:
    """A stable, alphanumeric Id: base62 of the SHA-256 of the normalised name.

    Deterministic, so rebuilding a catalog (or building it on another machine) keeps
    every Id a client may have stored; 8 base62 digits make collisions negligible.
    """
    digest = int.from_bytes(hashlib.sha256(normalise_name(name).encode()).digest()[:8], "big")
    digits = []
    for _ in range(_ID_LENGTH):
        digest, rest = divmod(digest, 62)
        digits.append(_BASE62[rest])
    return "".join(digits)


@dataclass(frozen=True)
class Celebrity:
    """One person: ``embeddings`` is ``N x 128`` unit vectors, one per reference photo."""

    id: str
    name: str
    urls: tuple[str, ...]
    embeddings: np.ndarray = field(repr=False)
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not ID_PATTERN.match(self.id):
            raise CatalogError(f"celebrity Id {self.id!r} does not match [0-9A-Za-z]+")
        if not self.name.strip():
            raise CatalogError(f"celebrity {self.id} has an empty Name")
        vectors = np.asarray(self.embeddings, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] != EMBEDDING_SIZE:
            raise CatalogError(
                f"celebrity {self.name!r} needs 1 or more {EMBEDDING_SIZE}-d embeddings, "
                f"got shape {vectors.shape}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(np.isfinite(vectors)) or np.any(norms < 1e-6):
            raise CatalogError(f"celebrity {self.name!r} has an invalid embedding")
        object.__setattr__(self, "embeddings", vectors / norms)
        object.__setattr__(self, "urls", tuple(self.urls))
        object.__setattr__(self, "sources", tuple(self.sources))


@dataclass(frozen=True)
class CelebrityMatch:
    celebrity: Celebrity
    similarity: float  # calibrated, 0-100


class Catalog:
    """Celebrities by Id, with all their embeddings stacked for one-shot matching."""

    def __init__(self, celebrities: Iterable[Celebrity], *, source: str = "") -> None:
        self.source = source
        self._by_id: dict[str, Celebrity] = {}
        for celeb in celebrities:
            if celeb.id in self._by_id:
                raise CatalogError(
                    f"{source or 'catalog'}: Id {celeb.id} is used by both "
                    f"{self._by_id[celeb.id].name!r} and {celeb.name!r}"
                )
            self._by_id[celeb.id] = celeb
        people = list(self._by_id.values())
        self._owners = np.array(
            [i for i, c in enumerate(people) for _ in range(len(c.embeddings))], dtype=np.int64
        )
        self._matrix = (
            np.concatenate([c.embeddings for c in people])
            if people
            else np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        )
        self._people = people

    def __len__(self) -> int:
        return len(self._people)

    def __iter__(self) -> Iterator[Celebrity]:
        return iter(self._people)

    @property
    def celebrities(self) -> Sequence[Celebrity]:
        return tuple(self._people)

    def get(self, celebrity_id: str) -> Celebrity | None:
        return self._by_id.get(celebrity_id)

    def best_match(self, embedding: np.ndarray) -> CelebrityMatch | None:
        """The most similar celebrity (best of their reference photos), or None if empty."""
        if not self._people:
            return None
        cosines = self._matrix @ np.asarray(embedding, dtype=np.float32)
        best = int(np.argmax(cosines))
        return CelebrityMatch(
            celebrity=self._people[int(self._owners[best])],
            similarity=float(similarity(float(cosines[best]))),
        )

    def merged(self, other: Catalog) -> Catalog:
        """This catalog with ``other``'s people added; the same Id is replaced by ``other``'s."""
        people = {c.id: c for c in self._people}
        people.update({c.id: c for c in other._people})
        return Catalog(people.values(), source=other.source or self.source)
