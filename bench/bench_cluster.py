"""Scaling out (issue 13, item 7): replication lag, failover time and request throughput.

``python bench/bench_cluster.py [--seconds 15] [--lag-seconds 15]`` starts, in a temp
directory, a real 3-server nats-server cluster on loopback (JetStream, the collection log
with replicas 3) and measures, in one run:

1. **Replication lag** under IndexFaces load: two ``streamproc serve --cluster-node`` nodes
   A and B; two client threads send IndexFaces of real photos (tests/data/faces, re-encoded
   when they run out so every request indexes a new image) to A's HTTP API with boto3. A
   thread of this process polls B's SQLite replica (read-only, every 2 ms) for new faces.
   Lag = when the face was first seen in B's store minus when A acknowledged it (0 when B
   had it before A's answer came back; a negative difference is counted, not subtracted).
2. **Request throughput**: SearchFacesByImage over HTTP, ``--concurrency`` client threads
   (default 4) for ``--seconds`` each, first all to A (1 node), then round-robin over A and
   B (2 nodes). The CPU used meanwhile by each node (its process tree), by this client and by
   the whole machine is reported, so what limits it is visible.
3. **Retention** (``--retention-faces``, default 20000): one collection of that many
   one-face IndexFaces records (random unit vectors) published to the log; then the log's
   size, a new node's rebuild by replaying every record, one snapshot (its size and time)
   and the log's size after it, and a new node's rebuild from the snapshot.
4. **Failover**: two ``streamproc run`` nodes with the same deployment (``cluster.lease_s``
   10, one looped file camera, DetectFaces at 3 fps); kill -9 of the node publishing the
   camera, time to the first frame record from the other node (read off NATS); twice (the
   killed node comes back as the standby in between).

Keep in mind: every process (3 NATS servers, 2 nodes, this client) shares this machine's
cores, so 2 nodes cannot double throughput here; the output says what that projects to.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamproc.store.schema import DB_FILENAME  # noqa: E402
from tests.http_server import ServerUrl, boto3_client, start_server, stop_server  # noqa: E402
from tests.nats_cluster import NatsCluster, running_cluster  # noqa: E402
from tests.test_cluster_leases import NodeProcess  # noqa: E402

FACES = ROOT / "tests/data/faces"
LEASE_S = 10.0
CLK = os.sysconf("SC_CLK_TCK")


# -- helpers ---------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def ms(v: float) -> str:
    return f"{v * 1000:.1f} ms"


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (workers of a node)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in
                         Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot."""
    cols = [int(c) for c in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = cols[3] + cols[4]
    return (sum(cols[:8]) - idle) / CLK


def photos() -> list[tuple[str, bytes]]:
    """Every test photo that is a JPEG (one .jpg is a WebP, which Rekognition refuses), each
    person's first ones first."""
    people = [sorted(d.glob("*.jpg")) for d in sorted(FACES.iterdir())]
    found = [p for row in itertools.zip_longest(*people) for p in row if p is not None]
    return [(f"{p.parent.name}_{p.stem}", data) for p in found
            if (data := p.read_bytes()).startswith(b"\xff\xd8")]


def variant(image: bytes, round_: int) -> bytes:
    """The same photo re-encoded (another quality): a new image to IndexFaces."""
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(image)).convert("RGB").save(out, "JPEG", quality=92 - round_)
    return out.getvalue()


def serve_node(cluster: NatsCluster, base: Path, name: str) -> ServerUrl:
    base.mkdir(parents=True)
    return start_server(base / "store", base, "--cluster-node", name,
                        "--nats", ",".join(cluster.urls))


# -- 1. replication lag --------------------------------------------------------------------


