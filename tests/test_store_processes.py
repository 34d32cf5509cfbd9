"""Crash and multi-process guarantees of the store, with real processes and real SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamproc.store import CollectionStore
from tests.store_worker import COLLECTION, check_consistency, open_store, vector

ROOT = Path(__file__).resolve().parents[1]


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store_worker", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def kill9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"worker exited early (rc={proc.poll()})"
    return line.strip()


@pytest.mark.slow
def test_returned_index_faces_survives_kill9(tmp_path: Path) -> None:
    """(1) Once index_faces returned, the face is on disk: kill -9 right after cannot lose it."""
    face_ids = []
    for seed in range(3):
        child = spawn("index-one", str(tmp_path), str(seed))
        face_ids.append(read_line(child))
        kill9(child)  # immediately after reading the FaceId
        with CollectionStore(tmp_path) as store:
            for face_id in face_ids:
                assert store.get_face(COLLECTION, face_id).face_id == face_id
    assert check_consistency(tmp_path) == 3


@pytest.mark.slow
def test_kill9_mid_write_leaves_store_consistent(tmp_path: Path) -> None:
    """(2) Killing a writer at random moments never leaves a partial face or image behind."""
    rng = random.Random(1234)
    with open_store(tmp_path) as survivor:  # a long-lived process-wide view, kept in sync
        previous = 0
        for round_ in range(12):
            child = spawn("churn", str(tmp_path), str(round_ + 1))
            assert read_line(child) == "ready"
            time.sleep(rng.uniform(0.05, 0.4))
            kill9(child)
            faces = check_consistency(tmp_path)  # reopens and rebuilds the index from disk
            assert faces == survivor.describe_collection(COLLECTION).face_count
            index = survivor.refresh_index(COLLECTION)
            assert index is not None and len(index) == faces
            listed, token = survivor.list_faces(COLLECTION, max_results=4096)
            assert token is None and len(listed) == faces
            previous = max(previous, faces)
        assert previous > 0  # the children did write


@pytest.mark.slow
def test_writer_and_searcher_processes_see_each_other(tmp_path: Path) -> None:
    """(3) One process indexes while another searches; each sees the other's commits."""
    with open_store(tmp_path) as store:
        searcher = spawn("search", str(tmp_path))
        writer = spawn("index-many", str(tmp_path), "1", "40")
        try:
            assert read_line(searcher) == "ready"
            assert searcher.stdin is not None
            # Every face the writer reports committed is found by the searcher's next search.
            ids = {}
            for _ in range(40):
                seed, face_id = read_line(writer).split()
                ids[int(seed)] = face_id
                searcher.stdin.write(f"{seed}\n")
                found, score = read_line(searcher).split()
                assert found == face_id and float(score) > 0.999
                # ...and by this process's in-memory index too.
                assert store.search(COLLECTION, vector(int(seed)), max_faces=1)[0][0].face_id == (
                    face_id
                )
            assert writer.wait(timeout=30) == 0
            # A deletion here is seen by the other process's next search.
            store.delete_faces(COLLECTION, [ids[7]])
            searcher.stdin.write("7\n")
            found, score = read_line(searcher).split()
            assert found != ids[7] and float(score) < 0.5
        finally:
            if searcher.poll() is None:
                kill9(searcher)
            if writer.poll() is None:
                kill9(writer)
    assert check_consistency(tmp_path) == 39


@pytest.mark.slow
def test_concurrent_writers_do_not_corrupt(tmp_path: Path) -> None:
    """Two churning writers plus a searching reader on one store, then a kill -9 of both."""
    with open_store(tmp_path) as reader:
        children = [spawn("churn", str(tmp_path), str(seed)) for seed in (101, 202)]
        try:
            for child in children:
                assert read_line(child) == "ready"
            deadline = time.monotonic() + 1.5
            searches = 0
            while time.monotonic() < deadline:
                reader.search(COLLECTION, vector(searches), max_faces=5)
                searches += 1
        finally:
            for child in children:
                kill9(child)
        faces = check_consistency(tmp_path)
        assert faces > 0 and searches > 0
        index = reader.refresh_index(COLLECTION)
        assert index is not None and len(index) == faces
