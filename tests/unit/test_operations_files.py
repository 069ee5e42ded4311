"""What the people on call install beside Petent (docs/operations/) is checked, not hoped: every
metric the alert rules and the dashboard name is one /metrics serves; the rules pass promtool and
the systemd unit systemd-analyze, where those tools are installed."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the dev dependencies
from prometheus_client import REGISTRY, generate_latest

import bot.metrics  # noqa: F401  (registers Petent's metrics)

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations"
_NAME = re.compile(r"\bpetent_[a-z0-9_]+")


def served() -> set[str]:
    """Every sample name /metrics serves (a counter's _total, a histogram's _bucket/_sum/_count)."""
    names = {sample.name for family in REGISTRY.collect() for sample in family.samples}
    names |= {
        line.split()[2] for line in generate_latest().decode().splitlines() if line.startswith("# TYPE")
    }
    return names | {f"{family.name}_bucket" for family in REGISTRY.collect() if family.type == "histogram"}


def named_in_rules() -> set[str]:
    rules = yaml.safe_load((OPERATIONS / "alerts.yml").read_text(encoding="utf-8"))
    return {
        name for group in rules["groups"] for rule in group["rules"] for name in _NAME.findall(rule["expr"])
    }


def named_in_dashboard() -> set[str]:
    dashboard = json.loads((OPERATIONS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    return {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in _NAME.findall(target["expr"])
    }


def test_the_alert_rules_and_the_dashboard_name_only_metrics_petent_serves() -> None:
    assert named_in_rules() and named_in_dashboard()
    assert named_in_rules() - served() == set()
    assert named_in_dashboard() - served() == set()


def test_the_check_sees_a_metric_that_does_not_exist() -> None:
    assert "petent_outbox_oldest_seconds" in served() and "petent_no_such_metric" not in served()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian: prometheus)")
def test_promtool_accepts_the_alert_rules() -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(OPERATIONS / "alerts.yml")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # The unit names /opt/petent; verify it as installed there, with a program that exists.
    unit = (
        (OPERATIONS / "petent.service")
        .read_text(encoding="utf-8")
        .replace("/opt/petent/.venv/bin/petent", shutil.which("true") or "/bin/true")
    )
    (tmp_path / "petent.service").write_text(unit, encoding="utf-8")
    checked = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / "petent.service")],
        capture_output=True,
        text=True,
    )
    problems = [line for line in (checked.stdout + checked.stderr).splitlines() if "petent.service" in line]
    assert not problems, "\n".join(problems)
