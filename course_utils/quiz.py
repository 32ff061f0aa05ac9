"""Concept checks: short questions answered in the notebook, with immediate feedback and a one-line explanation.

Each notebook asks two to four of them. :func:`choice` asks a multiple-choice question, :func:`number` one whose
answer is a number. Both return a :class:`Question` whose *pure* part, :meth:`Question.grade`, turns an answer into
:class:`Feedback` (so the questions are testable without a browser), and whose display is an ipywidget: options or
a number box, a *Check* button and the feedback under it. Everything runs offline in the kernel.

Where widgets cannot render (ipywidgets missing, a plain terminal, a static HTML export, a front end without the
widget manager), the question shows as text or HTML: the question, its options, and the answer with its
explanation folded away (``<details>`` in HTML, at the end in plain text), so a reader can still test themselves.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ipywidgets  # imported lazily: only the interactive form needs it

RIGHT, WRONG = "\u2713", "\u2717"


@dataclass(frozen=True)
class Feedback:
    """The outcome of one answer: whether it is right, and the message shown to the learner."""

    correct: bool
    message: str


@dataclass
class Question:
    """One concept check. ``options`` is empty for a numeric question, whose answer is ``answer`` +- ``tolerance``.

    ``hints`` maps a wrong option's index to a message written for that mistake (multiple choice only).
    """

    prompt: str
    explanation: str
    options: tuple[str, ...] = ()
    answer: int | float = 0
    tolerance: float = 0.0
    hints: dict[int, str] = field(default_factory=dict)
    unit: str = ""

    def grade(self, response: int | float | str | None) -> Feedback:
        """Feedback for ``response``: an option's index or text (multiple choice), or a number."""
        if response is None or (isinstance(response, str) and not response.strip()):
            return Feedback(False, "Choose an answer first." if self.options else "Type a number first.")
        if self.options:
            if isinstance(response, str):
                if response not in self.options:
                    return Feedback(False, f"{WRONG} {response!r} is not one of the options.")
                index = self.options.index(response)
            else:
                index = int(response)
                if not 0 <= index < len(self.options):
                    return Feedback(False, f"{WRONG} There is no option {index}; the options are numbered 0 to "
                                           f"{len(self.options) - 1}.")
            if index == self.answer:
                return Feedback(True, f"{RIGHT} Right. {self.explanation}")
            return Feedback(False, f"{WRONG} Not quite. {self.hints.get(index, 'Think again, then try another.')}")
        try:
            value = float(response)
        except (TypeError, ValueError):
            return Feedback(False, f"{WRONG} {response!r} is not a number.")
        if not math.isfinite(value):
            return Feedback(False, f"{WRONG} {response!r} is not a finite number.")
        # The boundary counts as right, also when decimal inputs land a rounding error beyond it (2.2 - 2.1 > 0.1).
        if abs(value - float(self.answer)) <= self.tolerance + 1e-9 * max(1.0, abs(float(self.answer))):
            return Feedback(True, f"{RIGHT} Right. {self.explanation}")
        direction = "too high" if value > float(self.answer) else "too low"
        return Feedback(False, f"{WRONG} Not quite: {value:g} is {direction}. Try again.")

    def answer_text(self) -> str:
        """The right answer as words: the option's text, or the number with its unit."""
        if self.options:
            return self.options[int(self.answer)]
        return f"{self.answer:g}{(' ' + self.unit) if self.unit else ''}"

    def text(self) -> str:
        """The question as plain text, answer at the end (for terminals and front ends without widgets)."""
        lines = [f"Concept check: {self.prompt}"]
        lines += [f"  {chr(ord('a') + k)}) {option}" for k, option in enumerate(self.options)]
        if not self.options:
            lines.append(f"  (a number{', in ' + self.unit if self.unit else ''})")
        lines.append(f"  Answer (try first): {self.answer_text()}. {self.explanation}")
        return "\n".join(lines)

    def html(self) -> str:
        """The question as HTML with the answer folded in a ``<details>`` block (static exports, slides)."""
        items = "".join(f"<li>{html.escape(option)}</li>" for option in self.options)
        listing = f"<ol type='a'>{items}</ol>" if items else ""
        return (f"<div class='concept-check'><b>Concept check:</b> {html.escape(self.prompt)}{listing}"
                f"<details><summary>Answer</summary>{html.escape(self.answer_text())}. "
                f"{html.escape(self.explanation)}</details></div>")

    def widget(self) -> ipywidgets.VBox:
        """The interactive form: options (or a number box), a Check button and the feedback line."""
        import ipywidgets as widgets

        if self.options:
            entry = widgets.RadioButtons(options=list(self.options), value=None,
                                         layout=widgets.Layout(width="auto"))
        else:
            entry = widgets.Text(placeholder=f"a number{(' (' + self.unit + ')') if self.unit else ''}")
        button = widgets.Button(description="Check", button_style="primary")
        feedback = widgets.HTML()

        def on_click(_: object) -> None:
            result = self.grade(entry.value)
            colour = "#2ca02c" if result.correct else "#d62728"
            feedback.value = f"<span style='color:{colour}'>{html.escape(result.message)}</span>"

        button.on_click(on_click)
        box = widgets.VBox([widgets.HTML(f"<b>Concept check:</b> {html.escape(self.prompt)}"), entry,
                            button, feedback])
        box.add_class("concept-check")
        box.entry, box.button, box.feedback = entry, button, feedback
        return box

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict:
        """The widget for front ends that render widgets, with text and HTML fallbacks for those that do not."""
        bundle = {"text/plain": self.text(), "text/html": self.html()}
        try:
            bundle.update(self.widget()._repr_mimebundle_() or {})
        except Exception:  # no ipywidgets or no kernel comm: the fallbacks above are all there is
            return bundle
        bundle["text/plain"], bundle["text/html"] = self.text(), self.html()
        return bundle


def choice(prompt: str, options: Sequence[str], answer: int, explanation: str,
           hints: dict[int, str] | None = None) -> Question:
    """A multiple-choice concept check; ``answer`` is the index of the right option in ``options``."""
    if len(options) < 2:
        raise ValueError(f"A multiple-choice question needs at least two options; got {list(options)}.")
    if not 0 <= answer < len(options):
        raise ValueError(f"answer={answer} is not an index of the {len(options)} options.")
    if bad := [k for k in (hints or {}) if not 0 <= k < len(options) or k == answer]:
        raise ValueError(f"hints are for wrong options only; indices {bad} are not wrong options.")
    return Question(prompt=prompt, explanation=explanation, options=tuple(options), answer=answer,
                    hints=dict(hints or {}))


def number(prompt: str, answer: float, explanation: str, tolerance: float = 0.0, unit: str = "") -> Question:
    """A concept check answered with a number, right within ``tolerance``."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0; got {tolerance}.")
    return Question(prompt=prompt, explanation=explanation, answer=float(answer), tolerance=float(tolerance),
                    unit=unit)
