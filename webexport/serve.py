"""Serve the browser demo on 127.0.0.1 with the headers wasm threads need (COOP/COEP).

    python -m webexport.serve [--model exported/hands_ssd320] [--port 8000]

``/`` the page (webexport/web), ``/model/`` the exported model folder, ``/vendor/`` TF.js and
LiteRT.js from webexport/node_modules; nothing else, and nothing from another origin.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from common.paths import DEFAULT_MODEL
from handspot.errors import UserError, fail
from webexport.server import make_server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m webexport.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--port", type=int, default=8000)
    args = p.parse_args(argv)
    try:
        server, url = make_server(args.model, args.port)
    except (UserError, OSError) as e:
        return fail(str(e))
    print(f"serving {args.model} at {url} (Ctrl-C to stop)")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
