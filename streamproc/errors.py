"""Rekognition error types, one class per error name.

Front doors (Client, CLI, NATS service) rely on the class name being the
Rekognition error name so that callers can match on it as they would with boto3.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

__all__ = [
    "RekognitionError",
    "AccessDeniedException",
    "ImageTooLargeException",
    "InternalServerError",
    "InvalidImageFormatException",
    "InvalidPaginationTokenException",
    "InvalidParameterException",
    "InvalidS3ObjectException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "ProvisionedThroughputExceededException",
    "ResourceAlreadyExistsException",
    "ResourceNotFoundException",
    "ServiceQuotaExceededException",
    "ThrottlingException",
    "UnrecognizedClientException",
    "ERRORS",
    "error_from_name",
]


class RekognitionError(Exception):
    """Base of every error an operation can raise; carries the wire error code."""

    http_status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        #: Set by the Client: the operation that failed, as botocore's ClientError has it.
        self.operation_name: str | None = None
        self.request_id = str(uuid.uuid4())

    @property
    def code(self) -> str:
        return type(self).__name__

    @property
    def response(self) -> dict[str, Any]:
        """What boto3's ``ClientError.response`` holds, so ``except`` blocks port as is."""
        return {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {
                "RequestId": self.request_id,
                "HTTPStatusCode": self.http_status,
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        }

    def to_dict(self) -> dict[str, str | int]:
        """The error as it travels on JSON/msgpack wires (boto3's Error shape)."""
        return {"Code": self.code, "Message": self.message, "HTTPStatusCode": self.http_status}


class AccessDeniedException(RekognitionError):
    """You are not authorized to perform the action."""


class ImageTooLargeException(RekognitionError):
    """The input image size exceeds the allowed limit."""


class InternalServerError(RekognitionError):
    """streamproc hit an unexpected failure; the request may be retried."""

    http_status = 500


class InvalidImageFormatException(RekognitionError):
    """The provided image format is not supported."""


class InvalidPaginationTokenException(RekognitionError):
    """Pagination token in the request is not valid."""


class InvalidParameterException(RekognitionError):
    """Input parameter violated a constraint."""


class InvalidS3ObjectException(RekognitionError):
    """Amazon S3 object in the request could not be read."""


class InvalidSignatureException(RekognitionError):
    """The request's AWS Signature Version 4 is malformed, expired or does not match.

    AWS JSON services answer 400 with this ``__type``; clients key on the name.
    """


class MissingAuthenticationTokenException(RekognitionError):
    """The request carries no Authorization header while the server requires signing."""


class ProvisionedThroughputExceededException(RekognitionError):
    """The number of requests exceeded the throughput limit."""


class ResourceAlreadyExistsException(RekognitionError):
    """A collection with the specified ID already exists."""


class ResourceNotFoundException(RekognitionError):
    """The collection (or face, or celebrity) specified in the request is not found."""


class ServiceQuotaExceededException(RekognitionError):
    """A limit such as the 1 million faces per collection would be exceeded."""


class ThrottlingException(RekognitionError):
    """streamproc is temporarily unable to process the request (e.g. overloaded)."""

    http_status = 500


class UnrecognizedClientException(RekognitionError):
    """The access key in the request's signature is not one the server knows."""


ERRORS: dict[str, type[RekognitionError]] = {
    cls.__name__: cls
    for cls in (
        AccessDeniedException,
        ImageTooLargeException,
        InternalServerError,
        InvalidImageFormatException,
        InvalidPaginationTokenException,
        InvalidParameterException,
        InvalidS3ObjectException,
        InvalidSignatureException,
        MissingAuthenticationTokenException,
        ProvisionedThroughputExceededException,
        ResourceAlreadyExistsException,
        ResourceNotFoundException,
        ServiceQuotaExceededException,
        ThrottlingException,
        UnrecognizedClientException,
    )
}


def error_from_name(code: str, message: str) -> RekognitionError:
    """Rebuild an error received over a wire; unknown codes become InternalServerError."""
    cls = ERRORS.get(code, InternalServerError)
    return cls(message)
