"""Known vulnerabilities in the versions uv.lock holds (pip-audit against PyPI's advisory data).

Fails when a locked version has a known vulnerability. Where the advisory database cannot be
reached (a machine that sees only a package mirror), it says so in one line and passes: an audit
that could not run proves nothing either way, and must not fail CI for the network.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UV = ROOT / ".tools" / "bin" / "uv"


def locked_requirements() -> str:
    return subprocess.run(
        [str(UV), "export", "--frozen", "--format", "requirements-txt", "--no-emit-project", "--quiet"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def main() -> int:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
        requirements.write(locked_requirements())
        requirements.flush()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip_audit",
                "--disable-pip",
                "--require-hashes",
                "--progress-spinner",
                "off",
                "--format",
                "json",
                "--timeout",
                "10",
                "-r",
                requirements.name,
            ],
            capture_output=True,
            text=True,
        )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        reason = (run.stderr.strip().splitlines() or ["no output"])[-1][:200]
        print(f"audit: skipped, the advisory database could not be reached ({reason})")
        return 0
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    audited = [d for d in dependencies if "skip_reason" not in d]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"audit: {dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixed})")
    if vulnerable:
        print(
            f"audit: {len(vulnerable)} locked package(s) with known vulnerabilities: move them with `make lock`"
        )
        return 1
    if not audited:
        print(
            f"audit: skipped, the advisory database answered for none of the {len(dependencies)} locked packages (no network to it?)"
        )
        return 0
    print(
        f"audit: {len(audited)} locked packages, no known vulnerabilities ({len(dependencies) - len(audited)} not found in the database)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
