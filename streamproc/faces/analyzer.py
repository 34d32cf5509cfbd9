"""From pixels to analysed faces: the one place where the face models are combined.

Every face operation (DetectFaces, CompareFaces, IndexFaces, searches, per-frame
analysis) goes through :class:`FaceAnalyzer`, so they all see the same faces.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np

from streamproc.faces.attributes import AttributeModels, FaceAttributes
from streamproc.faces.detector import DetectedFace, FaceDetector
from streamproc.faces.edge import EdgeFace, EdgeOptions, edge_aligned_crop, recover_edge_face
from streamproc.faces.embedder import FaceEmbedder
from streamproc.faces.mesh import MIN_PRESENCE, FaceMesh, load_canonical_face
from streamproc.images import DecodedImage
from streamproc.vision.align import align_face
from streamproc.vision.appearance import appearance_signature
from streamproc.vision.edge import touches_border
from streamproc.vision.pose import pose_from_landmarks
from streamproc.vision.quality import brightness, sharpness
from streamproc.vision.rotation import rotate_points_back, rotate_upright

__all__ = ["AnalyzedFace", "ImageFaces", "FaceAnalyzer", "ReuseFilter"]

#: Given the faces (the ones big enough to embed carry an appearance ``signature``) and
#: the indices of those faces, the indices whose embedding is not needed (a stream carries
#: a tracked identity for them; streamproc.runtime.reuse).
ReuseFilter = Callable[[list["AnalyzedFace"], list[int]], Collection[int]]

#: Rotations tried when an image without EXIF shows no confident upright face.
ROTATIONS = (90, 270, 180)
#: YuNet half-finds sideways faces (score ~0.75-0.88, landmarks laid out as if upright),
#: while upright faces of a usable size score >= 0.88: below this, other turns are tried.
CONFIDENT_UPRIGHT = 0.9
#: A rotated pass is a guess about the whole image: it must find a clear face, clearly
#: better than the best upright one.
ROTATED_MIN_SCORE = 0.85
ROTATION_MARGIN = 0.05
#: How border faces are detected again on a padded canvas when a caller asks for it. Off by
#: default: on the cut-off set it moved no metric beyond noise for ~45 ms a border face
#: (README, "Close-up faces"; bench/edge_faces.py).
EDGE_FACES = EdgeOptions()


@dataclass
class AnalyzedFace:
    """One face, coordinates in pixels of the image as given (before any correction)."""

    box: np.ndarray  # x1, y1, x2, y2
    confidence: float  # 0-100
    landmarks: np.ndarray  # 5 x 2
    roll: float
    yaw: float
    pitch: float
    brightness: float
    sharpness: float
    attributes: FaceAttributes | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    #: The 468-point mesh (x, y in pixels of the image as given) when it ran and found a
    #: face; then pose comes from it, and ALL reports 25 landmarks, EyesOpen and MouthOpen.
    mesh_points: np.ndarray | None = field(default=None, repr=False)
    eye_ratio: float | None = None
    mouth_ratio: float | None = None
    #: The aligned crop's appearance fingerprint (vision.appearance), only when a reuse
    #: filter asked for it.
    signature: np.ndarray | None = field(default=None, repr=False)

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


@dataclass
class ImageFaces:
    """The faces of one image, largest first, and the detected orientation."""

    faces: list[AnalyzedFace]
    width: int
    height: int
    orientation: str | None  # None when EXIF already oriented the image


def _min_side(box: np.ndarray) -> float:
    return float(min(box[2] - box[0], box[3] - box[1]))


def _crop(rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    x1, y1 = int(max(0, np.floor(box[0]))), int(max(0, np.floor(box[1])))
    x2, y2 = int(min(w, np.ceil(box[2]))), int(min(h, np.ceil(box[3])))
    return rgb[y1:y2, x1:x2]


class FaceAnalyzer:
    """Detector, embedder and attribute models, loaded once and shared by all operations."""

    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._detector: FaceDetector | None = None
        self._embedder: FaceEmbedder | None = None
        self._attributes: AttributeModels | None = None
        self._mesh: FaceMesh | None = None

    # Models load lazily: a process that only lists collections never pays for them.
    @property
    def detector(self) -> FaceDetector:
        with self._lock:
            if self._detector is None:
                from streamproc.inference import get_session

                self._detector = FaceDetector(get_session("yunet", self._threads))
            return self._detector

    @property
    def embedder(self) -> FaceEmbedder:
        with self._lock:
            if self._embedder is None:
                from streamproc.inference import get_session

                self._embedder = FaceEmbedder(get_session("sface", self._threads))
            return self._embedder

    @property
    def attribute_models(self) -> AttributeModels:
        with self._lock:
            if self._attributes is None:
                from streamproc.inference import get_session

                self._attributes = AttributeModels(
                    get_session("age", self._threads),
                    get_session("gender", self._threads),
                    get_session("emotion", self._threads),
                )
            return self._attributes

    @property
    def face_mesh(self) -> FaceMesh:
        with self._lock:
            if self._mesh is None:
                from streamproc.inference import get_session, load_manifest

                path = load_manifest().get("face_mesh").path
                if path is None:
                    raise FileNotFoundError("the face_mesh manifest entry has no file")
                self._mesh = FaceMesh(
                    get_session("face_mesh", self._threads), load_canonical_face(path)
                )
            return self._mesh

    def _detect_oriented(
        self, image: DecodedImage, closeup: bool = True
    ) -> tuple[list[DetectedFace], int, np.ndarray]:
        """Detected faces, the rotation that made them upright, and the upright pixels."""
        faces, upright_score = self.detector.detect_scored(image.rgb, closeup=closeup)
        if image.exif_oriented or upright_score >= CONFIDENT_UPRIGHT:
            return faces, 0, image.rgb
        best, chosen = upright_score + ROTATION_MARGIN, 0
        for degrees in ROTATIONS:
            score = self.detector.best_score(rotate_upright(image.rgb, degrees))
            if score >= max(best, ROTATED_MIN_SCORE):
                best, chosen = score, degrees
        if chosen == 0:
            return faces, 0, image.rgb
        upright = rotate_upright(image.rgb, chosen)
        return self.detector.detect(upright, closeup=closeup), chosen, upright

    def _add_mesh(
        self,
        face: AnalyzedFace,
        det: DetectedFace,
        upright: np.ndarray,
        degrees: int,
        image: DecodedImage,
    ) -> None:
        """Mesh pose and points; a mesh that sees no face (presence < 0.5) is ignored."""
        result = self.face_mesh.run(upright, det.box, det.landmarks[0], det.landmarks[1])
        if result.presence < MIN_PRESENCE:
            return
        face.roll, face.yaw, face.pitch = result.roll, result.yaw, result.pitch
        face.mesh_points = rotate_points_back(
            result.points[:, :2], degrees, image.width, image.height
        )
        face.eye_ratio, face.mouth_ratio = result.eye_ratio, result.mouth_ratio

    def analyze(
        self,
        image: DecodedImage,
        *,
        attributes: bool = False,
        embeddings: bool = False,
        max_faces: int | None = None,
        detect_orientation: bool = True,
        mesh: bool = True,
        embed_min_size: float = 0.0,
        edge: EdgeOptions | None = None,
        flip_average: bool = False,
        flip_border: bool = False,
        reuse: ReuseFilter | None = None,
        closeup: bool = True,
    ) -> ImageFaces:
        """Detect faces (largest first) and describe the first ``max_faces`` of them.

        ``mesh`` runs the face mesh (~8 ms a face) for a 3-D pose and, with ALL, the dense
        landmarks, EyesOpen and MouthOpen; callers that report no pose may turn it off.
        ``edge``: how faces touching the image border are detected again on a padded
        canvas (None, the default: not at all).
        ``flip_average``: embeddings are the mean of the face and its mirror image (one
        more embedder run a face; for gallery faces).
        ``flip_border``: only faces touching the image border get a flip-averaged embedding
        (probes: a face cut off by the frame edge matches better, bench/edge_faces.py; one
        more embedder run for those faces only).
        ``reuse``: with embeddings, each face big enough to embed gets an appearance
        ``signature`` of its aligned crop, and the faces the filter returns are not embedded
        (their ``embedding`` stays None).
        ``closeup=False``: no close-up detector pass when the first finds no confident face
        (stream frames where no face can fill the picture; README, "Close-up faces").
        """
        if detect_orientation:
            detected, degrees, upright = self._detect_oriented(image, closeup)
        else:
            detected, degrees = self.detector.detect(image.rgb, closeup=closeup), 0
            upright = image.rgb
        if max_faces is not None:
            detected = detected[:max_faces]
        edges: list[EdgeFace | None] = [None] * len(detected)
        if edge is not None:
            # Faces too small to identify are not worth a detector pass.
            for i, det in enumerate(detected):
                if _min_side(det.box) >= embed_min_size:
                    edges[i] = recover_edge_face(self.detector, upright, det, edge)
            detected = [
                e.detected if e is not None else d for d, e in zip(detected, edges, strict=True)
            ]
        faces: list[AnalyzedFace] = []
        for det in detected:
            roll, yaw, pitch = pose_from_landmarks(det.landmarks)
            crop = _crop(upright, det.box)
            corners = rotate_points_back(det.box.reshape(2, 2), degrees, image.width, image.height)
            box = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
            faces.append(
                AnalyzedFace(
                    box=box,
                    confidence=min(100.0, det.score * 100.0),
                    landmarks=rotate_points_back(det.landmarks, degrees, image.width, image.height),
                    roll=roll,
                    yaw=yaw,
                    pitch=pitch,
                    brightness=brightness(crop),
                    sharpness=sharpness(crop),
                )
            )
            if mesh:
                self._add_mesh(faces[-1], det, upright, degrees, image)
        if faces and embeddings:
            # Faces under embed_min_size are left without an embedding (too small to identify).
            wanted = [i for i, d in enumerate(detected) if _min_side(d.box) >= embed_min_size]
            crops = [
                align_face(upright, detected[i].landmarks, 112)
                if (found := edges[i]) is None or edge is None
                else edge_aligned_crop(upright, found, edge)
                for i in wanted
            ]
            if reuse is not None:
                for i, crop in zip(wanted, crops, strict=True):
                    faces[i].signature = appearance_signature(crop)
                skip = set(reuse(faces, wanted))
                crops = [c for i, c in zip(wanted, crops, strict=True) if i not in skip]
                wanted = [i for i in wanted if i not in skip]
            height, width = upright.shape[:2]
            flip = [
                flip_average or (flip_border and touches_border(detected[i].box, width, height))
                for i in wanted
            ]
            for flipped in (False, True):
                chosen = [k for k, f in enumerate(flip) if f == flipped]
                if not chosen:
                    continue
                vectors = self.embedder.embed_crops([crops[k] for k in chosen], flipped)
                for k, vector in zip(chosen, vectors, strict=True):
                    faces[wanted[k]].embedding = vector
        if faces and attributes:
            predicted = self.attribute_models.predict(
                upright, [d.box for d in detected], [d.landmarks for d in detected]
            )
            for face, attrs in zip(faces, predicted, strict=True):
                face.attributes = attrs
        orientation = None if image.exif_oriented else f"ROTATE_{degrees}"
        return ImageFaces(
            faces=faces, width=image.width, height=image.height, orientation=orientation
        )
