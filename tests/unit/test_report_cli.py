"""`petent report`: the audit files from the command line, on the bot's configuration."""

import asyncio
import csv
import io
import os
from datetime import UTC, date, datetime

import pytest
from matplotlib.image import imread
from openpyxl import load_workbook

from bot.__main__ import main
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import Audit, AuditFinding, Case, CaseStatus, Resident
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TOKEN


@pytest.fixture
def configured(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/petent.db"
    for name, value in {
        "BOT_TOKEN": TOKEN,
        "ADMIN_CHAT_ID": ADMIN_CHAT_ID,
        "COMMS_CHAT_ID": COMMS_CHAT_ID,
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": url,
        "ADMIN_LOCALE": "lt",
    }.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.chdir(tmp_path)  # no .env from the checkout

    async def seed() -> None:
        database = Database(url)
        await upgrade(database)
        async with database.write() as session:
            session.add(Resident(id=501, locale="pl", display_name="Anna"))
            await session.flush()
            session.add(
                Case(
                    number="VRS-2026-000001",
                    year=2026,
                    seq=1,
                    resident_id=501,
                    locale="pl",
                    kind="request",
                    category_id="roads",
                    description="x",
                    status=CaseStatus.ANSWERED,
                    received_at=datetime(2026, 10, 5, 8, tzinfo=UTC),
                    deadline=date(2026, 11, 2),
                    closed_at=datetime(2026, 10, 9, 8, tzinfo=UTC),
                )
            )
        await database.dispose()

    asyncio.run(seed())


def test_xlsx_csv_and_png(configured, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["report", "--from", "2026-10-01", "--to", "2026-12-31", "--out", str(tmp_path / "q4.xlsx")])
        == 0
    )
    assert "1 received, 1 closed" in capsys.readouterr().out
    book = load_workbook(tmp_path / "q4.xlsx")
    assert book.sheetnames == [
        "Suvestinė",
        "Savaitės tendencija",
        "Pagal komandas",
        "Nebaigti pagal seniūnijas",
        "Nebaigti pagal sritis",
        "Pasitenkinimas",
        "Pasitenkinimas pagal grupes",
        "Komentarai",
        "Lankytojų apklausa pagal vietas",
        "Lankytojų pasiūlymai",
        "Projektai",
        "Projektai pagal komandas",
    ]
    summary = {row[0]: row[1] for row in book["Suvestinė"].iter_rows(min_row=2, values_only=True)}
    assert summary["Gauti kreipimaisi"] == 1 and summary["Nagrinėjimo trukmės mediana, darbo dienos"] == 4
    assert (
        summary["Gauta per „Telegram“"],
        summary["Užregistravo darbuotojai (telefonu, el. paštu, paštu, aptarnavimo skyriuje)"],
    ) == (1, 0)

    assert (
        main(
            [
                "report",
                "--from",
                "2026-10-01",
                "--to",
                "2026-12-31",
                "--format",
                "csv",
                "--locale",
                "pl",
                "--out",
                str(tmp_path / "q4.txt"),
            ]
        )
        == 0
    )
    rows = list(csv.reader(io.StringIO((tmp_path / "q4.txt").read_text("utf-8-sig"))))
    assert ["Sprawy przyjęte", "1"] in rows

    assert (
        main(["report", "--from", "2026-10-01", "--to", "2026-12-31", "--out", str(tmp_path / "q4.png")]) == 0
    )
    assert imread(tmp_path / "q4.png").shape[:2] == (700, 900)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--from", "2026-13-01", "--to", "2026-12-31", "--out", "x.csv"],
            "not a date (YYYY-MM-DD): 2026-13-01",
        ),
        (["--from", "2026-12-01", "--to", "2026-11-01", "--out", "x.csv"], "--from must not be after --to"),
        (["--from", "2026-11-01", "--to", "2026-12-01", "--out", "x.pdf"], "--format csv, xlsx or png"),
        (
            ["--from", "1999-12-01", "--to", "2000-01-31", "--out", "x.csv"],
            "--from/--to: A report covers the years 2000 to ",
        ),
        (
            ["--from", "2015-01-01", "--to", "2020-12-31", "--out", "x.csv"],
            "--from/--to: A report covers at most 5 years; please choose a shorter period.",
        ),
    ],
)
def test_bad_arguments_are_named(args: list[str], error: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", *args])
    assert exit_.value.code == 2 and error in capsys.readouterr().err


def test_the_management_review_from_the_command_line(
    configured, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "review.xlsx"
    assert (
        main(["review", "--from", "2026-10-01", "--to", "2026-12-31", "--out", str(out), "--locale", "pl"])
        == 0
    )
    assert "management review, 2026-10-01 – 2026-12-31" in capsys.readouterr().out
    book = load_workbook(out)
    assert book.sheetnames == [
        "Podsumowanie",
        "Cele jakości",
        "Efektywność procesów",
        "Zadowolenie",
        "Niezgodności",
        "Działania korygujące",
        "Audyty wewnętrzne",
        "Ustalenia audytów",
        "Odpowiedzialność",
        "Projekty",
        "Wykres",
    ]
    objectives = {
        (row[0].value, row[2].value): row[3].value for row in book["Cele jakości"].iter_rows(min_row=2)
    }
    assert (
        objectives[("Sprawy zamknięte w terminie ustawowym", "2026-10")] == 100.0
    )  # the one case, closed on time in October
    assert objectives[("Średnia ocena zadowolenia", "2026-Q4")] is None  # no answers


def test_an_audit_report_from_the_command_line(
    configured, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "audit.xlsx"
    assert main(["audit-report", "--audit", "1", "--out", str(out)]) == 1  # none yet: a clear line, no file
    assert capsys.readouterr().err == "petent: Vidaus audito Nr. 1 nėra.\n" and not out.exists()

    async def audit() -> None:
        database = Database(os.environ["DATABASE_URL"])
        async with database.write() as session:
            session.add(
                Audit(
                    team_id="desk",
                    period="2026-10",
                    start=date(2026, 10, 1),
                    end=date(2026, 10, 31),
                    auditor_id=9,
                    auditor_name="Vida",
                    seed=7,
                    sample_size=5,
                    population=1,
                    case_ids=[1],
                    checklist={"1": {"1": True}},
                )
            )
            await session.flush()
            session.add(
                AuditFinding(
                    audit_id=1, kind="obs", text="Szablony się różnią", author_id=9, author_name="Vida"
                )
            )
        await database.dispose()

    asyncio.run(audit())
    assert main(["audit-report", "--audit", "1", "--out", str(out), "--locale", "pl"]) == 0
    assert f"{out}: internal audit #1" in capsys.readouterr().out
    book = load_workbook(out)
    assert book.sheetnames == ["Audyt", "Próba", "Ustalenia"]
    [sample] = book["Próba"].iter_rows(min_row=2, values_only=True)
    assert (sample[0], sample[5], sample[9]) == ("VRS-2026-000001", "zamknięta w terminie", "tak")
    [finding] = book["Ustalenia"].iter_rows(min_row=2, values_only=True)
    assert finding[1:4] == ("obserwacja", None, "Szablony się różnią")
