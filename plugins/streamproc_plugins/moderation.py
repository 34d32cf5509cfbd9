"""DetectModerationLabels: Rekognition's explicit / suggestive labels from two real models.

OpenNSFW (Yahoo open_nsfw) scores the whole image and gives the top-level labels; the
optional NudeNet detector (AGPL, ``streamproc[nudenet]``) finds body parts that become
child labels. Without NudeNet the operation still answers, with top-level labels only.
Mapping and calibration live in :mod:`streamproc.moderation`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from streamproc.hookspecs import hookimpl
from streamproc.images import load_image
from streamproc.inference import ModelNotInstalledError, get_session, load_manifest
from streamproc.moderation import (
    DetectModerationLabelsRequest,
    DetectModerationLabelsResponse,
    LabelScore,
    ModerationLabel,
    decode_nudenet,
    moderation_scores,
    nudenet_input,
    opennsfw_input,
    select_labels,
)
from streamproc.operations import Operation, OperationContext
from streamproc.runtime.frame_input import FrameInput
from streamproc.shapes import ModerationLabelsSection

__all__ = [
    "ModerationModels",
    "detect_moderation_labels",
    "detect_moderation_labels_in_frame",
    "streamproc_register_operations",
]

log = logging.getLogger(__name__)


class ModerationModels:
    """The two sessions; NudeNet is None when its optional wheel is not installed."""

    def __init__(self, threads: int | None = None) -> None:
        manifest = load_manifest()
        self._nsfw_spec = manifest.get("opennsfw")
        self._nsfw = get_session("opennsfw", threads)
        self._nude_spec = manifest.models.get("nudenet")
        self._nude: ort.InferenceSession | None = None
        if self._nude_spec is None:
            log.warning(
                "nudenet is not in the model manifest: moderation gives top-level labels only"
            )
            return
        try:
            self._nude = get_session("nudenet", threads)
        except ModelNotInstalledError as exc:
            log.warning(
                "DetectModerationLabels answers from OpenNSFW alone (top-level labels only): "
                "the optional AGPL nudenet model is not installed (%s)",
                exc,
            )

    @property
    def has_parts(self) -> bool:
        """Whether child labels can be produced (NudeNet installed)."""
        return self._nude is not None

    def nsfw(self, rgb: np.ndarray) -> float:
        """OpenNSFW's nsfw probability, 0-1."""
        spec = self._nsfw_spec.input
        (out,) = self._nsfw.run(None, {spec.name: opennsfw_input(rgb, spec)})
        return float(out[0][self._nsfw_spec.classes.index("nsfw")])

    def scores(self, rgb: np.ndarray) -> list[LabelScore]:
        """Every label the installed models can score, sorted."""
        nsfw = self.nsfw(rgb)
        if self._nude is None or self._nude_spec is None:
            return moderation_scores(nsfw, None)
        spec = self._nude_spec.input
        (out,) = self._nude.run(None, {spec.name: nudenet_input(rgb, spec)})
        detections = decode_nudenet(
            out,
            image_width=rgb.shape[1],
            image_height=rgb.shape[0],
            input_size=int(spec.shape[-1]),
            classes=self._nude_spec.classes,
        )
        return moderation_scores(nsfw, detections)


def _models(context: OperationContext) -> ModerationModels:
    return context.resource(  # type: ignore[no-any-return]
        "moderation.models", lambda: ModerationModels(threads=context.settings.threads)
    )


def _labels(
    rgb: np.ndarray, min_confidence: float, context: OperationContext
) -> list[ModerationLabel]:
    return [
        ModerationLabel(Confidence=s.confidence, Name=s.name, ParentName=s.parent)
        for s in select_labels(_models(context).scores(rgb), min_confidence)
    ]


def detect_moderation_labels(
    request: DetectModerationLabelsRequest, context: OperationContext
) -> DetectModerationLabelsResponse:
    image = load_image(request.Image, context.buckets)
    return DetectModerationLabelsResponse(
        ModerationLabels=_labels(image.rgb, request.MinConfidence, context)
    )


def detect_moderation_labels_in_frame(
    frame: FrameInput, request: DetectModerationLabelsRequest, context: OperationContext
) -> ModerationLabelsSection:
    """Per analysed frame: the frame's labels, as DetectModerationLabels' ``ModerationLabels``."""
    return ModerationLabelsSection(
        ModerationLabels=_labels(frame.frame.rgb, request.MinConfidence, context)
    )


@hookimpl
def streamproc_register_operations(register: Callable[[Operation], None]) -> None:
    register(
        Operation(
            name="DetectModerationLabels",
            request=DetectModerationLabelsRequest,
            response=DetectModerationLabelsResponse,
            handler=detect_moderation_labels,
            summary="Explicit Nudity and Suggestive labels (with child labels when the "
            "optional nudenet model is installed) at or above MinConfidence (default 50).",
            frame_handler=detect_moderation_labels_in_frame,
        )
    )
