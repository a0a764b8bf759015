"""``hands-detect``: hand detection on a video file, an image folder, an image or a camera, from
the command line (the flags of ``DetectOptions``); one error line or the report, and the exit
code (0, 2 for an error, 130 / 143 after Ctrl-C / SIGTERM with the outputs closed).

    hands-detect --source video.mp4 --output out.mp4 --json out.jsonl
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from handspot.backends import BACKENDS, Backend, runnable
from handspot.errors import UserError, fail
from handspot.files import stream_fd
from handspot.options import add_options, from_args
from handspot.run import DetectOptions, detect
from handspot.signals import Stopped, exit_code, sigterm_as_ctrl_c, stopped


def build_parser(
    multi: bool | None, backends: Mapping[str, Backend] = BACKENDS, prog: str | None = None
) -> argparse.ArgumentParser:
    """The flags of ``DetectOptions``; ``multi`` None: either loop (``--single-threaded``)."""
    kind = {True: "Multi-threaded h", False: "Single-threaded h", None: "H"}[multi]
    p = argparse.ArgumentParser(
        prog=prog,
        description=f"{kind}and detection on a video file, an image folder, an image or a "
        "camera: boxes, and with a hand model 21 keypoints, left/right and (video) ids.",
    )
    exclude = ("num_workers",) if multi is False else ()
    add_options(p, DetectOptions, exclude=exclude, choices={"backend": runnable(backends)})
    if multi is None:
        p.add_argument("--single-threaded", action="store_true", help="one thread, in order")
    return p


def main(
    argv: list[str] | None = None,
    multi: bool | None = None,
    backends: Mapping[str, Backend] = BACKENDS,
) -> int:
    """The command line: ``multi`` as in ``build_parser``."""
    prog = "hands-detect" if multi is None else None
    args = build_parser(multi, backends, prog).parse_args(argv)
    threaded = not getattr(args, "single_threaded", False) if multi is None else multi
    return run_cli(from_args(DetectOptions, args), multi=threaded, backends=backends)


def run_cli(
    options: DetectOptions, *, multi: bool, backends: Mapping[str, Backend] = BACKENDS
) -> int:
    """``detect`` for a command line: one error line or the report, and its exit code."""

    try:
        with sigterm_as_ctrl_c():  # the loop closes the outputs on its way out
            report = detect(options, multi=multi, backends=backends)
    except UserError as e:
        return fail(str(e))
    except KeyboardInterrupt as e:
        return stopped(e, "interrupted; outputs closed")
    print_report(report, options)
    if report.get("interrupted"):
        # The files are closed and complete: leave without TensorFlow's teardown, which takes
        # about a second after Ctrl-C with the SavedModel backend.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code(Stopped(report["interrupted"])))
    return 0


def print_report(report: dict, options: DetectOptions) -> None:
    """Frames, time and rate (and the profile); on stderr where stdout carries an output
    (``--json /dev/stdout | jq``)."""
    extra = f", {report['skipped']} unreadable image(s) skipped" if report["skipped"] else ""
    outputs = [o for o in (options.json, options.output) if o]
    report_to = sys.stderr if any(stream_fd(o) == 1 for o in outputs) else sys.stdout
    print(
        f"{report['frames']} frames in {report['seconds']} s ({report['fps']} FPS){extra}"
        + ("; interrupted" if report.get("interrupted") else ""),
        file=report_to,
    )
    if "profile_table" in report:
        print(report["backend"], file=report_to)
        if "detector_runs" in report:
            runs = f"{report['detector_runs']} of {report['frames']} frames"
            print(f"video mode: the detector ran on {runs} (--detect-every, --max-hands)",
                  file=report_to)  # fmt: skip
        print(report["profile_table"], file=report_to)


if __name__ == "__main__":
    sys.exit(main())
