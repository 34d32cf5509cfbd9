"""Evaluate visits on labelled clips: are indexed people named, quickly and never wrongly?

One command: ``python bench/eval_visits.py [--fps 5] [CLIP ...]`` (from the repository
root). Each clip of ``tests/data/visits/clips.json`` runs through the real runtime as a
user would: its gallery is indexed with IndexFaces into a fresh collection, the clip is
streamed as a deterministic file source (``realtime: false``) through an embedded NATS
server, and the frame records and visitor events are read back from NATS. Per clip it
reports visits, correct names, wrong names, identity switches, seconds from first
appearance to the correct name, and the delay after the first frame whose per-frame search
already returned the right person. ``tests/test_visits.py`` asserts on the same reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLIPS = ROOT / "tests" / "data" / "visits"

__all__ = ["ClipReport", "PersonReport", "evaluate", "evaluate_clip", "load_clips"]


@dataclass
class PersonReport:
    """One ground-truth appearance of one person."""

    name: str | None
    start_s: float
    end_s: float
    named_at: float | None = None  # first VisitorIdentified with the right name
    first_match_at: float | None = None  # first frame whose search returned the right person
    unknown_announcements: int = 0  # VisitorIdentified "unknown" first decisions in the span

    @property
    def seconds_to_name(self) -> float | None:
        return None if self.named_at is None else self.named_at - self.start_s

    @property
    def delay_after_first_match(self) -> float | None:
        if self.named_at is None or self.first_match_at is None:
            return None
        return self.named_at - self.first_match_at


@dataclass
class ClipReport:
    clip: str
    frames: list[dict[str, Any]] = field(repr=False)
    events: list[dict[str, Any]] = field(repr=False)
    people: list[PersonReport] = field(default_factory=list)
    observer_ms: float = 0.0  # mean time per analysed frame in the observers (tracking)
    idle_frames: int = 0  # frames motion gating left unanalysed
    embedded: int = 0  # faces embedded (SFace runs)
    carried: int = 0  # faces that carried a tracked identity instead (identity reuse)
    analysis_ms: float = 0.0  # mean time per analysed frame (operations and observers)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("EventType") == kind]

    @property
    def visits(self) -> int:
        return len(self.of_kind("VisitorArrived"))

    @property
    def final_names(self) -> dict[str, str | None]:
        """The latest decision per visit (VisitorLeft carries the final one)."""
        names: dict[str, str | None] = {}
        for e in self.of_kind("VisitorIdentified"):
            names[e["VisitorId"]] = e.get("ExternalImageId") if e["Matched"] else None
        return names

    @property
    def correct(self) -> int:
        """Named people of the ground truth announced with their name."""
        return sum(1 for p in self.people if p.name is not None and p.named_at is not None)

    @property
    def named_people(self) -> int:
        return sum(1 for p in self.people if p.name is not None)

    @property
    def wrong(self) -> list[dict[str, Any]]:
        """Name announcements for someone who is not on screen at that time."""
        out = []
        for e in self.of_kind("VisitorIdentified"):
            if not e["Matched"]:
                continue
            t = e["FrameOffsetInSeconds"]
            if not any(p.name == e["ExternalImageId"] and p.start_s - 0.5 <= t <= p.end_s + 0.5
                       for p in self.people):
                out.append(e)
        return out

    @property
    def switches(self) -> int:
        """Revisions from one name to another within a visit."""
        return sum(1 for e in self.of_kind("VisitorIdentified")
                   if e.get("Revision", 0) > 0 and e.get("PreviousMatched"))

    @property
    def unknown_announcements(self) -> int:
        return sum(1 for e in self.of_kind("VisitorIdentified")
                   if not e["Matched"] and e.get("Revision", 0) == 0)

    def summary(self) -> str:
        to_name = ", ".join(
            f"{p.name} {p.seconds_to_name:.1f} s (+{p.delay_after_first_match:.1f} s after "
            f"first match)" if p.seconds_to_name is not None and
            p.delay_after_first_match is not None
            else f"{p.name} {'never' if p.named_at is None else f'{p.seconds_to_name:.1f} s'}"
            for p in self.people if p.name is not None
        ) or "-"
        unknown_truth = sum(1 for p in self.people if p.name is None)
        return (
            f"{self.clip:<11} visits {self.visits:>2}  correct {self.correct}/"
            f"{self.named_people}  wrong {len(self.wrong)}  switches {self.switches}  "
            f"unknown {self.unknown_announcements} (truth {unknown_truth})  "
            f"frames {len(self.frames)} (+{self.idle_frames} idle)  "
            f"embedded {self.embedded} carried {self.carried}  "
            f"observers {self.observer_ms:.2f} ms/frame  "
            f"to name: {to_name}"
        )


def load_clips(path: Path = CLIPS) -> dict[str, dict[str, Any]]:
    return json.loads((path / "clips.json").read_text())  # type: ignore[no-any-return]


def _score(report: ClipReport, truth: list[dict[str, Any]]) -> None:
    for visit in truth:
        person = PersonReport(visit.get("name"), float(visit["start_s"]), float(visit["end_s"]))
        span = (person.start_s - 0.5, person.end_s + 0.5)
        if person.name is not None:
            named = [
                e["FrameOffsetInSeconds"] for e in report.of_kind("VisitorIdentified")
                if e["Matched"] and e.get("ExternalImageId") == person.name
                and span[0] <= e["FrameOffsetInSeconds"] <= span[1]
            ]
            person.named_at = min(named) if named else None
            for record in report.frames:
                t = record["InputInformation"]["FrameOffsetInSeconds"]
                if not span[0] <= t <= span[1]:
                    continue
                if any(r["MatchedFaces"] and
                       r["MatchedFaces"][0]["Face"].get("ExternalImageId") == person.name
                       for r in record.get("FaceSearchResponse", [])):
                    person.first_match_at = t
                    break
        else:
            person.unknown_announcements = sum(
                1 for e in report.of_kind("VisitorIdentified")
                if not e["Matched"] and e.get("Revision", 0) == 0
                and span[0] <= e["FrameOffsetInSeconds"] <= span[1]
            )
        report.people.append(person)


async def evaluate_clip(
    clip: str,
    spec: dict[str, Any],
    *,
    nats_url: str,
    store: Path,
    fps: float = 5.0,
    events: dict[str, Any] | None = None,
    motion: bool = True,
    reuse: bool = True,
) -> ClipReport:
    """Index the clip's gallery, stream the clip, and score what a subscriber received."""
    import nats

    from streamproc.client import Client
    from streamproc.runtime.deployment import parse_deployment
    from streamproc.runtime.runtime import Runtime
    from streamproc.transport.codec import detect_codec

    collection = f"visits-{clip}".replace("_", "-")
    client = Client(store=store)
    try:
        client.create_collection(CollectionId=collection)
        for name, images in spec.get("gallery", {}).items():
            for image in images:
                client.index_faces(
                    CollectionId=collection,
                    Image={"Bytes": (ROOT / image).read_bytes()},
                    ExternalImageId=name,
                    MaxFaces=1,
                )
    finally:
        client.close()
    stream_id = collection
    deployment = parse_deployment({
        "nats": {"url": nats_url},
        "store": str(store),
        "service": False,
        "streams": [{
            "id": stream_id,
            "url": str(CLIPS / spec["file"]),
            "fps": fps,
            "realtime": False,
            "operations": [{"operation": "SearchFacesByImage", "CollectionId": collection}],
            "motion": {"enabled": motion},
            "reuse": {"enabled": reuse},
            **({"events": events} if events else {}),
        }],
    })
    frames: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []
    nc = await nats.connect(nats_url)
    try:
        for kind, target in (("frames", frames), ("events", received)):
            async def collect(msg: Any, target: list[dict[str, Any]] = target) -> None:
                target.append(detect_codec(msg.data, msg.headers).decode(msg.data))

            await nc.subscribe(f"streamproc.{stream_id}.{kind}", cb=collect)
        await nc.flush()
        runtime = Runtime(deployment)
        await runtime.run(until_done=True)
        stats = runtime.streams[stream_id].stats
        observer_ms = 1000 * stats.observer_seconds / max(1, stats.analysed)
        idle_frames = stats.idle_skipped
        embedded, carried = stats.embedded, stats.carried
        analysis_ms = 1000 * stats.analysis_seconds / max(1, stats.analysed)
        await nc.flush()
        for _ in range(50):  # the last records are in flight
            if any(e.get("EventType") == "VisitorLeft" for e in received[-1:]) or not received:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    finally:
        await nc.close()
    frames.sort(key=lambda r: r["InputInformation"]["FrameNumber"])
    report = ClipReport(clip, frames, received, observer_ms=observer_ms, idle_frames=idle_frames,
                        embedded=embedded, carried=carried, analysis_ms=analysis_ms)
    _score(report, spec.get("visits", []))
    return report