class ReplicaWatcher(threading.Thread):
    """Polls a node's SQLite replica for new faces: FaceId -> first seen (monotonic)."""

    def __init__(self, store: Path, every_s: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.db = store / DB_FILENAME
        self.every_s = every_s
        self.seen: dict[str, float] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        last = 0
        while not self.halt.is_set():
            rows = conn.execute("SELECT id, face_id FROM faces WHERE id > ?", (last,)).fetchall()
            now = time.monotonic()
            for row_id, face_id in rows:
                self.seen.setdefault(face_id, now)
                last = max(last, row_id)
            time.sleep(self.every_s)
        conn.close()


def replication_lag(url_a: str, store_b: Path, seconds: float) -> dict[str, Any]:
    client = boto3_client(url_a)
    client.create_collection(CollectionId="lag")
    images = photos()
    counter = itertools.count()
    acked: dict[str, float] = {}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    watcher = ReplicaWatcher(store_b)
    watcher.start()
    end = time.monotonic() + seconds

    def load() -> None:
        c = boto3_client(url_a, read_timeout=60)
        while time.monotonic() < end:
            i = next(counter)
            name, image = images[i % len(images)]
            if i >= len(images):
                image = variant(image, i // len(images))
            sent = time.monotonic()
            try:
                out = c.index_faces(CollectionId="lag", Image={"Bytes": image},
                                    ExternalImageId=name, MaxFaces=1)
            except Exception as exc:  # counted, reported
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                with lock:
                    errors.append(code or type(exc).__name__)
                continue
            done = time.monotonic()
            with lock:
                latencies.append(done - sent)
                for r in out["FaceRecords"]:
                    acked.setdefault(r["Face"]["FaceId"], done)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.monotonic() + 10
    while set(acked) - set(watcher.seen) and time.monotonic() < deadline:
        time.sleep(0.01)
    watcher.halt.set()
    watcher.join()
    missing = set(acked) - set(watcher.seen)
    diffs = [watcher.seen[f] - t for f, t in acked.items() if f in watcher.seen]
    lags = [max(0.0, d) for d in diffs]
    return {
        "requests": len(latencies), "faces": len(acked), "errors": errors,
        "missing_on_b": len(missing), "before_ack": sum(d <= 0 for d in diffs),
        "diff_p50": pct(diffs, 50), "lag_p50": pct(lags, 50), "lag_p99": pct(lags, 99),
        "lag_max": max(lags),
        "write_p50": pct(latencies, 50), "write_p99": pct(latencies, 99),
        "writes_per_s": len(latencies) / seconds,
    }


# -- 2. throughput ---------------------------------------------------------------------------


def throughput(urls: list[ServerUrl], seconds: float, concurrency: int) -> dict[str, Any]:
    probes = [photo for name, photo in photos() if name.endswith("_2")][:8]
    counter = itertools.count()
    done: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def client_loop() -> None:
        clients = [boto3_client(u, read_timeout=60) for u in urls]
        for c in clients:  # warm: connections, the node's first catch-up
            c.list_collections()
        start_gate.wait()
        while time.monotonic() < stop_at[0]:
            i = next(counter)
            c = clients[i % len(clients)]  # round-robin over the nodes
            sent = time.monotonic()
            try:
                c.search_faces_by_image(CollectionId="lag", FaceMatchThreshold=80,
                                        Image={"Bytes": probes[i % len(probes)]})
            except Exception as exc:
                with lock:
                    errors.append(type(exc).__name__)
                continue
            with lock:
                done.append(time.monotonic() - sent)

    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    for t in threads:
        t.start()
    nodes0 = [tree_cpu(u.process.pid) for u in urls]
    own0, busy0 = time.process_time(), machine_busy()
    stop_at[0] = time.monotonic() + seconds
    start_gate.wait()
    began = time.monotonic()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    nodes = [tree_cpu(u.process.pid) - c0 for u, c0 in zip(urls, nodes0, strict=True)]
    return {
        "rps": len(done) / wall, "p50": pct(done, 50), "p99": pct(done, 99),
        "errors": errors, "node_cores": [n / wall for n in nodes],
        "client_cores": (time.process_time() - own0) / wall,
        "machine_cores": (machine_busy() - busy0) / wall,
        "cpu_per_request": sum(nodes) / max(1, len(done)),
    }


# -- 3. failover -----------------------------------------------------------------------------


def failover(cluster: NatsCluster, root: Path, kills: int) -> list[dict[str, Any]]:
    nodes = {}
    for i, name in enumerate(("n1", "n2")):
        node = NodeProcess(root, cluster, name, i)
        config = yaml.safe_load(node.config.read_text())
        config["cluster"]["lease_s"] = LEASE_S  # the default bound
        node.config.write_text(yaml.safe_dump(config))
        nodes[name] = node
    frames: list[tuple[str, float]] = []  # (node, received: monotonic here)
    results: list[dict[str, Any]] = []

    async def run() -> None:
        nc = await nats.connect(servers=cluster.urls[2:] + cluster.urls[:2],
                                reconnect_time_wait=0.1, max_reconnect_attempts=-1)

        async def on_frame(msg: Any) -> None:
            info = json.loads(msg.data)["StreamProcessorInformation"]
            frames.append((info.get("Node", "?"), time.monotonic()))

        await nc.subscribe("streamproc.cam.frames", cb=on_frame)

        async def first_from(node: str, after: float, timeout: float) -> float:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for n, t in frames:
                    if n == node and t >= after:
                        return t
                await asyncio.sleep(0.01)
            raise RuntimeError(f"no frame record from {node} within {timeout}s")

        try:
            for node in nodes.values():
                node.start()
            deadline = time.monotonic() + 120
            while not frames:
                if time.monotonic() > deadline:
                    raise RuntimeError([n.text()[-2000:] for n in nodes.values()])
                await asyncio.sleep(0.05)
            for k in range(kills):
                await asyncio.sleep(3.0)  # a few renewals under the holder
                holder = frames[-1][0]
                other = next(n for n in nodes if n != holder)
                last = frames[-1][1]
                killed = time.monotonic()
                nodes[holder].signal(signal.SIGKILL)
                nodes[holder].proc.wait()  # type: ignore[union-attr]
                resumed = await first_from(other, killed, LEASE_S + 10)
                results.append({"killed": holder, "resumed_on": other,
                                "failover": resumed - killed, "gap": resumed - last})
                if k + 1 < kills:
                    nodes[holder].start()  # back, as the standby
                    await asyncio.sleep(8.0)  # its models loaded before the next kill
        finally:
            for node in nodes.values():
                node.stop()
            await nc.close()

    asyncio.run(run())
    return results


# -- main ------------------------------------------------------------------------------------


async def retention(cluster: NatsCluster, root: Path, faces: int) -> dict[str, Any]:
    """A big collection's log before and after a snapshot, and rebuilds from each."""
    import uuid

    import numpy as np

    from streamproc.cluster.applier import LogApplier
    from streamproc.cluster.compactor import Compactor, CompactorSettings
    from streamproc.cluster.log import CollectionLog, LogSettings
    from streamproc.cluster.records import CreateCollection, IndexFaces, encode_record
    from streamproc.cluster.snapshots import SnapshotObjects
    from streamproc.faces.versions import PIPELINES
    from streamproc.store import CollectionStore
    from streamproc.store.replica import ReplicaFace

    model = sorted(PIPELINES)[-1]
    stream, cid = "BENCH_RETENTION", "big.collection"
    nc = await nats.connect(servers=cluster.urls, max_reconnect_attempts=-1)
    js = nc.jetstream(timeout=10)
    log = CollectionLog(js, LogSettings(stream=stream, prefix="bench.retention", replicas=3))
    await log.ensure()
    objects = SnapshotObjects(js, f"{stream}_SNAPSHOTS", 3)
    rng = np.random.default_rng(0)

    def record(i: int) -> bytes:
        v = rng.standard_normal(128).astype(np.float32)
        face = ReplicaFace(str(uuid.uuid4()), (0.3, 0.2, 0.25, 0.4), 99.9,
                           v / np.linalg.norm(v), {"Quality": {"Sharpness": 80.0}})
        return encode_record(
            IndexFaces(cid, model, str(uuid.uuid4()), f"{i:064x}", f"person-{i % 500}",
                       time.time(), (face,)),
            record_id=str(uuid.uuid4()), writer="bench")

    subject = log.subject(cid)
    await js.publish(subject, encode_record(CreateCollection(cid, model, time.time()),
                                            record_id="create", writer="bench"))
    started = time.monotonic()
    for at in range(0, faces, 200):
        await asyncio.gather(*(js.publish(subject, record(i))
                               for i in range(at, min(faces, at + 200))))
    publish_s = time.monotonic() - started
    before = (await log.info()).state

    async def rebuild(name: str) -> tuple[float, LogApplier, CollectionStore]:
        store = CollectionStore(root / name)
        applier = LogApplier(store, log, face_models=PIPELINES, snapshots=objects)
        t0 = time.monotonic()
        await applier.start()
        await applier.catch_up(600)
        return time.monotonic() - t0, applier, store

    replay_s, applier, store = await rebuild("replay")
    compactor = Compactor(store, log, applier, objects, node="bench",
                          settings=CompactorSettings())
    snap = await compactor.snapshot(cid)
    assert snap is not None
    after = (await log.info()).state
    await applier.stop()
    store.close()
    from_snapshot_s, applier2, store2 = await rebuild("from-snapshot")
    held = store2.describe_collection(cid).face_count
    await applier2.stop()
    store2.close()
    await log.delete()
    await nc.close()
    return {
        "faces": faces, "held": held, "publish_s": publish_s,
        "records_before": int(before.messages), "bytes_before": int(before.bytes),
        "replay_s": replay_s, "snapshot_s": snap.seconds, "snapshot_bytes": snap.size,
        "records_after": int(after.messages), "bytes_after": int(after.bytes),
        "from_snapshot_s": from_snapshot_s,
    }


def step(what: str) -> Callable[[], None]:
    began = time.monotonic()
    print(f"... {what}", file=sys.stderr, flush=True)
    return lambda: print(f"    done in {time.monotonic() - began:.0f}s", file=sys.stderr,
                         flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="per throughput run")
    parser.add_argument("--lag-seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--retention-faces", type=int, default=20000)
    parser.add_argument("--retention-only", action="store_true",
                        help="only the retention section")
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp, \
            running_cluster(Path(tmp)) as cluster:
        root = Path(tmp)
        done = step(f"retention: a {args.retention_faces}-face collection, snapshot, rebuilds")
        kept = asyncio.run(retention(cluster, root / "retention", args.retention_faces))
        done()
        print_retention(kept)
        if args.retention_only:
            return
        done = step("two serve nodes on the 3-server cluster")
        a = serve_node(cluster, root / "a", "a")
        b = serve_node(cluster, root / "b", "b")
        done()
        try:
            done = step(f"replication lag: IndexFaces to A for {args.lag_seconds:.0f}s")
            lag = replication_lag(a, root / "b" / "store", args.lag_seconds)
            done()
            done = step(f"throughput: SearchFacesByImage, 1 node then 2, {args.seconds:.0f}s each")
            one = throughput([a], args.seconds, args.concurrency)
            two = throughput([a, b], args.seconds, args.concurrency)
            done()
        finally:
            stop_server(a.process)
            stop_server(b.process)
        done = step(f"failover: two run nodes, lease_s {LEASE_S:g}, kill -9 x{args.kills}")
        (root / "run").mkdir()
        fails = failover(cluster, root / "run", args.kills)
        done()

    print_retention(kept)
    cores = os.cpu_count() or 1
    print(f"\nbench_cluster: 3 nats-server processes (R3 log) + 2 streamproc nodes + this "
          f"client on one {cores}-core machine ({time.monotonic() - began:.0f}s)")
    print(f"replication lag (A's IndexFaces ack -> face in B's SQLite, polled every 2 ms), "
          f"{lag['faces']} faces at {lag['writes_per_s']:.1f} writes/s from 2 threads: "
          f"p50 {ms(lag['lag_p50'])}, p99 {ms(lag['lag_p99'])}, max {ms(lag['lag_max'])}; "
          f"{lag['before_ack']} of {lag['faces']} were on B before A's answer reached the client "
          f"(median B-seen minus A-acked {ms(lag['diff_p50'])}); "
          f"missing on B: {lag['missing_on_b']}; errors: {dict(Counter(lag['errors']))}. "
          f"IndexFaces on A itself: p50 {ms(lag['write_p50'])}, p99 {ms(lag['write_p99'])}")
    for label, r in (("1 node ", one), ("2 nodes", two)):
        print(f"throughput {label}: SearchFacesByImage x{args.concurrency} clients, "
              f"{r['rps']:.1f} req/s (p50 {ms(r['p50'])}, p99 {ms(r['p99'])}, "
              f"errors {dict(Counter(r['errors']))}); node CPU "
              f"{' + '.join(f'{c:.2f}' for c in r['node_cores'])} cores, client "
              f"{r['client_cores']:.2f}, whole machine {r['machine_cores']:.2f} of {cores}; "
              f"{ms(r['cpu_per_request'])} node CPU per request")
    for f in fails:
        print(f"failover (lease_s {LEASE_S:g}): kill -9 {f['killed']} -> first frame record "
              f"from {f['resumed_on']} after {f['failover']:.2f}s (gap between records "
              f"{f['gap']:.2f}s; bound {LEASE_S:g}s)")
    per_request = one["cpu_per_request"]
    other = one["machine_cores"] - sum(one["node_cores"]) - one["client_cores"]
    print(
        f"what limits it here: the {cores} cores. With 1 node the machine was "
        f"{one['machine_cores'] / cores:.0%} busy (node {sum(one['node_cores']):.2f} cores, "
        f"the boto3 client {one['client_cores']:.2f}, the NATS servers and every other process "
        f"{other:.2f}); a second node on the same cores adds workers but no CPU, so 2 nodes "
        f"give {two['rps'] / one['rps']:.2f}x here. Projection for 2 machines of {cores} "
        f"cores each, clients elsewhere: nothing is shared between the nodes but the log "
        f"(one ~1 ms catch-up request per API read), so at least 2 x {one['rps']:.1f} = "
        f"{2 * one['rps']:.0f} req/s (each node with the cores it had here), up to about "
        f"{2 * cores / per_request:.0f} req/s if a node's {ms(per_request)} of CPU per "
        f"request on {cores} cores is the only limit."
    )


def print_retention(r: dict[str, Any]) -> None:
    print(
        f"retention: {r['faces']} one-face IndexFaces records = {r['records_before']} "
        f"records, {r['bytes_before'] / 1e6:.1f} MB per server (published in "
        f"{r['publish_s']:.1f}s); a new node replays them in {r['replay_s']:.1f}s "
        f"({r['records_before'] / r['replay_s']:.0f} records/s). One snapshot: "
        f"{r['snapshot_bytes'] / 1e6:.1f} MB object in {r['snapshot_s']:.1f}s; the log "
        f"then holds {r['records_after']} record(s), {r['bytes_after'] / 1e3:.1f} kB; a new "
        f"node rebuilds from the snapshot in {r['from_snapshot_s']:.1f}s "
        f"({r['faces'] / r['from_snapshot_s']:.0f} faces/s; {r['held']} faces held)"
    )


if __name__ == "__main__":
    main()
