"""Browser speed: ms/frame in headless Chromium (wasm, threads) for our TF.js model and, in the
same page harness, for handtrack.js's ssd320fpnlite loaded from local files (npm pack).

    python -m webexport.bench [--model exported/hands_ssd320] [--frames 20]

Target: our model >= 2x handtrack.js's FPS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from common import DEFAULT_MODEL, UserError, fail
from common.browser import browser_page
from prep.bench import DEFAULT_SAMPLE
from webexport.serve import serve_in_background


def bench(model: Path, frames: int = 20, backend: str = "wasm", image: Path | None = None) -> dict:
    from pipelines.import_handtrackjs import MODEL_SUBDIR, fetch_package

    htj = fetch_package() / MODEL_SUBDIR
    with tempfile.TemporaryDirectory() as tmp:
        media = Path(tmp)
        if image is None:
            found = sorted(DEFAULT_SAMPLE.rglob("*.jpg"))[:1]
            picture = (
                cv2.imread(str(found[0]))
                if found
                else np.random.default_rng(0).integers(0, 255, (720, 1280, 3), np.uint8)
            )
            cv2.imwrite(str(media / "frame.jpg"), picture)
        else:
            (media / "frame.jpg").write_bytes(Path(image).read_bytes())
        server, url = serve_in_background(model=model, port=0, extra={"media": media, "htj": htj})
        try:
            with browser_page(timeout_s=600) as page:
                page.goto(
                    f"{url}bench.html?image=/media/frame.jpg&htj=/htj/model.json"
                    f"&n={frames}&backend={backend}"
                )
                page.wait_for_function("window.benchResult !== undefined")
                result = page.evaluate("window.benchResult")
        finally:
            server.shutdown()
    if "error" in result:
        raise UserError(f"browser bench failed: {result['error']}")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--backend", default="wasm")
    args = p.parse_args(argv)
    try:
        r = bench(args.model, args.frames, args.backend)
    except UserError as e:
        return fail(str(e))
    print(
        f"\nheadless Chromium, TF.js {r['backend']}"
        f"{' + threads' if r['threads'] else ''}, 1280x720 frame, {r['n']} runs"
    )
    print("| model                          | ms/frame | FPS   |")
    print("|--------------------------------|----------|-------|")
    print(f"| ours ({args.model.name:<24}) | {r['ours']:>8.1f} | {1000 / r['ours']:>5.1f} |")
    print(
        f"| handtrack.js ssd320fpnlite     | {r['handtrack']:>8.1f} | "
        f"{1000 / r['handtrack']:>5.1f} |"
    )
    ratio = r["handtrack"] / r["ours"]
    print(f"ours / handtrack.js FPS: {ratio:.2f}x (target >= 2x: {'ok' if ratio >= 2 else 'MISS'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
