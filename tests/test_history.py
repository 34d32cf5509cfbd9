"""The visit history: real visitor events in, a filterable timeline with snapshots out,
retention, refusal of foreign files and bad ids, the sink, and SIGKILL mid-write."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamproc.errors import InvalidParameterException, ResourceNotFoundException
from streamproc.history import (
    APPLICATION_ID,
    DB_FILENAME,
    SCHEMA_VERSION,
    ForeignHistoryError,
    HistoryError,
    HistorySink,
    HistoryVersionError,
    VisitHistory,
)
from streamproc.runtime.events import VisitorArrived, VisitorIdentified, VisitorLeft
from streamproc.shapes import BoundingBox, Shape
from streamproc.store import DB_FILENAME as STORE_DB_FILENAME
from streamproc.store import CollectionStore, StoreError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
FACE_A = DATA / "faces" / "deepface_jack" / "1.jpg"
FACE_B = DATA / "faces" / "deepface_elon" / "1.jpg"
JPEG_A = FACE_A.read_bytes()
JPEG_B = FACE_B.read_bytes()
T0 = float(int(time.time()) - 3600)  # recent: the sink prunes by the real clock
BOX = BoundingBox(Width=0.2, Height=0.3, Left=0.4, Top=0.1)


def vid(n: int) -> str:
    return f"{n:032x}"


def arrived(visitor: str, t: float = T0, stream: str = "front") -> VisitorArrived:
    return VisitorArrived(
        StreamName=stream, VisitorId=visitor, Timestamp=t, FrameNumber=1,
        FrameOffsetInSeconds=0.5, BoundingBox=BOX,
    )


def identified(
    visitor: str,
    name: str | None = None,
    *,
    t: float = T0 + 1,
    revision: int = 0,
    snapshot: bytes = JPEG_A,
    stream: str = "front",
) -> VisitorIdentified:
    return VisitorIdentified(
        StreamName=stream, VisitorId=visitor, Timestamp=t, FrameNumber=5,
        FrameOffsetInSeconds=1.5, Matched=name is not None, ExternalImageId=name,
        FaceId="0f6a2b4c-1111-4222-8333-444455556666" if name else None,
        Similarity=97.5 if name else None, FramesVoted=3, Revision=revision,
        PreviousMatched=None if revision == 0 else False, Snapshot=snapshot,
    )


def left(
    visitor: str, name: str | None = None, *, t: float = T0 + 4, stream: str = "front"
) -> VisitorLeft:
    return VisitorLeft(
        StreamName=stream, VisitorId=visitor, Timestamp=t, FrameNumber=20,
        FrameOffsetInSeconds=4.5, Matched=name is not None,
        ExternalImageId=name, DurationSeconds=4.0, FramesSeen=12,
    )


def whole_visit(
    visitor: str, t: float, name: str | None = None, stream: str = "front"
) -> list[Shape]:
    return [
        arrived(visitor, t, stream),
        identified(visitor, name, t=t + 1, stream=stream),
        left(visitor, name, t=t + 4, stream=stream),
    ]


def snapshot_files(history: VisitHistory) -> set[str]:
    return {p.name for p in history.snapshot_dir.iterdir()}


@pytest.fixture
def history(tmp_path: Path) -> Iterator[VisitHistory]:
    with VisitHistory(tmp_path / "history") as h:
        yield h


# -- one visit's events ---------------------------------------------------------------------


def test_unknown_then_named_visit(history: VisitHistory) -> None:
    v = vid(1)
    assert history.record([arrived(v), identified(v, None, snapshot=JPEG_A)]) == 2
    visit = history.visit(v)
    assert visit is not None
    assert (visit.stream, visit.arrived_at, visit.left_at) == ("front", T0, None)
    assert visit.matched is False and visit.unknown and visit.revisions == 0
    assert visit.box == BOX
    path = history.snapshot_path(v)
    assert path == history.snapshot_dir / f"{v}.jpg" and path.read_bytes() == JPEG_A
    assert visit.snapshot_bytes == len(JPEG_A)

    # Revision 1 names the visitor and replaces the snapshot; then the visitor leaves.
    history.record([identified(v, "jack", t=T0 + 2, revision=1, snapshot=JPEG_B)])
    history.record([left(v, "jack", t=T0 + 4)])
    visit = history.visit(v)
    assert visit is not None
    assert (visit.matched, visit.name, visit.matched_name) == (True, "jack", "jack")
    assert visit.revisions == 1 and visit.similarity == 97.5 and visit.face_id
    assert (visit.left_at, visit.duration_s, visit.frames_seen) == (T0 + 4, 4.0, 12)
    assert visit.last_event_at == T0 + 4 and visit.updated_at > T0
    assert history.snapshot(v) == JPEG_B and visit.snapshot_bytes == len(JPEG_B)
    assert snapshot_files(history) == {f"{v}.jpg"}  # replaced in place, no temp file left


def test_stale_revision_and_bad_snapshot_are_ignored(history: VisitHistory) -> None:
    v = vid(2)
    history.record([arrived(v), identified(v, "jack", revision=1, snapshot=JPEG_B)])
    history.record([identified(v, None, revision=0, snapshot=JPEG_A)])  # late, out of order
    visit = history.visit(v)
    assert visit is not None and visit.name == "jack" and visit.revisions == 1
    assert history.snapshot(v) == JPEG_B
    history.record([identified(v, "jack", revision=2, snapshot=b"not a jpeg")])
    assert history.snapshot(v) == JPEG_B  # the decision applies, the garbage is not kept


def test_events_without_their_arrival_still_make_a_visit(history: VisitHistory) -> None:
    history.record([left(vid(3), "jack", t=T0 + 10)])
    visit = history.visit(vid(3))
    assert visit is not None and visit.arrived_at == T0 + 6 and visit.left_at == T0 + 10
    assert visit.name == "jack" and visit.snapshot is None and history.snapshot_path(vid(3)) is None
    # A Left without a decision keeps the one the visit had.
    undecided = left(vid(4)).model_copy(update={"Matched": None})
    history.record([arrived(vid(4)), identified(vid(4), "ann"), undecided])
    assert history.visit(vid(4)).name == "ann"  # type: ignore[union-attr]


def test_non_visitor_events_are_skipped(history: VisitHistory) -> None:
    assert history.record([BOX]) == 0
    assert history.visits() == []


# -- the timeline ---------------------------------------------------------------------------


def test_filters_and_paging(history: VisitHistory) -> None:
    names = ["ann", None, "bob", None, "ann"]
    streams = ["front", "back", "garage"]
    expected = []
    events: list[Shape] = []
    for i in range(30):
        t = T0 + 100 * (i // 2)  # pairs share an arrival time: the cursor must break ties
        name, stream = names[i % 5], streams[i % 3]
        events += whole_visit(vid(100 + i), t, name, stream)
        expected.append((t, i, vid(100 + i), name, stream))
    history.record(events)
    newest_first = [e[2] for e in sorted(expected, key=lambda e: (e[0], e[1]), reverse=True)]

    assert [v.visitor_id for v in history.visits(limit=1000)] == newest_first
    pages, before = [], None
    while True:
        page = history.visits(limit=7, before=before)
        pages += [v.visitor_id for v in page]
        if len(page) < 7:
            break
        before = page[-1].cursor
    assert pages == newest_first

    back = history.visits(stream="back", limit=1000)
    assert {v.visitor_id for v in back} == {e[2] for e in expected if e[4] == "back"}
    ann = history.visits(name="ann", limit=1000)
    assert {v.visitor_id for v in ann} == {e[2] for e in expected if e[3] == "ann"}
    unknown = history.visits(unknown_only=True, limit=1000)
    assert {v.visitor_id for v in unknown} == {e[2] for e in expected if e[3] is None}
    assert all(v.unknown and v.snapshot for v in unknown)
    window = history.visits(since=T0 + 300, until=T0 + 700, limit=1000)
    assert {v.visitor_id for v in window} == {
        e[2] for e in expected if T0 + 300 <= e[0] < T0 + 700
    }
    combined = history.visits(stream="front", name="ann", since=T0 + 500, limit=2)
    assert combined and all(
        v.stream == "front" and v.name == "ann" and v.arrived_at >= T0 + 500 for v in combined
    )
    second = history.visits(stream="front", name="ann", since=T0 + 500, before=combined[-1].cursor)
    assert not {v.visitor_id for v in second} & {v.visitor_id for v in combined}

    for bad in ("", "nonsense!", "W1siYSJdXQ", "x" * 500):
        with pytest.raises(InvalidParameterException):
            history.visits(before=bad)
    for limit in (0, 1001, True):
        with pytest.raises(InvalidParameterException):
            history.visits(limit=limit)
    with pytest.raises(InvalidParameterException):
        history.visits(since=float("nan"))


def test_rename_keeps_the_services_decision(history: VisitHistory) -> None:
    v = vid(5)
    history.record(whole_visit(v, T0))
    named = history.rename(v, "aunt_may")
    assert (named.name, named.user_name, named.named_by_user) == ("aunt_may", "aunt_may", True)
    assert named.matched is False and named.matched_name is None and named.named_at
    assert [x.visitor_id for x in history.visits(name="aunt_may")] == [v]
    assert history.visits(unknown_only=True) == []
    # A later decision updates the service's columns, never the user's naming.
    history.record([identified(v, "bob", revision=1)])
    visit = history.visit(v)
    assert visit is not None and visit.matched_name == "bob" and visit.name == "aunt_may"
    reverted = history.rename(v, None)
    assert reverted.name == "bob" and not reverted.named_by_user

    with pytest.raises(ResourceNotFoundException):
        history.rename(vid(6), "ann")
    for bad in ("", "../../etc", "two words", "x" * 256):
        with pytest.raises(InvalidParameterException):
            history.rename(v, bad)


def test_close_open_visits(history: VisitHistory) -> None:
    history.record([arrived(vid(7), stream="front"), identified(vid(7), t=T0 + 3)])
    history.record([arrived(vid(8), stream="back")])
    assert history.close_open_visits("front") == 1
    visit = history.visit(vid(7))
    assert visit is not None and visit.left_at == T0 + 3 and visit.duration_s == 3.0
    assert history.visit(vid(8)).left_at is None  # type: ignore[union-attr]
    assert history.close_open_visits() == 1 and history.close_open_visits() == 0


# -- retention ------------------------------------------------------------------------------


def test_prune_by_age_deletes_old_visits_and_their_files(tmp_path: Path) -> None:
    with VisitHistory(tmp_path, retention_days=30) as history:
        now = T0 + 100 * 86400
        for i in range(6):
            history.record(whole_visit(vid(200 + i), now - (5 + 10 * i) * 86400))
        assert len(snapshot_files(history)) == 6
        assert history.prune(now) == 3  # 35, 45 and 55 days old
        kept = [v.visitor_id for v in history.visits()]
        assert kept == [vid(200), vid(201), vid(202)]
        assert snapshot_files(history) == {f"{v}.jpg" for v in kept}
        assert history.prune(now) == 0


def test_prune_gives_pages_back(history: VisitHistory) -> None:
    history.record([arrived(vid(700 + i), T0 - 90 * 86400 + i) for i in range(2000)])
    grown = history.size_bytes()
    assert history.prune(T0) == 2000
    db = sqlite3.connect(history.db_path)
    assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    db.close()
    assert history.size_bytes() < grown / 4


def test_prune_by_size_deletes_oldest_first(tmp_path: Path) -> None:
    with VisitHistory(tmp_path) as history:
        for i in range(12):
            history.record(whole_visit(vid(300 + i), T0 + i))
        full = history.size_bytes()
        assert full > 12 * len(JPEG_A)
    with VisitHistory(tmp_path, max_bytes=full - 4 * len(JPEG_A)) as history:
        deleted = history.prune(T0 + 100)
        assert 4 <= deleted <= 6
        assert history.size_bytes() <= history.max_bytes
        kept = [v.visitor_id for v in history.visits()]
        assert kept == [vid(300 + i) for i in reversed(range(deleted, 12))]  # the newest
        assert snapshot_files(history) == {f"{v}.jpg" for v in kept}


def test_prune_sweeps_orphan_files_only_when_old(history: VisitHistory) -> None:
    history.record(whole_visit(vid(10), T0))
    folder = history.snapshot_dir
    old = time.time() - 3600
    for name in (f"{vid(11)}.jpg", f".{vid(12)}.0a0b0c0d.tmp", "notes.txt"):
        (folder / name).write_bytes(JPEG_A)
        os.utime(folder / name, (old, old))
    (folder / f"{vid(13)}.jpg").write_bytes(JPEG_A)  # young: a write may be committing
    history.prune(T0)
    assert snapshot_files(history) == {f"{vid(10)}.jpg", f"{vid(13)}.jpg", "notes.txt"}


# -- refusals -------------------------------------------------------------------------------


def test_foreign_and_newer_files_are_refused(tmp_path: Path) -> None:
    not_sqlite = tmp_path / "a"
    not_sqlite.mkdir()
    (not_sqlite / DB_FILENAME).write_bytes(b"hello, this is not a database at all" * 10)
    with pytest.raises(ForeignHistoryError, match="not an SQLite"):
        VisitHistory(not_sqlite)

    other_app = tmp_path / "b"
    other_app.mkdir()
    db = sqlite3.connect(other_app / DB_FILENAME)
    db.execute("CREATE TABLE visits (x)")
    db.commit()
    db.close()
    with pytest.raises(ForeignHistoryError, match="another application"):
        VisitHistory(other_app)

    # The collection store's own db is SQLite too, but not a history.
    store_dir = tmp_path / "store"
    CollectionStore(store_dir).close()
    collections = tmp_path / "c"
    collections.mkdir()
    (collections / DB_FILENAME).write_bytes((store_dir / STORE_DB_FILENAME).read_bytes())
    with pytest.raises(ForeignHistoryError) as refused:
        VisitHistory(collections)
    assert isinstance(refused.value, StoreError)

    newer = tmp_path / "d"
    VisitHistory(newer).close()
    db = sqlite3.connect(newer / DB_FILENAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(HistoryVersionError, match="newer streamproc"):
        VisitHistory(newer)

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(HistoryError, match="not a directory"):
        VisitHistory(a_file)


def test_fresh_file_identity_and_reopen(tmp_path: Path) -> None:
    with VisitHistory(tmp_path) as history:
        history.record(whole_visit(vid(20), T0, "ann"))
    db = sqlite3.connect(tmp_path / DB_FILENAME)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    with VisitHistory(tmp_path) as history:
        assert history.visit(vid(20)).name == "ann"  # type: ignore[union-attr]
    with pytest.raises(HistoryError, match="closed"):
        history.visits()


def test_version_1_file_is_migrated_at_open(tmp_path: Path) -> None:
    """A history written before the console kept the face it indexed (schema 1) opens
    with its visits intact and gains the two columns; renaming records the face."""
    with VisitHistory(tmp_path) as history:
        history.record(whole_visit(vid(21), T0))
    db = sqlite3.connect(tmp_path / DB_FILENAME)
    db.execute("ALTER TABLE visits DROP COLUMN indexed_collection")
    db.execute("ALTER TABLE visits DROP COLUMN indexed_face_id")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with VisitHistory(tmp_path) as history:
        visit = history.visit(vid(21))
        assert visit is not None and visit.unknown and visit.indexed_face_id is None
        face = "0f6a2b4c-1111-4222-8333-444455556666"
        named = history.rename(vid(21), "ann", collection_id="home", face_id=face)
        assert (named.indexed_collection, named.indexed_face_id) == ("home", face)
        with pytest.raises(InvalidParameterException):
            history.rename(vid(21), "ann", collection_id="../x", face_id=face)
        with pytest.raises(InvalidParameterException):
            history.rename(vid(21), "ann", collection_id="home", face_id="../../x")
        assert history.rename(vid(21), "bob").indexed_face_id is None
    db = sqlite3.connect(tmp_path / DB_FILENAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == "2"
    db.close()


@pytest.mark.parametrize(
    "bad",
    ["../../../tmp/evil", "0" * 31, "0" * 33, "A" * 32, "/" + "0" * 31, "0" * 31 + "\n",
     "..", "0" * 28 + ".jpg"],
)
def test_malformed_visitor_id_is_refused(history: VisitHistory, bad: str, tmp_path: Path) -> None:
    before = set(tmp_path.rglob("*"))
    with pytest.raises(InvalidParameterException, match="VisitorId"):
        # A good event first: the whole call is refused before anything is written.
        history.record([*whole_visit(vid(30), T0), arrived(bad), identified(bad)])
    assert history.visits() == [] and snapshot_files(history) == set()
    assert set(tmp_path.rglob("*")) == before
    for method in (history.visit, history.snapshot_path, history.snapshot):
        with pytest.raises(InvalidParameterException):
            method(bad)
    with pytest.raises(InvalidParameterException):
        history.rename(bad, "ann")


def test_readers_in_other_threads_while_writing(history: VisitHistory) -> None:
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                for visit in history.visits(limit=20):
                    assert visit.left_at is not None  # each visit was written whole
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    for i in range(30):
        history.record(whole_visit(vid(400 + i), T0 + i))
    done.set()
    for reader in readers:
        reader.join()
    assert errors == [] and len(history.visits(limit=100)) == 30


# -- the sink -------------------------------------------------------------------------------


async def test_sink_writes_batches_from_the_event_loop(history: VisitHistory) -> None:
    sink = HistorySink(history)
    started = time.perf_counter()
    for i in range(20):
        sink.on_events("front", [*whole_visit(vid(500 + i), T0 + i), BOX])
        await asyncio.sleep(0)
    sink.on_status("front", "ONLINE", None)
    assert time.perf_counter() - started < 0.5  # queued, not written, on the loop
    sink.close()
    assert sink.written == 60 and sink.failures == 0 and sink.dropped == 0
    assert len(history.visits(limit=100)) == 20
    assert len(snapshot_files(history)) == 20
    sink.on_events("front", whole_visit(vid(520), T0))  # after close: dropped, no error
    sink.close()
    assert sink.dropped == 3 and history.visit(vid(520)) is None


def test_sink_closes_visits_on_stop_and_after_a_crash(history: VisitHistory) -> None:
    history.record([arrived(vid(40), stream="back")])  # left open by a "previous run"
    sink = HistorySink(history)
    sink.on_events("front", [arrived(vid(41)), identified(vid(41), t=T0 + 2)])
    assert sink.flush(10)
    assert history.visit(vid(40)).left_at == T0  # type: ignore[union-attr]
    assert history.visit(vid(41)).left_at is None  # type: ignore[union-attr]
    sink.on_status("front", "STOPPED", "source ended")
    sink.close()
    assert history.visit(vid(41)).left_at == T0 + 2  # type: ignore[union-attr]


def test_sink_never_raises_and_logs_tracebacks(
    history: VisitHistory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="streamproc.history")
    sink = HistorySink(history, prune_every_s=0.001)  # busy, so close() meets it mid-work
    sink.on_events("front", [*whole_visit(vid(50), T0), arrived("../../evil")])
    assert sink.flush(10)
    assert history.visit(vid(50)) is not None and sink.written == 3  # the good ones kept
    assert any("refused" in r.getMessage() for r in caplog.records)
    history.close()  # waits for the writer's running prune, then every write fails
    sink.on_events("front", whole_visit(vid(51), T0))
    sink.on_events("front", None)  # type: ignore[arg-type]  # even nonsense is only logged
    sink.on_status("front", "STOPPED", None)
    sink.close()
    assert sink.failures >= 2
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failed and all(r.exc_info is not None for r in failed)


def test_sink_drops_beyond_its_queue_bound_and_prunes(history: VisitHistory) -> None:
    now = T0 + 100 * 86400
    sink = HistorySink(history, max_pending_events=6, prune_every_s=0.05, clock=lambda: now)
    with history._write_lock:  # the disk stalls: the writer waits, the queue fills
        for i in range(5):
            sink.on_events("front", whole_visit(vid(600 + i), T0 + i))
            time.sleep(0.01)
        assert sink.dropped >= 6
    assert sink.flush(10)
    assert sink.written + sink.dropped == 15
    # The writer prunes about every prune_every_s: these visits are 100 days old.
    deadline = time.monotonic() + 5
    while history.visits() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert history.visits() == [] and snapshot_files(history) == set()
    sink.close()


# -- crash safety ---------------------------------------------------------------------------

WRITER = """
import sys
from collections.abc import Iterator
from pathlib import Path
from streamproc.history import VisitHistory
from streamproc.runtime.events import VisitorArrived, VisitorIdentified, VisitorLeft
from streamproc.shapes import BoundingBox

