"""Concept checks (course_utils/quiz.py): grading, the text and HTML fallbacks, the widget and its Check button."""

from __future__ import annotations

import builtins
import html
import re

import pytest

from course_utils import quiz
from course_utils.quiz import RIGHT, WRONG, Feedback

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def views() -> quiz.Question:
    return quiz.choice("How many views does CNNaug-SVM average?", ["1", "8", "16"], answer=2,
                       explanation="Whole image, four corners and the centre, each with its mirror: 16.",
                       hints={0: "That is the plain CNN-SVM: one view per image."})


@pytest.fixture
def drop() -> quiz.Question:
    return quiz.number("How many points of mAP does the drop cost?", answer=3.75, tolerance=0.01,
                       explanation="One query loses a quarter of its AP; over 20 queries that is 3.75 points.",
                       unit="points")


# --- grade(): the pure part ------------------------------------------------------------------------------------


def test_the_right_option_by_index_or_text(views: quiz.Question) -> None:
    expected = Feedback(True, f"{RIGHT} Right. Whole image, four corners and the centre, each with its mirror: 16.")
    assert views.grade(2) == expected
    assert views.grade("16") == expected


def test_a_wrong_option_gets_its_own_hint_or_the_general_one(views: quiz.Question) -> None:
    assert views.grade(0) == Feedback(False, f"{WRONG} Not quite. That is the plain CNN-SVM: one view per image.")
    assert views.grade("8") == Feedback(False, f"{WRONG} Not quite. Think again, then try another.")


def test_no_answer_yet_asks_for_one(views: quiz.Question, drop: quiz.Question) -> None:
    for response in (None, "", "   "):
        assert views.grade(response) == Feedback(False, "Choose an answer first.")
        assert drop.grade(response) == Feedback(False, "Type a number first.")


def test_an_answer_that_is_not_an_option_is_named(views: quiz.Question) -> None:
    assert views.grade("sixteen") == Feedback(False, f"{WRONG} 'sixteen' is not one of the options.")
    assert views.grade(3) == Feedback(False, f"{WRONG} There is no option 3; the options are numbered 0 to 2.")
    assert views.grade(-1) == Feedback(False, f"{WRONG} There is no option -1; the options are numbered 0 to 2.")


def test_a_number_within_the_tolerance_is_right_and_the_boundary_counts(drop: quiz.Question) -> None:
    right = Feedback(True, f"{RIGHT} Right. One query loses a quarter of its AP; over 20 queries that is 3.75 "
                           "points.")
    for response in (3.75, "3.75", " 3.76 ", 3.74, "3.750"):
        assert drop.grade(response) == right, response


def test_the_boundary_is_right_despite_binary_rounding() -> None:
    question = quiz.number("?", answer=2.1, explanation="ok", tolerance=0.1)
    assert 2.2 - 2.1 > 0.1  # what the check must not trip over
    assert question.grade("2.2").correct and question.grade("2.0").correct
    assert question.grade("2.2001") == Feedback(False, f"{WRONG} Not quite: 2.2001 is too high. Try again.")


def test_a_wrong_number_says_which_way_it_is_off(drop: quiz.Question) -> None:
    assert drop.grade("2.5") == Feedback(False, f"{WRONG} Not quite: 2.5 is too low. Try again.")
    assert drop.grade(5) == Feedback(False, f"{WRONG} Not quite: 5 is too high. Try again.")
    assert drop.grade(3.7649) == Feedback(False, f"{WRONG} Not quite: 3.7649 is too high. Try again.")


def test_text_that_is_not_a_finite_number_is_named(drop: quiz.Question) -> None:
    assert drop.grade("3,75") == Feedback(False, f"{WRONG} '3,75' is not a number.")
    assert drop.grade("about four") == Feedback(False, f"{WRONG} 'about four' is not a number.")
    assert drop.grade("nan") == Feedback(False, f"{WRONG} 'nan' is not a finite number.")
    assert drop.grade("inf") == Feedback(False, f"{WRONG} 'inf' is not a finite number.")


def test_an_exact_number_needs_the_exact_value() -> None:
    question = quiz.number("How many classes?", answer=17, explanation="Oxford 17 Flowers.")
    assert question.grade("17").correct
    assert question.grade("17.001") == Feedback(False, f"{WRONG} Not quite: 17.001 is too high. Try again.")


# --- the questions are checked when they are written -----------------------------------------------------------


