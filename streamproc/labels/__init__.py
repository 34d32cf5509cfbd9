"""DetectLabels' pre- and post-processing: inputs, NanoDet decoding, taxonomy, calibration.

Pure functions on pixels and model outputs, unit-tested without the plugin: the plugin
``streamproc_plugins.labels`` runs NanoDet (COCO-80 detector: Person, Car, Cup, ...) and
EfficientNet-Lite0 (ImageNet-1k classifier: breeds, foods, scenes) and merges both into
Rekognition labels with their parent concepts.
"""

from __future__ import annotations

from streamproc.shapes import DetectLabelsRequest, DetectLabelsResponse, Label

from .calibration import (
    CLASSIFIER_ANCHORS,
    DETECTOR_ANCHORS,
    classifier_confidence,
    detector_confidence,
)
from .inputs import CLASSIFIER_CROP, CLASSIFIER_RESIZE, efficientnet_input, nanodet_input
from .merging import CLASS_FLOOR, classifier_labels, detector_labels, merge, select
from .nanodet import (
    COCO_CLASSES,
    IOU_THRESHOLD,
    NANODET_SIZE,
    NANODET_STRIDES,
    REG_BINS,
    SCORE_THRESHOLD,
    Detection,
    decode_nanodet,
    distribution_distances,
    grid_centres,
)
from .taxonomy import TAXONOMY_FILE, Taxonomy, default_taxonomy_path, load_taxonomy

__all__ = [
    "CLASSIFIER_ANCHORS",
    "CLASSIFIER_CROP",
    "CLASSIFIER_RESIZE",
    "CLASS_FLOOR",
    "COCO_CLASSES",
    "DETECTOR_ANCHORS",
    "IOU_THRESHOLD",
    "NANODET_SIZE",
    "NANODET_STRIDES",
    "REG_BINS",
    "SCORE_THRESHOLD",
    "TAXONOMY_FILE",
    "DetectLabelsRequest",
    "DetectLabelsResponse",
    "Detection",
    "Label",
    "Taxonomy",
    "classifier_confidence",
    "classifier_labels",
    "decode_nanodet",
    "default_taxonomy_path",
    "detector_confidence",
    "detector_labels",
    "distribution_distances",
    "efficientnet_input",
    "grid_centres",
    "load_taxonomy",
    "merge",
    "nanodet_input",
    "select",
]
