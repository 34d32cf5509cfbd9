"""DetectLabels: Rekognition labels from a COCO detector and an ImageNet classifier.

NanoDet finds countable objects (Person, Car, Dog, Cup: ImageNet has no person class);
EfficientNet-Lite0 names what fills the picture (breeds, foods, scenes). Both are mapped
through the taxonomy to labels plus their parent concepts ("Tabby Cat", "Cat", "Pet",
"Mammal", "Animal") and merged in :mod:`streamproc.labels`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from streamproc.hookspecs import hookimpl
from streamproc.images import load_image
from streamproc.inference import get_session, load_manifest
from streamproc.labels import (
    NANODET_STRIDES,
    Detection,
    DetectLabelsRequest,
    DetectLabelsResponse,
    Label,
    Taxonomy,
    classifier_labels,
    decode_nanodet,
    detector_labels,
    efficientnet_input,
    load_taxonomy,
    merge,
    nanodet_input,
    select,
)
from streamproc.operations import Operation, OperationContext
from streamproc.runtime.frame_input import FrameInput
from streamproc.shapes import LabelsSection

__all__ = [
    "LabelModels",
    "detect_labels",
    "detect_labels_in_frame",
    "streamproc_register_operations",
]


class LabelModels:
    """The two sessions and the taxonomy, shared per process."""

    def __init__(self, threads: int | None = None, taxonomy: Taxonomy | None = None) -> None:
        manifest = load_manifest()
        self._det_spec = manifest.get("nanodet").input
        self._cls_spec = manifest.get("efficientnet_lite0").input
        self._det = get_session("nanodet", threads)
        self._cls = get_session("efficientnet_lite0", threads)
        self.taxonomy = taxonomy or load_taxonomy()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """NanoDet's COCO objects, boxes in image pixels."""
        x, box = nanodet_input(rgb, self._det_spec)
        names = [o.name for o in self._det.get_outputs()]
        out = dict(zip(names, self._det.run(None, {self._det_spec.name: x}), strict=True))
        per_stride = {s: (out[f"cls_{s}"], out[f"box_{s}"]) for s in NANODET_STRIDES}
        return decode_nanodet(per_stride, box, rgb.shape[1], rgb.shape[0])

    def classify(self, rgb: np.ndarray) -> np.ndarray:
        """ImageNet-1k probabilities (softmax of the logits)."""
        (logits,) = self._cls.run(
            None, {self._cls_spec.name: efficientnet_input(rgb, self._cls_spec)}
        )
        z = logits[0].astype(np.float64)
        p = np.exp(z - z.max())
        return p / p.sum()  # type: ignore[no-any-return]

    def confidences(self, rgb: np.ndarray) -> dict[str, float]:
        """Every label either model supports, with its merged confidence."""
        return merge(
            detector_labels(self.detect(rgb), self.taxonomy),
            classifier_labels(self.classify(rgb), self.taxonomy),
        )

    def labels(self, rgb: np.ndarray, min_confidence: float, max_labels: int | None) -> list[Label]:
        if max_labels == 0:
            return []
        return [
            Label(Name=name, Confidence=round(confidence, 4))
            for name, confidence in select(self.confidences(rgb), min_confidence, max_labels)
        ]


def _models(context: OperationContext) -> LabelModels:
    return context.resource(  # type: ignore[no-any-return]
        "labels.models", lambda: LabelModels(threads=context.settings.threads)
    )


def detect_labels(request: DetectLabelsRequest, context: OperationContext) -> DetectLabelsResponse:
    image = load_image(request.Image, context.buckets)
    labels = _models(context).labels(image.rgb, request.MinConfidence, request.MaxLabels)
    # Labels do not detect rotation: ROTATE_0 unless EXIF already oriented the image (null).
    return DetectLabelsResponse(
        Labels=labels, OrientationCorrection=None if image.exif_oriented else "ROTATE_0"
    )


def detect_labels_in_frame(
    frame: FrameInput, request: DetectLabelsRequest, context: OperationContext
) -> LabelsSection:
    """Per analysed frame: the frame's labels, as DetectLabels' ``Labels``."""
    return LabelsSection(
        Labels=_models(context).labels(frame.frame.rgb, request.MinConfidence, request.MaxLabels)
    )


@hookimpl
def streamproc_register_operations(register: Callable[[Operation], None]) -> None:
    register(
        Operation(
            name="DetectLabels",
            request=DetectLabelsRequest,
            response=DetectLabelsResponse,
            handler=detect_labels,
            summary="Objects, animals, foods and scenes with their parent concepts "
            "(COCO detector + ImageNet classifier) at or above MinConfidence (default 50).",
            frame_handler=detect_labels_in_frame,
        )
    )
