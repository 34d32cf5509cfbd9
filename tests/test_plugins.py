"""The plugin spine: built-ins load through entry points exactly like a third party."""

from __future__ import annotations

import base64
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

from streamproc.client import Client
from streamproc.engine import Engine
from streamproc.plugin_manager import create_plugin_manager


def test_builtin_operations_come_from_entry_points() -> None:
    pm = create_plugin_manager()
    names = {name for name, _ in pm.list_name_plugin()}
    assert {"detect_faces", "compare_faces"} <= names
    engine = Engine(plugin_manager=pm)
    assert {"DetectFaces", "CompareFaces"} <= set(engine.operations)


def test_client_methods_follow_registered_operations(client: Client) -> None:
    assert {"detect_faces", "compare_faces"} <= set(dir(client))
    with pytest.raises(AttributeError):
        client.no_such_operation  # noqa: B018


def test_misspelled_hook_fails_loudly() -> None:
    from streamproc.hookspecs import hookimpl

    class Broken:
        @hookimpl
        def streamproc_register_operation(self, register):  # type: ignore[no-untyped-def]
            """Missing the final 's': pluggy's check_pending must reject it."""

    pm = create_plugin_manager(load_entry_points=False)
    pm.register(Broken())
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


async def test_third_party_plugin_package_is_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A separately installed distribution with a ``streamproc`` entry point shows up."""
    (tmp_path / "face_counter.py").write_text(
        textwrap.dedent("""
        from streamproc.hookspecs import hookimpl
        from streamproc.operations import Operation
        from streamproc.shapes import DetectFacesRequest, Request, Shape
        from streamproc.images import load_image

        class CountFacesResponse(Shape):
            FaceCount: int

        def count_faces(request, context):
            faces = context.faces.analyze(load_image(request.Image)).faces
            return CountFacesResponse(FaceCount=len(faces))

        @hookimpl
        def streamproc_register_operations(register):
            register(Operation("CountFaces", DetectFacesRequest, CountFacesResponse, count_faces))
    """)
    )
    dist = tmp_path / "face_counter-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: face-counter\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[streamproc]\nface_counter = face_counter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        local = Client(store=tmp_path / "store")
        image_path = Path(__file__).parent / "data/groups/fr_two_people.jpg"
        data = image_path.read_bytes()
        response = local.count_faces(Image={"Bytes": data})
        assert response["FaceCount"] == 2 and response["ResponseMetadata"]["HTTPStatusCode"] == 200
        # Every front door, with no extra code: the CLI ...
        from streamproc.cli.main import build_parser

        args = build_parser().parse_args(["count-faces", "--image", str(image_path)])
        assert args.operation.name == "CountFaces"
        # ... and the HTTP API (the NATS service is checked for every operation elsewhere).
        from aiohttp import web
        from aiohttp.test_utils import TestClient, TestServer

        from streamproc.http.api import RekognitionHttpApi
        from streamproc.runtime.metrics import RuntimeMetrics

        api = RekognitionHttpApi(local.engine, metrics=RuntimeMetrics().operations)
        app = web.Application(client_max_size=16 * 1024 * 1024)
        api.add_routes(app)
        async with TestClient(TestServer(app)) as http:
            reply = await http.post(
                "/", json={"Image": {"Bytes": base64.b64encode(data).decode()}},
                headers={"X-Amz-Target": "RekognitionService.CountFaces"},
            )
            assert reply.status == 200
            assert await reply.json(content_type=None) == {"FaceCount": 2}
        api.close()
    finally:
        sys.modules.pop("face_counter", None)
