"""Where images come from: a folder or a zip archive, read the same way; resumable download."""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from PIL import Image, ImageFile, ImageOps
from tqdm import tqdm

from handspot.errors import UserError
from handspot.images import truncated

EGOHANDS_URL = "http://vision.soic.indiana.edu/egohands_files/egohands_data.zip"


class Source:
    """Read-only view of a dataset folder or zip, with POSIX-style relative member names.

    Picklable: a worker process reopens the zip lazily.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"source not found: {self.path}")
        self.is_zip = self.path.is_file()
        self._zip: zipfile.ZipFile | None = None
        if self.is_zip:
            try:
                self.members = sorted(n for n in self._archive().namelist() if not n.endswith("/"))
            except (zipfile.BadZipFile, OSError) as e:
                raise UserError(f"{self.path} is not a readable zip archive ({e})") from None
        else:
            self.members = sorted(
                str(PurePosixPath(Path(root, name).relative_to(self.path)))
                for root, _, names in os.walk(self.path)
                for name in names
            )

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip

    def __getstate__(self):
        return {**self.__dict__, "_zip": None}

    def read(self, member: str) -> bytes:
        try:
            if self.is_zip:
                return self._archive().read(member)
            return (self.path / member).read_bytes()
        except (KeyError, OSError, zipfile.BadZipFile) as e:
            raise UserError(f"cannot read {member} from {self.path}: {e}") from None

    def local_path(self, member: str) -> Path | None:
        return None if self.is_zip else self.path / member


def upright(data: bytes) -> tuple[bytes, int]:
    """A JPEG as it is shown: with an EXIF orientation other than 1 its pixels are turned and
    re-encoded (quality 95, the tag dropped), because TensorFlow's decoder ignores the tag while
    OpenCV (detect) and labelling tools apply it; training and detection then see one picture.
    Returns the bytes and the orientation found (1: unchanged)."""
    if not data.startswith(b"\xff\xd8"):
        return data, 1
    try:
        with Image.open(io.BytesIO(data)) as im:
            orientation = int(im.getexif().get(0x0112, 1))
            if orientation in (1, 0) or orientation > 8:
                return data, 1
            turned = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, SyntaxError, ValueError, TypeError, Image.DecompressionBombError):
        return data, 1  # validate_image says what is wrong with it
    out = io.BytesIO()
    turned.save(out, "JPEG", quality=95)
    return out.getvalue(), orientation


def as_png(data: bytes) -> bytes | None:
    """An image in another format Pillow reads (WebP, BMP, TIFF, GIF: what a camera folder or a
    labelling tool may hold) as PNG, lossless, turned by its EXIF orientation; None for JPEG,
    PNG or what is no picture (``validate_image`` says what is wrong with it)."""
    if data.startswith((b"\xff\xd8", b"\x89PNG")):
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            picture = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, SyntaxError, ValueError, TypeError, Image.DecompressionBombError):
        return None
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


MIN_SIDE = 8  # pixels: anything smaller is no picture of a hand (and breaks reduced decoding)


class TinyImage(ValueError):
    """A complete image too small to train on."""


def validate_image(data: bytes) -> tuple[int, int, str]:
    """Return ``(width, height, format)`` of a complete JPEG or PNG; raise ``ValueError`` for a
    truncated or corrupt one (``TinyImage`` for one under ``MIN_SIDE`` pixels a side). JPEGs
    are decoded at 1/8 scale (libjpeg DCT scaling), so every byte is checked at a fraction of
    the cost of a full decode."""
    if not data.startswith((b"\xff\xd8", b"\x89PNG")):
        raise ValueError("not a JPEG or PNG image")
    if why := truncated(data):
        raise ValueError(why)
    fmt = "jpeg" if data.startswith(b"\xff\xd8") else "png"
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
            if fmt == "jpeg":
                im.draft("L", (max(1, size[0] // 8), max(1, size[1] // 8)))
            im.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"corrupt {fmt.upper()} ({e})") from None
    if min(size) < MIN_SIDE:
        raise TinyImage(f"{size[0]}x{size[1]} pixels: too small (at least {MIN_SIDE}x{MIN_SIDE})")
    return size[0], size[1], fmt


def download(url: str, dest: Path, chunk: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest`` with a progress bar, resuming a previous partial download."""
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part file is already complete
            part.rename(dest)
            return dest
        raise UserError(f"download of {url} failed: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        raise UserError(
            f"cannot download {url} ({getattr(e, 'reason', e)}); download it by hand and pass "
            "--source path/to/egohands_data.zip"
        ) from None
    with response:
        if have and response.status != 206:  # server ignored the range: start again
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        mode = "ab" if have else "wb"
        try:
            with (
                open(part, mode) as f,
                tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name) as bar,
            ):
                while block := response.read(chunk):
                    f.write(block)
                    bar.update(len(block))
        except OSError as e:
            raise UserError(f"download of {url} interrupted ({e}); run again to resume") from None
    if total is not None and part.stat().st_size != total:
        raise UserError(f"download of {url} incomplete; run again to resume")
    part.rename(dest)
    return dest
