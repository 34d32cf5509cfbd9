"""streamproc: a self-hosted vision service that speaks the Amazon Rekognition image API."""

from streamproc import errors

__version__ = "0.1.0"

__all__ = ["errors", "__version__"]