@pytest.mark.parametrize(("options", "answer", "hints", "message"), [
    (["only one"], 0, None, r"needs at least two options; got \['only one'\]"),
    (["a", "b"], 2, None, r"answer=2 is not an index of the 2 options"),
    (["a", "b"], -1, None, r"answer=-1 is not an index of the 2 options"),
    (["a", "b", "c"], 1, {1: "but this is the right one"}, r"indices \[1\] are not wrong options"),
    (["a", "b", "c"], 1, {0: "fine", 5: "no such option"}, r"indices \[5\] are not wrong options"),
])
def test_a_malformed_choice_is_refused(options, answer, hints, message) -> None:
    with pytest.raises(ValueError, match=message):
        quiz.choice("?", options, answer=answer, explanation="", hints=hints)


def test_a_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match=r"tolerance must be >= 0; got -0\.1"):
        quiz.number("?", answer=1, explanation="", tolerance=-0.1)


# --- the fallbacks: everything a reader needs, the answer kept for last ----------------------------------------


def test_text_lists_the_options_and_puts_the_answer_last(views: quiz.Question, drop: quiz.Question) -> None:
    assert views.text().splitlines() == [
        "Concept check: How many views does CNNaug-SVM average?",
        "  a) 1",
        "  b) 8",
        "  c) 16",
        "  Answer (try first): 16. Whole image, four corners and the centre, each with its mirror: 16.",
    ]
    assert drop.text().splitlines() == [
        "Concept check: How many points of mAP does the drop cost?",
        "  (a number, in points)",
        "  Answer (try first): 3.75 points. One query loses a quarter of its AP; over 20 queries that is 3.75 points.",
    ]


def test_html_folds_the_answer_away_and_escapes_the_text() -> None:
    question = quiz.choice("Is <b>x</b> & y > 0?", ["yes & no", "<i>never</i>"], answer=1,
                           explanation="Because 1 < 2.")
    page = question.html()
    assert "<b>x</b>" not in page and "<i>never</i>" not in page.split("<details>")[0]
    assert "Is &lt;b&gt;x&lt;/b&gt; &amp; y &gt; 0?" in page
    assert "<ol type='a'><li>yes &amp; no</li><li>&lt;i&gt;never&lt;/i&gt;</li></ol>" in page
    visible, folded = page.split("<details>")
    assert "Because" not in visible, "the explanation must stay folded until the reader opens it"
    assert folded == "<summary>Answer</summary>&lt;i&gt;never&lt;/i&gt;. Because 1 &lt; 2.</details></div>"


def test_html_of_a_number_question_has_no_option_list(drop: quiz.Question) -> None:
    page = drop.html()
    assert "<ol" not in page
    assert re.search(r"<details><summary>Answer</summary>3\.75 points\. One query", page)


# --- the widget ------------------------------------------------------------------------------------------------


def _feedback_text(box) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", box.feedback.value))


def test_the_widget_offers_the_options_and_check_gives_the_feedback(views: quiz.Question) -> None:
    box = views.widget()
    assert list(box.entry.options) == ["1", "8", "16"] and box.entry.value is None
    assert box.button.description == "Check" and box.feedback.value == ""
    assert "How many views does CNNaug-SVM average?" in box.children[0].value
    box.button.click()
    assert _feedback_text(box) == "Choose an answer first."
    box.entry.value = "1"
    box.button.click()
    assert _feedback_text(box) == f"{WRONG} Not quite. That is the plain CNN-SVM: one view per image."
    assert "#d62728" in box.feedback.value  # red
    box.entry.value = "16"
    box.button.click()
    assert _feedback_text(box) == views.grade(2).message
    assert "#2ca02c" in box.feedback.value  # green


def test_the_number_widget_reads_what_was_typed(drop: quiz.Question) -> None:
    box = drop.widget()
    assert box.entry.placeholder == "a number (points)"
    box.entry.value = "2.5"
    box.button.click()
    assert _feedback_text(box) == f"{WRONG} Not quite: 2.5 is too low. Try again."
    box.entry.value = "3.75"
    box.button.click()
    assert _feedback_text(box).startswith(f"{RIGHT} Right.")


def test_the_display_carries_the_widget_and_both_fallbacks(views: quiz.Question) -> None:
    bundle = views._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", WIDGET_MIME}
    assert bundle["text/plain"] == views.text() and bundle["text/html"] == views.html()
    assert bundle[WIDGET_MIME]["model_id"]


def test_without_ipywidgets_the_question_shows_as_text_and_html(views: quiz.Question,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_ipywidgets(name, *args, **kwargs):
        if name == "ipywidgets" or name.startswith("ipywidgets."):
            raise ImportError("No module named 'ipywidgets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ipywidgets)
    with pytest.raises(ImportError):
        views.widget()
    assert views._repr_mimebundle_() == {"text/plain": views.text(), "text/html": views.html()}


def test_the_package_exposes_the_quiz() -> None:
    import course_utils as cu

    assert cu.quiz.choice is quiz.choice and cu.quiz.number is quiz.number
