"""The visit survey's A4 poster, PDF and PNG: the municipality's name, a line on the survey, the
QR code of its link, the link itself, and the place, in Polish and Lithuanian.

segno makes the QR code (pure Python, no dependencies, maintained); matplotlib, which the reports
already use, draws the page and writes both files. The code's dark modules are drawn as one
vector path (rows of runs), not as a bitmap: sharp at any print size, and no seams between
modules when the PNG is rasterised. Error correction Q (25 %): a poster on a counter gets scuffed.
matplotlib is imported when a poster is drawn (the bot should start fast).
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

import segno

if TYPE_CHECKING:
    from matplotlib.path import Path

A4_INCHES = (8.27, 11.69)
PNG_DPI = 200  # 1654 × 2338 pixels: sharp on an office printer, a small file
QUIET_ZONE = 4  # modules of white around the code (the standard's minimum)


@dataclass(frozen=True)
class PosterText:
    """What one language says on the poster."""

    municipality: str
    heading: str
    explanation: str
    place: str


def qr_matrix(link: str) -> list[list[bool]]:
    """The QR code of `link`, dark modules True, without the quiet zone."""
    code = segno.make(link, error="q", micro=False)
    return [[bool(module) for module in row] for row in code.matrix]


def _qr_path(matrix: list[list[bool]]) -> Path:
    """One path of rectangles, one per run of dark modules in a row (y grows downwards)."""
    from matplotlib.path import Path

    vertices: list[tuple[float, float]] = []
    codes: list[int] = []
    moveto, lineto, close = int(Path.MOVETO), int(Path.LINETO), int(Path.CLOSEPOLY)
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            vertices += [(start, y), (x, y), (x, y + 1), (start, y + 1), (start, y)]
            codes += [moveto, lineto, lineto, lineto, close]
    return Path(vertices, codes)


def draw_poster(link: str, polish: PosterText, lithuanian: PosterText) -> tuple[bytes, bytes]:
    """The poster as (PDF, PNG)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import PathPatch

    figure = Figure(figsize=A4_INCHES)
    width, height = A4_INCHES

    def lines(text: str, chars: int) -> str:
        return "\n".join(textwrap.wrap(text, chars)) or text

    figure.text(0.5, 0.955, polish.municipality, ha="center", va="top", fontsize=17, weight="bold")
    figure.text(
        0.5,
        0.925,
        lithuanian.municipality,
        ha="center",
        va="top",
        fontsize=17,
        weight="bold",
        color="#333333",
    )
    figure.text(
        0.5,
        0.885,
        lines(polish.heading, 40),
        ha="center",
        va="top",
        fontsize=22,
        weight="bold",
        color="#1f4e79",
    )
    figure.text(
        0.5,
        0.805,
        lines(lithuanian.heading, 40),
        ha="center",
        va="top",
        fontsize=22,
        weight="bold",
        color="#1f4e79",
    )

    matrix = qr_matrix(link)
    side = 4.4  # inches (11 cm): a phone reads it from a few steps away
    axes = figure.add_axes(((width - side) / 2 / width, 0.335, side / width, side / height))
    axes.set_xlim(-QUIET_ZONE, len(matrix) + QUIET_ZONE)
    axes.set_ylim(len(matrix) + QUIET_ZONE, -QUIET_ZONE)
    axes.set_aspect("equal")
    axes.axis("off")
    axes.add_patch(PathPatch(_qr_path(matrix), facecolor="black", edgecolor="none", linewidth=0))

    figure.text(0.5, 0.318, link, ha="center", va="top", fontsize=13, family="monospace")
    figure.text(0.5, 0.275, lines(polish.explanation, 66), ha="center", va="top", fontsize=13)
    figure.text(
        0.5, 0.19, lines(lithuanian.explanation, 66), ha="center", va="top", fontsize=13, color="#333333"
    )
    figure.text(0.5, 0.075, polish.place, ha="center", va="top", fontsize=12, style="italic")
    figure.text(
        0.5, 0.05, lithuanian.place, ha="center", va="top", fontsize=12, style="italic", color="#333333"
    )

    pdf, png = io.BytesIO(), io.BytesIO()
    figure.savefig(pdf, format="pdf", metadata={"Title": polish.place, "Creator": "Petent"})
    figure.savefig(png, format="png", dpi=PNG_DPI)
    return pdf.getvalue(), png.getvalue()