async def evaluate(
    clips: list[str] | None = None,
    *,
    fps: float = 5.0,
    nats_url: str | None = None,
    motion: bool = True,
    reuse: bool = True,
) -> list[ClipReport]:
    from streamproc.transport import EmbeddedNatsServer

    specs = load_clips()
    server = None
    if nats_url is None:
        server = EmbeddedNatsServer()
        nats_url = await server.start_async()
    try:
        with tempfile.TemporaryDirectory(prefix="eval-visits-") as tmp:
            return [
                await evaluate_clip(name, specs[name], nats_url=nats_url,
                                    store=Path(tmp) / "store", fps=fps, motion=motion,
                                    reuse=reuse)
                for name in (clips or list(specs))
            ]
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clips", nargs="*", help="clip names (default: all)")
    parser.add_argument("--fps", type=float, default=5.0, help="analysed frames per second")
    parser.add_argument("--events", action="store_true", help="print every visitor event")
    parser.add_argument("--no-motion", action="store_true", help="analyse every frame")
    parser.add_argument("--no-reuse", action="store_true", help="embed every face every frame")
    args = parser.parse_args()
    reports = asyncio.run(evaluate(args.clips or None, fps=args.fps, motion=not args.no_motion,
                                   reuse=not args.no_reuse))
    for report in reports:
        print(report.summary())
        if args.events:
            for e in report.events:
                print(f"    {e['FrameOffsetInSeconds']:5.1f} s {e['EventType']:<17} "
                      f"{e['VisitorId'][:8]} {e.get('ExternalImageId')} "
                      f"rev {e.get('Revision', '')} {e.get('Similarity', '')}")
    total_named = sum(r.named_people for r in reports)
    print(f"all clips: correct {sum(r.correct for r in reports)}/{total_named}, wrong "
          f"{sum(len(r.wrong) for r in reports)}, switches {sum(r.switches for r in reports)}")


if __name__ == "__main__":
    main()
