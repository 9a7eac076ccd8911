"""The check that every browser-test screenshot is not blank (``_lab.shoot`` applies it to each one)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ._lab import blank_reason


def _png(path, pixels):
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def test_a_page_that_never_drew_is_blank(tmp_path):
    white = _png(tmp_path / "white.png", np.full((900, 1400, 3), 255))
    assert blank_reason(white) is not None


def test_a_loading_spinner_on_white_is_blank(tmp_path):
    image = Image.new("RGB", (1400, 900), "white")
    ImageDraw.Draw(image).ellipse((680, 430, 720, 470), outline="grey", width=3)
    image.save(tmp_path / "spinner.png")
    assert blank_reason(tmp_path / "spinner.png") is not None


def test_a_page_with_text_and_a_figure_is_not_blank(tmp_path):
    image = Image.new("RGB", (1400, 900), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 1400, 28), fill=(238, 238, 238))
    for row in range(60, 860, 22):
        draw.text((40, row), "hs-CRP (mg/L) by group, simulated clinic outpatients " * 3, fill="black")
    draw.rectangle((700, 300, 1200, 700), outline="black", width=2)
    draw.line([(700, 700), (900, 420), (1200, 380)], fill=(0, 114, 178), width=3)
    image.save(tmp_path / "page.png")
    assert blank_reason(tmp_path / "page.png") is None
