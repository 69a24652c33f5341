"""Image payloads: data-URI / base64 decoding with limits, and encoding images back. No torch, no HTTP.

Limits are checked before the expensive step each time: the base64 length before decoding, the header's
width*height before the pixels are decompressed (so a decompression bomb is refused cheaply).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

import numpy as np
from PIL import Image

from serve.errors import InvalidImage, InvalidPayload, PayloadTooLarge

DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I)
FORMATS = {"JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF"}
#: Line breaks and spaces inside base64: what `base64` without `-w0` and MIME encoders write.
WHITESPACE = str.maketrans("", "", " \t\r\n")
#: A Python object's repr in a library message ("<_io.BytesIO object at 0x7f...>") says nothing to a client.
OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


def split_data_uri(data: str) -> tuple[str | None, str]:
    """`data:image/jpeg;base64,AAAA` -> ("image/jpeg", "AAAA"); a bare base64 string passes through."""
    match = DATA_URI.match(data)
    if not match:
        return None, data
    if not match.group("b64"):
        raise InvalidPayload("data URI must be base64-encoded (data:image/...;base64,...)")
    mime = (match.group("mime") or "").lower()
    if mime and not mime.startswith("image/"):
        raise InvalidPayload(f"data URI has media type {mime!r}; expected image/*")
    return mime or None, data[match.end():]


def decode_image(data: str, max_bytes: int, max_pixels: int) -> np.ndarray:
    """A data URI (or bare base64) -> RGB uint8 array (H, W, 3). Raises 4xx-typed errors on bad input."""
    _, payload = split_data_uri(data.strip())
    payload = payload.translate(WHITESPACE)
    if len(payload) * 3 // 4 > max_bytes:
        raise PayloadTooLarge(f"image is about {len(payload) * 3 // 4} bytes; the limit is {max_bytes}")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidPayload(f"data is not valid base64: {exc}") from None
    return decode_bytes(raw, max_bytes, max_pixels)


def decode_bytes(raw: bytes, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, ...) -> RGB uint8 array (H, W, 3), within the same limits."""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"image is {len(raw)} bytes; the limit is {max_bytes}")
    if not raw:
        raise InvalidImage("image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            if image.format not in FORMATS:
                raise InvalidImage(f"unsupported image format {image.format}; send one of {sorted(FORMATS)}")
            width, height = image.size
            if width * height > max_pixels:
                raise PayloadTooLarge(f"image is {width}x{height} = {width * height} pixels; "
                                      f"the limit is {max_pixels}")
            rgb = image.convert("RGB")
    except (InvalidImage, PayloadTooLarge):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses before our own check when the header is beyond its global limit; quote ours.
        size = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{size.group(1)} pixels" if size else "too many pixels"
        raise PayloadTooLarge(f"image has {pixels}; the limit is {max_pixels}") from None
    except Exception as exc:  # PIL raises many types for truncated or foreign bytes
        raise InvalidImage(f"bytes are not a readable image: {OBJECT_REPR.sub('the payload', str(exc))}") from None
    return np.asarray(rgb)


def check_pixels(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """An already decoded RGB uint8 array (H, W, 3), held to the same pixel limit as encoded images."""
    height, width = image.shape[:2]
    if width * height > max_pixels:
        raise PayloadTooLarge(f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    if width == 0 or height == 0:
        raise InvalidImage(f"image is {width}x{height} pixels; it must not be empty")
    return image


def encode_bytes(image: np.ndarray, fmt: str = "JPEG") -> bytes:
    """RGB array -> encoded image bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


def encode_image(image: np.ndarray, fmt: str = "JPEG") -> str:
    """RGB array -> data URI, for answers that carry a rendered image."""
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(encode_bytes(image, fmt)).decode()
