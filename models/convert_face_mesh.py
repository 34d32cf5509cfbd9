"""Convert MediaPipe's 468-point face mesh from its npm package to ONNX (run by hand).

The face mesh exists only as a TFLite file packed inside ``@mediapipe/face_mesh``'s
``face_mesh_solution_packed_assets.data``; converting needs TensorFlow (a 1.6 GB venv), so
the result is committed and CI checks it with golden outputs instead of re-converting.
Two conversion runs may give different bytes with identical outputs: compare outputs.

Usage (in a throwaway venv with tensorflow-cpu 2.15.1 and tf2onnx 1.16.1)::

    npm pack @mediapipe/face_mesh@0.4.1657299874      # or any copy of that tarball
    python models/convert_face_mesh.py mediapipe-face_mesh-0.4.1657299874.tgz

Writes ``models/face_mesh.onnx`` and ``models/canonical_face.npy`` (468 x 4 float32:
MediaPipe's canonical 3-D face x, y, z in cm, and the Procrustes weight of each point,
from ``geometry_pipeline_metadata_landmarks.binarypb``) and prints their sha256s.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["PACKAGE", "VERSION", "TARBALL_SHA256", "main", "parse_geometry_metadata"]

PACKAGE = "@mediapipe/face_mesh"
VERSION = "0.4.1657299874"
TARBALL_SHA256 = "c08a7e0742a326285da666cf81d77c8b6f3a181a2ee948cadaf166008e0d3bc7"
DATA = "package/face_mesh_solution_packed_assets.data"
LOADER = "package/face_mesh_solution_packed_assets_loader.js"
_MODULES = "/third_party/mediapipe/modules"
MESH = f"{_MODULES}/face_landmark/face_landmark.tflite"
GEOMETRY = f"{_MODULES}/face_geometry/data/geometry_pipeline_metadata_landmarks.binarypb"
HERE = Path(__file__).resolve().parent


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _packed_files(loader_js: str) -> dict[str, tuple[int, int]]:
    """``filename -> (start, end)`` from the Emscripten loader's ``files`` list."""
    match = re.search(r'"files":\s*(\[.*?\])', loader_js, re.S)
    if match is None:
        raise SystemExit("no files list in the loader")
    return {f["filename"]: (f["start"], f["end"]) for f in json.loads(match.group(1))}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(buf: bytes) -> list[tuple[int, int, bytes | int]]:
    """Protobuf wire fields ``(number, wire type, value)``; enough for this one message."""
    out: list[tuple[int, int, bytes | int]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, wire, value))
        elif wire == 2:
            size, pos = _varint(buf, pos)
            out.append((number, wire, buf[pos : pos + size]))
            pos += size
        elif wire == 5:
            out.append((number, wire, buf[pos : pos + 4]))
            pos += 4
        elif wire == 1:
            out.append((number, wire, buf[pos : pos + 8]))
            pos += 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _floats(values: list[bytes | int]) -> list[float]:
    result: list[float] = []
    for v in values:
        assert isinstance(v, bytes)
        result.extend(struct.unpack(f"<{len(v) // 4}f", v))  # packed or single fixed32
    return result


def parse_geometry_metadata(blob: bytes) -> np.ndarray:
    """MediaPipe's GeometryPipelineMetadata → 468 x 4 (x, y, z, Procrustes weight).

    Message layout (face_geometry/protos): 1 = Mesh3d canonical_mesh {1: vertex_type
    (0 = VERTEX_PT: x, y, z, u, v), 2: primitive_type, 3: float vertex_buffer,
    4: index_buffer}, 2 = repeated WeightedLandmarkRef procrustes_landmark_basis
    {1: landmark_id, 2: weight}, 3 = input_source.
    """
    top = _fields(blob)
    mesh = [v for n, _, v in top if n == 1]
    if len(mesh) != 1 or not isinstance(mesh[0], bytes):
        raise ValueError("no canonical mesh in the metadata")
    mesh_fields = _fields(mesh[0])
    vertex_type = next((v for n, _, v in mesh_fields if n == 1), 0)
    if vertex_type != 0:
        raise ValueError(f"unexpected vertex type {vertex_type}")
    vertices = np.array(_floats([v for n, _, v in mesh_fields if n == 3]), dtype=np.float32)
    vertices = vertices.reshape(-1, 5)[:, :3]
    weights = np.zeros(len(vertices), dtype=np.float32)
    for number, _, ref in top:
        if number != 2:
            continue
        assert isinstance(ref, bytes)
        body = {n: v for n, _, v in _fields(ref)}
        landmark = int(body.get(1, 0))  # type: ignore[arg-type]
        weight = body.get(2, b"\0\0\0\0")
        assert isinstance(weight, bytes)
        weights[landmark] = struct.unpack("<f", weight)[0]
    return np.concatenate([vertices, weights[:, None]], axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tarball", type=Path, help=f"npm pack {PACKAGE}@{VERSION}")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)

    raw = args.tarball.read_bytes()
    if _sha256(raw) != TARBALL_SHA256:
        raise SystemExit(f"{args.tarball}: sha256 {_sha256(raw)} != pinned {TARBALL_SHA256}")
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        package = json.load(tar.extractfile("package/package.json"))  # type: ignore[arg-type]
        if package["version"] != VERSION:
            raise SystemExit(f"package version {package['version']} != {VERSION}")
        loader = tar.extractfile(LOADER).read().decode()  # type: ignore[union-attr]
        data = tar.extractfile(DATA).read()  # type: ignore[union-attr]
    offsets = _packed_files(loader)
    tflite = data[slice(*offsets[MESH])]
    geometry = data[slice(*offsets[GEOMETRY])]
    print(f"tarball        {TARBALL_SHA256}")
    print(f"face_landmark.tflite {_sha256(tflite)} ({len(tflite)} bytes)")
    print(f"geometry binarypb    {_sha256(geometry)} ({len(geometry)} bytes)")

    canonical = parse_geometry_metadata(geometry)
    if canonical.shape != (468, 4):
        raise SystemExit(f"canonical face has shape {canonical.shape}, expected (468, 4)")
    args.out.mkdir(parents=True, exist_ok=True)
    canonical_path = args.out / "canonical_face.npy"
    np.save(canonical_path, canonical.astype(np.float32))

    onnx_path = args.out / "face_mesh.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        tflite_path = Path(tmp) / "face_landmark.tflite"
        tflite_path.write_bytes(tflite)
        subprocess.run(
            [sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite_path),
             "--output", str(onnx_path), "--opset", "13"],
            check=True,
        )  # fmt: skip
    print(f"face_mesh.onnx       {_sha256(onnx_path.read_bytes())}")
    print(f"canonical_face.npy   {_sha256(canonical_path.read_bytes())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