directory, round_, face_a, face_b = sys.argv[1:]
a, b = Path(face_a).read_bytes(), Path(face_b).read_bytes()
common = dict(StreamName="front", FrameNumber=1, FrameOffsetInSeconds=0.0)
history = VisitHistory(directory)
print("ready", flush=True)
i = 0
while True:
    v = f"{int(round_):08x}{i:024x}"
    t = 1.7e9 + int(round_) * 1e5 + i
    box = BoundingBox(Width=0.2, Height=0.2, Left=0.1, Top=0.1)
    history.record([
        VisitorArrived(VisitorId=v, Timestamp=t, BoundingBox=box, **common),
        VisitorIdentified(VisitorId=v, Timestamp=t, Matched=False, FramesVoted=2, Snapshot=a,
                          **common),
    ])
    history.record([
        VisitorIdentified(VisitorId=v, Timestamp=t + 1, Matched=True, ExternalImageId="jack",
                          Similarity=99.0, FramesVoted=4, Revision=1, Snapshot=b, **common),
        VisitorLeft(VisitorId=v, Timestamp=t + 2, Matched=True, ExternalImageId="jack",
                    DurationSeconds=2.0, FramesSeen=9, **common),
    ])
    print(v, flush=True)  # only once both transactions committed
    i += 1
