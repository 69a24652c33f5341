"""Payload decoding: every bad input becomes a typed 4xx error, before any expensive work."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from serve.codecs import decode_image, encode_image
from serve.errors import InvalidImage, InvalidPayload, PayloadTooLarge, ServeError

LIMITS = dict(max_bytes=1_000_000, max_pixels=4_000_000)


def jpeg_uri(width=64, height=48) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 40)).save(buffer, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_round_trip_keeps_size_and_colour():
    image = decode_image(jpeg_uri(), **LIMITS)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert abs(int(image[..., 0].mean()) - 200) < 5
    assert decode_image(encode_image(image, "PNG"), **LIMITS).shape == image.shape


def test_bare_base64_is_accepted():
    assert decode_image(jpeg_uri().split(",", 1)[1], **LIMITS).shape == (48, 64, 3)


@pytest.mark.parametrize("data, error", [
    ("data:image/jpeg;base64,@@@not-base64@@@", InvalidPayload),
    ("data:text/plain;base64,aGVsbG8=", InvalidPayload),
    ("data:image/png,rawbytes", InvalidPayload),
    ("data:image/jpeg;base64," + base64.b64encode(b"hello, not an image").decode(), InvalidImage),
    ("data:image/jpeg;base64,", InvalidImage),
])
def test_bad_payloads(data, error):
    with pytest.raises(error):
        decode_image(data, **LIMITS)


def test_byte_limit_is_checked_before_decoding():
    with pytest.raises(PayloadTooLarge):
        decode_image("data:image/jpeg;base64," + "A" * 2_000_000, **LIMITS)


def test_decompression_bomb_is_refused_from_the_header():
    # A 20000x20000 PNG of one colour compresses to a few hundred KB but would need 1.2 GB decoded.
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")
    bomb = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert len(bomb) < LIMITS["max_bytes"]
    with pytest.raises(PayloadTooLarge, match="pixels"):
        decode_image(bomb, **LIMITS)


def test_base64_with_line_breaks_is_accepted():
    """`base64` without `-w0` wraps at 76 columns; MIME encoders use CRLF."""
    header, body = jpeg_uri().split(",", 1)
    wrapped = "\n".join(body[i:i + 76] for i in range(0, len(body), 76))
    assert decode_image(f"{header},{wrapped}\n", **LIMITS).shape == (48, 64, 3)
    assert decode_image(f"{header},{wrapped.replace(chr(10), chr(13) + chr(10))}", **LIMITS).shape == (48, 64, 3)


def test_a_bomb_beyond_pillows_own_limit_quotes_the_configured_limit():
    buffer = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buffer, "PNG")  # 900 M pixels: Pillow's own check fires first
    bomb = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    with pytest.raises(PayloadTooLarge) as caught:
        decode_image(bomb, max_bytes=10_000_000, max_pixels=4_000_000)
    assert caught.value.detail == "image has 900000000 pixels; the limit is 4000000"


def test_errors_do_not_leak_object_reprs():
    garbage = "data:image/jpeg;base64," + base64.b64encode(b"\x00" * 64).decode()
    with pytest.raises(InvalidImage) as caught:
        decode_image(garbage, **LIMITS)
    assert " at 0x" not in caught.value.detail and "the payload" in caught.value.detail


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=300),
                 st.binary(max_size=3000).map(lambda b: "data:image/png;base64," + base64.b64encode(b).decode()),
                 st.binary(min_size=1, max_size=400).map(lambda b: mangle_jpeg(b))))
def test_any_payload_decodes_or_is_refused_with_a_4xx(data):
    """Whatever arrives (text, random bytes, a real JPEG with random bytes spliced in), decoding gives an RGB
    image or one of our 4xx errors; nothing else escapes."""
    try:
        image = decode_image(data, **LIMITS)
    except ServeError as error:
        assert 400 <= error.status < 500 and "0x" not in error.detail
    else:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


REAL_JPEG = base64.b64decode(jpeg_uri(40, 30).split(",", 1)[1])


def mangle_jpeg(noise: bytes) -> str:
    """The real JPEG with `noise` written over it at a position the noise picks: truncated or corrupt files."""
    at = noise[0] * len(REAL_JPEG) // 256
    return "data:image/jpeg;base64," + base64.b64encode(REAL_JPEG[:at] + noise[1:] + REAL_JPEG[at + len(noise):]).decode()
