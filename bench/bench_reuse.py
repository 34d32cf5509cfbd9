"""Identity reuse: embeddings per second and time per analysed frame, reuse off vs on.

One command: ``python bench/bench_reuse.py [--fps 5] [--rounds 2] [CLIP ...]`` (from the
repository root; default clips two_people and walking). Each clip of
``tests/data/visits`` runs through the real runtime (``bench/eval_visits.py``: gallery
indexed, clip streamed as a file through an embedded NATS server) with ``reuse`` off and on,
alternating, ``--rounds`` times; the fastest round per setting is reported. Embeddings per
second are per second of stream time (SFace runs / clip duration); ms per frame is the
operations and observers of an analysed frame (detection, alignment, embedding, search,
tracking). The visitor names must be the same both ways.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.eval_visits import ClipReport, evaluate_clip, load_clips  # noqa: E402


async def run(clips: list[str], fps: float, rounds: int) -> None:
    from streamproc.transport import EmbeddedNatsServer

    specs = load_clips()
    best: dict[tuple[str, bool], ClipReport] = {}
    async with EmbeddedNatsServer() as server:
        with tempfile.TemporaryDirectory(prefix="bench-reuse-") as tmp:
            for r in range(rounds):
                for clip in clips:
                    for reuse in (False, True):
                        report = await evaluate_clip(
                            clip, specs[clip], nats_url=server.url,
                            store=Path(tmp) / f"store-{clip}-{reuse}-{r}", fps=fps, reuse=reuse,
                        )
                        key = (clip, reuse)
                        if key not in best or report.analysis_ms < best[key].analysis_ms:
                            best[key] = report
    print(f"{'clip':<11} {'frames':>6}  {'embeddings/s off':>16} {'on':>6} {'ratio':>6}  "
          f"{'ms/frame off':>12} {'on':>6} {'ratio':>6}  carried  same names")
    for clip in clips:
        off, on = best[(clip, False)], best[(clip, True)]
        seconds = float(specs[clip]["duration_s"])
        same = sorted(map(str, off.final_names.values())) == sorted(
            map(str, on.final_names.values()))
        print(f"{clip:<11} {len(on.frames):>6}  {off.embedded / seconds:>16.1f} "
              f"{on.embedded / seconds:>6.1f} {on.embedded / max(1, off.embedded):>6.2f}  "
              f"{off.analysis_ms:>12.1f} {on.analysis_ms:>6.1f} "
              f"{on.analysis_ms / max(1e-9, off.analysis_ms):>6.2f}  {on.carried:>7}  "
              f"{'yes' if same else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clips", nargs="*", default=["two_people", "walking"])
    parser.add_argument("--fps", type=float, default=5.0, help="analysed frames per second")
    parser.add_argument("--rounds", type=int, default=2, help="runs per setting (fastest kept)")
    args = parser.parse_args()
    asyncio.run(run(args.clips, args.fps, args.rounds))


if __name__ == "__main__":
    main()
