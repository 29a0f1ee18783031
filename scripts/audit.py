"""Dependency audit: known vulnerabilities in the installed Python packages and in the
front end's npm packages. Run by scripts/audit.sh (and so by scripts/test.sh and CI).

Python: ``pip-audit`` over the installed virtual environment, asking PyPI's vulnerability
data (``/pypi/<name>/<version>/json``). Where that endpoint cannot be reached (some mirrors
and proxies serve only ``/pypi/<name>/json``), each package that pip-audit could not check
is looked up there instead: that document lists the vulnerabilities of the project's latest
release, so it decides for packages installed at their latest version and the rest are
reported as not covered.

npm: ``npm audit --audit-level=high`` in frontend/ (the npm registry's bulk advisory API).

A vulnerability fails the audit unless its id (PYSEC-, GHSA-, CVE- ...) is in
scripts/audit-allowlist.txt. A service that cannot be reached is reported and skipped, so a
network hiccup does not fail CI; ``TESSERA_AUDIT_STRICT=1`` makes it fail instead.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = ROOT / "scripts" / "audit-allowlist.txt"
STRICT = os.environ.get("TESSERA_AUDIT_STRICT") == "1"
NPM_LEVELS = {"high", "critical"}


def allowed_ids() -> set[str]:
    """Ids from the allow-list: the first field of each ``ID | package | reason | date``."""
    ids = set()
    for line in ALLOWLIST.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ids.add(line.split("|")[0].strip())
    return ids


def _ids(vulnerability: dict[str, object]) -> set[str]:
    aliases = vulnerability.get("aliases") or []
    assert isinstance(aliases, list)
    return {str(vulnerability.get("id"))} | {str(alias) for alias in aliases}


def _installed_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


def latest_release_vulnerabilities(name: str, version: str) -> list[dict[str, object]] | None:
    """PyPI's vulnerabilities for ``name`` if ``version`` is its latest release; None if
    that cannot be decided (unreachable, or an older version installed)."""
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=30) as answer:
            document = json.load(answer)
    except (urllib.error.URLError, TimeoutError, ValueError):
        return None
    if document.get("info", {}).get("version") != version:
        return None
    vulnerabilities: list[dict[str, object]] = document.get("vulnerabilities") or []
    return vulnerabilities


def audit_python(allowed: set[str]) -> tuple[list[str], list[str]]:
    """(findings, notes)."""
    finished = subprocess.run(
        [
            str(Path(sys.executable).parent / "pip-audit"),
            "--local",
            "--skip-editable",
            "--format",
            "json",
            "--progress-spinner",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    try:
        report = json.loads(finished.stdout)
    except json.JSONDecodeError:
        return [], [
            f"pip-audit gave no report (exit {finished.returncode}): {finished.stderr[-500:]}"
        ]
    findings: list[str] = []
    skipped: list[tuple[str, str]] = []
    for dependency in report.get("dependencies", []):
        name = dependency["name"]
        version = dependency.get("version") or _installed_version(name)
        if "skip_reason" in dependency:
            skipped.append((name, version))
        for vulnerability in dependency.get("vulns", []):
            if not _ids(vulnerability) & allowed:
                fixes = ", ".join(vulnerability.get("fix_versions", [])) or "none yet"
                findings.append(f"{name} {version}: {vulnerability['id']} (fixed in {fixes})")
    checked = len(report.get("dependencies", [])) - len(skipped)
    notes = [f"pip-audit checked {checked} packages against PyPI's per-version data"]
    if skipped:
        covered, uncovered = 0, []
        for name, version in skipped:
            vulnerabilities = latest_release_vulnerabilities(name, version)
            if vulnerabilities is None:
                uncovered.append(f"{name} {version}")
                continue
            covered += 1
            for vulnerability in vulnerabilities:
                if not _ids(vulnerability) & allowed:
                    findings.append(f"{name} {version}: {vulnerability['id']} (latest release)")
        notes.append(
            f"{len(skipped)} could not be checked that way; {covered} were checked as their "
            f"latest release through PyPI's project JSON; not covered: {len(uncovered)}"
            + (
                f" ({', '.join(uncovered[:15])}{' ...' if len(uncovered) > 15 else ''})"
                if uncovered
                else ""
            )
        )
        if uncovered and STRICT:
            findings.append(f"{len(uncovered)} Python packages could not be audited")
    return findings, notes


def audit_npm(allowed: set[str]) -> tuple[list[str], list[str]]:
    finished = subprocess.run(
        ["npm", "audit", "--json", "--audit-level=high"],
        cwd=ROOT / "frontend",
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        report = json.loads(finished.stdout)
    except json.JSONDecodeError:
        report = {}
    if "vulnerabilities" not in report:
        reason = (report.get("error") or {}).get("summary") or finished.stderr.strip()[-300:]
        message = f"npm audit could not reach the advisory service: {reason}"
        return ([message] if STRICT else []), [message + " (skipped)"]
    findings = []
    for package, entry in report["vulnerabilities"].items():
        if entry.get("severity") not in NPM_LEVELS:
            continue
        advisories = [via for via in entry.get("via", []) if isinstance(via, dict)]
        for advisory in advisories:
            url = str(advisory.get("url", ""))
            advisory_id = url.rsplit("/", 1)[-1] or str(advisory.get("source"))
            if advisory_id not in allowed:
                findings.append(f"{package}: {advisory_id} {advisory.get('title', '')}")
    counts = report.get("metadata", {}).get("vulnerabilities", {})
    return findings, [f"npm audit: {counts}"]


def main() -> int:
    allowed = allowed_ids()
    findings: list[str] = []
    for audit in (audit_python, audit_npm):
        found, notes = audit(allowed)
        findings += found
        for note in notes:
            print(f"audit: {note}")
    for finding in findings:
        print(f"audit: VULNERABLE {finding}")
    print(f"audit: {len(findings)} finding(s); allow-list: {len(allowed)} id(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
