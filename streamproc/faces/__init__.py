"""Face analysis: detection, embeddings, attributes and the calibrated similarity."""

from streamproc.faces.analyzer import AnalyzedFace, FaceAnalyzer, ImageFaces
from streamproc.faces.similarity import cosine_for_similarity, similarity

__all__ = ["AnalyzedFace", "FaceAnalyzer", "ImageFaces", "cosine_for_similarity", "similarity"]