"""


@pytest.mark.slow
def test_sigkill_mid_write_keeps_every_committed_visit(tmp_path: Path) -> None:
    rng = random.Random(7)
    committed: list[str] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for round_ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(round_), str(FACE_A), str(FACE_B)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        committed.append(child.stdout.readline().strip())  # at least one visit per round
        time.sleep(rng.uniform(0.05, 0.3))
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
        committed += [line.strip() for line in child.stdout.read().splitlines()]
        child.stdout.close()

        db = sqlite3.connect(tmp_path / DB_FILENAME)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        with VisitHistory(tmp_path) as history:
            for v in committed:
                visit = history.visit(v)
                assert visit is not None, v
                assert (visit.name, visit.revisions) == ("jack", 1)
                assert visit.left_at == visit.arrived_at + 2
                assert history.snapshot(v) == JPEG_B
            # Every snapshot file, named or orphaned by the kill, is whole.
            for path in history.snapshot_dir.glob("*.jpg"):
                assert path.read_bytes() in (JPEG_A, JPEG_B), path
            for visit in history.visits(limit=1000):
                if visit.snapshot is not None:
                    assert history.snapshot(visit.visitor_id) in (JPEG_A, JPEG_B)
    assert len(committed) > 3


async def test_a_runtime_keeps_its_visits(tmp_path: Path) -> None:
    """A deployment keeps every visit under <store>/history by default: the elon clip gives
    one visit named elon, with a snapshot IndexFaces accepts."""
    from streamproc.client import Client
    from streamproc.runtime.deployment import parse_deployment
    from streamproc.runtime.runtime import Runtime

    root = Path(__file__).resolve().parents[1]
    store = tmp_path / "store"
    with Client(store=store) as client:
        client.create_collection(CollectionId="household")
        for photo in sorted((root / "examples/household/elon").iterdir()):
            client.index_faces(CollectionId="household", Image={"Bytes": photo.read_bytes()},
                               ExternalImageId="elon", MaxFaces=1)
    deployment = parse_deployment({
        "store": str(store),
        "streams": [{"id": "front-door", "url": str(root / "tests/data/visits/elon.mp4"),
                     "fps": 5, "realtime": False,
                     "operations": [{"operation": "SearchFacesByImage",
                                     "CollectionId": "household"}]}],
    })
    await Runtime(deployment).run(until_done=True)
    with VisitHistory(store / "history") as history:
        (visit,) = history.visits()
        snapshot = history.snapshot(visit.visitor_id)
    assert visit.stream == "front-door" and visit.name == "elon" and visit.left_at is not None
    assert snapshot is not None
    with Client(store=store) as client:
        client.create_collection(CollectionId="from-history")
        indexed = client.index_faces(CollectionId="from-history", Image={"Bytes": snapshot})
    assert len(indexed["FaceRecords"]) == 1
