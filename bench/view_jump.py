"""How quickly `memtrail view` answers on a day-long log: opening it, a jump, a tick step.

A jump rebuilds the state at a tick from the last keyframe before it (timeline.Player over
seek.records_from); the alternative it replaces, a replay from the start of the recording up
to that tick, is timed beside it in the same run, on the same targets, so the ratio holds on
a busy machine where the absolute times do not.

    python bench/view_jump.py [--dir DIR] [--jumps 20]

Prints a markdown table (bench/bench_analyzer.py appends it to its own).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from memtrail import timeline  # noqa: E402
from memtrail.model import replay  # noqa: E402


def _replay_to(path: str, when: float) -> float:
    t0 = time.perf_counter()
    for tick in replay(path):
        if tick.time >= when:
            break
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(HERE, "out", "day-log"))
    ap.add_argument("--jumps", type=int, default=20)
    ap.add_argument("--replays", type=int, default=3, help="replays from the start, side by side")
    args = ap.parse_args(argv)
    opens = []
    for _ in range(3):
        t0 = time.perf_counter()
        tl, player, _feed = timeline.open_recording(args.dir)
        opens.append(time.perf_counter() - t0)
    rnd = random.Random(7)
    targets = [rnd.randrange(1, len(tl)) for _ in range(args.jumps)]
    jumps = []
    for i in targets:
        player.cache.clear()
        player._rp = None  # a cold jump: seek, skim, replay from the keyframe
        t0 = time.perf_counter()
        frame = player.frame(i)
        jumps.append(time.perf_counter() - t0)
        assert frame is not None and frame.index == i
    steps_back, steps_fwd = [], []
    base = targets[0]
    player.frame(base)
    for k in range(1, 31):
        t0 = time.perf_counter()
        player.frame(base - k)
        steps_back.append(time.perf_counter() - t0)
    player.cache.clear()
    player._rp = None
    player.frame(base)
    for k in range(1, 31):
        t0 = time.perf_counter()
        player.frame(base + k)
        steps_fwd.append(time.perf_counter() - t0)
    # Side by side: the same targets reached by a replay from the start, and by a jump.
    side = targets[:args.replays]
    full = [_replay_to(args.dir, tl.times[i]) for i in side]
    seek = []
    for i in side:
        player.cache.clear()
        player._rp = None
        t0 = time.perf_counter()
        player.frame(i)
        seek.append(time.perf_counter() - t0)
    ratio = statistics.median(f / s for f, s in zip(full, seek))
    print(f"`memtrail view` on the same log ({len(tl)} ticks; bench/view_jump.py, "
          f"{args.jumps} jumps to seeded random ticks)")
    print("")
    print("| what | median (s) | worst (s) |")
    print("| --- | ---: | ---: |")
    print(f"| open (index every tick and event, replay the newest segment) | "
          f"{statistics.median(opens):.2f} | {max(opens):.2f} |")
    print(f"| jump to a tick (seek to its keyframe, replay from there) | "
          f"{statistics.median(jumps):.3f} | {max(jumps):.3f} |")
    print(f"| a tick back after a jump | {statistics.median(steps_back):.4f} | "
          f"{max(steps_back):.4f} |")
    print(f"| a tick forward | {statistics.median(steps_fwd):.4f} | {max(steps_fwd):.4f} |")
    print(f"| replay from the start to the same tick (side by side, {len(side)}) | "
          f"{statistics.median(full):.2f} | {max(full):.2f} |")
    print("")
    print(f"A jump is {ratio:.0f}x quicker than replaying from the start (median ratio over "
          f"the same {len(side)} targets, measured side by side).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
