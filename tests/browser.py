"""A report checked in headless Chromium (the Debian package, driven by Playwright in a subprocess)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def check_in_chromium(html: Path, tmp_path: Path) -> dict:
    """Open ``html``; return console errors, dialogs and, per ``.chart``, whether an SVG of real size with
    drawn paths is there; ``banner``: where the simulated-data banner is in the viewport at the top of the page
    and scrolled to its end (None without one); a full-page screenshot goes to ``tmp_path / "report.png"``."""
    script = tmp_path / "check.py"
    script.write_text(f"""
import json
from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path={CHROMIUM!r}, args=["--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"])
    page = browser.new_page(viewport={{"width": 1200, "height": 900}})
    errors, dialogs = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto({html.as_uri()!r})
    charts = page.eval_on_selector_all(".chart", '''els => els.map(e => {{
        const svg = e.querySelector("svg"); if (!svg) return {{id: e.id, ok: false}};
        const r = svg.getBoundingClientRect();
        return {{id: e.id, ok: r.width > 50 && r.height > 50 && svg.querySelectorAll("path").length > 5}};
    }})''')
    where = "() => {{ const b = document.getElementById('simulated-banner'); if (!b) return null; " \
        "const r = b.getBoundingClientRect(); return {{top: r.top, height: r.height}}; }}"
    banner = {{"top": page.evaluate(where)}}
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    banner["end"] = page.evaluate(where)
    banner = banner if banner["top"] else None
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path={str(tmp_path / "report.png")!r}, full_page=True)
    browser.close()
print(json.dumps({{"errors": errors, "dialogs": dialogs, "charts": charts, "banner": banner}}))
""")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])
