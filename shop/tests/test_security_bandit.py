"""bandit over the application code: zero findings without an inline justification.

bandit runs in a subprocess over the code that is deployed (config, shop, orders,
seckill, manage.py; not tests or migrations). A finding passes only if its statement
carries a suppression *with a reason*: `# nosec BXXX - reason`, or the project's
equivalent for ruff's port of the same check, `# noqa: SXXX - reason` (ruff's S rules
are bandit's, numbered alike, and `make lint` runs them on every file). A bare
`# nosec` or `# noqa: SXXX` does not count.

B404 (`import subprocess`) is skipped: importing the module is not a finding, every
call into it is checked by B602-B607.

bench/ (the load-test harness, loopback only, never deployed) is not scanned yet: its
findings await their justifications (see docs/security.md).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["config", "shop", "orders", "seckill", "manage.py"]
SKIPPED = ["B404"]


def justified(finding, lines):
    number = finding["test_id"][1:]
    reasoned = re.compile(rf"#\s*(nosec\b[^#]*\b{finding['test_id']}|noqa:[^#]*\bS{number}\b)[^#]*?\s-\s*\w")
    first, last = min(finding["line_range"]), max(finding["line_range"])
    return any(reasoned.search(lines[i - 1]) for i in range(first, last + 1))


def test_bandit_finds_nothing_unjustified():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bandit",
            "--recursive",
            "--format",
            "json",
            "--quiet",
            "--exclude",
            "*/tests/*,*/migrations/*",
            "--skip",
            ",".join(SKIPPED),
            *SCANNED,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    assert report["metrics"]["_totals"]["loc"] > 3000, "bandit scanned too little; wrong paths?"
    unjustified = []
    for finding in report["results"]:
        lines = (ROOT / finding["filename"]).read_text().splitlines()
        if not justified(finding, lines):
            unjustified.append(
                f"{finding['filename']}:{finding['line_number']} {finding['test_id']} {finding['issue_text']}"
            )
    assert not unjustified, "\n".join(unjustified)
