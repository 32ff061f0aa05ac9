"""Slide breaks at the notebooks' headings, for ``make slides`` (nbconvert's reveal.js export).

nbconvert starts a new slide only at a cell whose ``metadata.slideshow.slide_type`` says so; the course's notebooks
carry no slide metadata, so the export would be one endless slide. :class:`HeadingSlides`, an nbconvert
preprocessor (``--SlidesExporter.preprocessors=course_utils.slides.HeadingSlides``), gives the exported copy the
structure the headings already state: a ``#``/``##`` heading starts a slide, a ``###`` heading a sub-slide (reveal.js
shows those below their slide), and every other cell continues the slide above it. The notebooks themselves are not
changed, and a notebook whose author set slide types by hand is exported as it is.
"""

from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode

HEADING = re.compile(r"^(#{1,3})\s")


def slide_type(cell: NotebookNode) -> str:
    """``"slide"``, ``"subslide"`` or ``"-"`` (continue) for one cell, from the heading its Markdown opens with."""
    if cell.cell_type != "markdown":
        return "-"
    match = HEADING.match(cell.source.lstrip())
    if not match:
        return "-"
    return "subslide" if len(match.group(1)) == 3 else "slide"


class HeadingSlides(Preprocessor):
    """Set each cell's slide type from the headings, unless the notebook already has slide types of its own."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        if any("slide_type" in cell.metadata.get("slideshow", {}) for cell in nb.cells):
            return nb, resources
        for cell in nb.cells:
            cell.metadata.setdefault("slideshow", {})["slide_type"] = slide_type(cell)
        return nb, resources
