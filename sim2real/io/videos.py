"""Real frames grouped by video: one rule for every command that reads real frames.

A frame file ``<video>_<frame>.jpg`` belongs to video ``<video>`` (its stem up to the last
``_``); a video file belongs to the video named by its whole stem. Held-out evaluation
splits by video, so the translator, the colour baseline and the segmenter all select
real frames with the same ``--videos`` / ``--exclude-videos`` options.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import Sim2RealError

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")


def video_of(stem: str) -> str:
    """The video of a real frame stem ``<video>_<frame>`` (the stem itself when it has no '_')."""
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def video_of_file(path: str | Path) -> str:
    """The video a real file belongs to: a video file is its own video, a frame :func:`video_of` its stem."""
    p = Path(str(path).split("#")[0])
    return p.stem if p.suffix.lower() in VIDEO_EXTS else video_of(p.stem)


def parse_videos(text: str | None, option: str = "--videos") -> list[str] | None:
    """A comma list of video names, or ``@SPLIT.json``: the ``train_videos`` of a split written
    by ``sim2real experiment`` (so a translator sees only the experiment's training videos)."""
    if text is None:
        return None
    text = text.strip()
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            data = json.loads(path.read_text())
            vids = [str(v) for v in data["train_videos"]]
        except FileNotFoundError:
            raise Sim2RealError(f"{option} {text}: {path} not found; run 'sim2real experiment' first "
                                f"(it writes OUT/split.json) or give a comma list of videos") from None
        except (OSError, ValueError, KeyError, TypeError):
            raise Sim2RealError(f"{option} {text}: {path} is not a split.json with a 'train_videos' list; "
                                f"point at OUT/split.json of 'sim2real experiment'") from None
        if not vids:
            raise Sim2RealError(f"{option} {text}: {path} lists no train_videos")
        return vids
    vids = [v.strip() for v in text.split(",") if v.strip()]
    return vids or None


def select_videos(items: list, videos: list[str] | None, exclude: list[str] | None, where: str,
                  key=video_of_file, what: str = "real frames") -> list:
    """``items`` (real files, or anything whose video ``key`` gives) of the wanted videos only;
    names a requested video that no item belongs to, and an empty result."""
    if videos is not None:
        unknown = sorted(set(videos) - {key(it) for it in items})
        if unknown:
            raise Sim2RealError(f"--videos: video(s) {', '.join(unknown)} not found in {where} "
                                f"(frames are named <video>_<frame>; video files by their name)")
        items = [it for it in items if key(it) in set(videos)]
    if exclude is not None:
        items = [it for it in items if key(it) not in set(exclude)]
    if not items:
        raise Sim2RealError(f"no {what} left in {where} after --videos/--exclude-videos")
    return items


def videos_seen(names) -> list[str]:
    """Sorted distinct videos of real file names (frames of decoded videos are ``path#i``)."""
    return sort_videos({video_of_file(n) for n in names})


def sort_videos(videos) -> list[str]:
    """Distinct video names in natural order (``2`` before ``10``)."""
    return sorted(set(videos), key=lambda s: (0, int(s), s) if s.isdigit() else (1, 0, s))  # numbers first
