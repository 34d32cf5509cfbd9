"""CreateCollection, DeleteCollection, ListCollections, DescribeCollection."""

from __future__ import annotations

from collections.abc import Callable

from streamproc.hookspecs import hookimpl
from streamproc.operations import Operation, OperationContext
from streamproc.shapes import (
    CreateCollectionRequest,
    CreateCollectionResponse,
    DeleteCollectionRequest,
    DeleteCollectionResponse,
    DescribeCollectionRequest,
    DescribeCollectionResponse,
    ListCollectionsRequest,
    ListCollectionsResponse,
)

#: Names the face model behind a collection's vectors; a collection keeps the version it
#: was created with, so a future model change can tell old collections apart.
FACE_MODEL_VERSION = "sface-2021dec-2"


def create_collection(
    request: CreateCollectionRequest, context: OperationContext
) -> CreateCollectionResponse:
    collection = context.store.create_collection(
        request.CollectionId, face_model_version=FACE_MODEL_VERSION
    )
    return CreateCollectionResponse(
        StatusCode=200,
        CollectionArn=collection.arn,
        FaceModelVersion=collection.face_model_version,
    )


def delete_collection(
    request: DeleteCollectionRequest, context: OperationContext
) -> DeleteCollectionResponse:
    context.store.delete_collection(request.CollectionId)
    return DeleteCollectionResponse(StatusCode=200)


def list_collections(
    request: ListCollectionsRequest, context: OperationContext
) -> ListCollectionsResponse:
    collections, token = context.store.list_collections(request.MaxResults, request.NextToken)
    return ListCollectionsResponse(
        CollectionIds=[c.collection_id for c in collections],
        FaceModelVersions=[c.face_model_version for c in collections],
        NextToken=token,
    )


def describe_collection(
    request: DescribeCollectionRequest, context: OperationContext
) -> DescribeCollectionResponse:
    collection = context.store.describe_collection(request.CollectionId)
    return DescribeCollectionResponse(
        FaceCount=collection.face_count,
        FaceModelVersion=collection.face_model_version,
        CollectionARN=collection.arn,
        CreationTimestamp=collection.created_at,
    )


@hookimpl
def streamproc_register_operations(register: Callable[[Operation], None]) -> None:
    register(
        Operation(
            "CreateCollection",
            CreateCollectionRequest,
            CreateCollectionResponse,
            create_collection,
            "Create an empty face collection.",
        )
    )
    register(
        Operation(
            "DeleteCollection",
            DeleteCollectionRequest,
            DeleteCollectionResponse,
            delete_collection,
            "Delete a collection and every face in it.",
        )
    )
    register(
        Operation(
            "ListCollections",
            ListCollectionsRequest,
            ListCollectionsResponse,
            list_collections,
            "List collection ids, in creation order, paginated.",
        )
    )
    register(
        Operation(
            "DescribeCollection",
            DescribeCollectionRequest,
            DescribeCollectionResponse,
            describe_collection,
            "The face count, face model version, ARN and creation time of a collection.",
        )
    )
