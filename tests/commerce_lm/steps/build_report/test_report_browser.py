"""The HTML report in headless Chromium: every plot loads, no script error, a screenshot comes out."""

import json
import shutil
import subprocess

import pytest

from commerce_lm import names

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Appended to a copy of the page: reports what the browser saw, as the page's title.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener("load", () => {
  const images = [...document.images];
  const broken = images.filter(i => !i.complete || i.naturalWidth === 0).length;
  document.title = JSON.stringify({images: images.length, broken: broken, errors: window.__errors});
});
</script>"""


@pytest.fixture(scope="module")
def report_html(tmp_path_factory, tiny_cfg):
    from commerce_lm.steps.build_report.render import render_html

    metrics = {
        "tasks": {
            "t": {
                "plm": {"roc_auc": 0.7, "pr_auc": 0.5, "train_seconds": 1.0, "by_language": {}},
                "finetuned": {"roc_auc": 0.8, "pr_auc": 0.6, "train_seconds": 1.0, "by_language": {}},
            }
        },
        "similarity": {
            "s": {
                "plm": {"f1": 0.3, "precision": 0.3, "recall": 0.3},
                "finetuned": {"f1": 0.5, "precision": 0.5, "recall": 0.5},
            }
        },
        "domain": {},
        "cost": {},
        "data": {},
    }
    curve = {
        "roc": {"fpr": [0, 0.2, 1], "tpr": [0, 0.7, 1], "thresholds": [1, 0.5, 0]},
        "pr": {"precision": [1, 0.6, 0.3], "recall": [0, 0.5, 1]},
    }
    examples = {"t": [{"id": "x", "label": 1, "score": 0.1, "text": "<script>document.title='pwned'</script>"}]}
    page = render_html(tiny_cfg, metrics, {"t": {"plm": curve, "finetuned": curve}}, examples)
    path = tmp_path_factory.mktemp("report") / names.REPORT_HTML
    path.write_text(page)
    return path


def _chromium(*args, cwd):
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={cwd / 'profile'}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plots_load_without_script_errors(report_html, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(report_html.read_text().replace("</body>", PROBE + "</body>"))
    result = _chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri(), cwd=tmp_path)
    title = result.stdout.split("<title>", 1)[1].split("</title>", 1)[0]
    seen = json.loads(title.replace("&quot;", '"'))
    assert seen["images"] >= 2 and seen["broken"] == 0 and seen["errors"] == []


def test_untrusted_script_stays_text_and_screenshot(report_html, tmp_path):
    dom = _chromium("--dump-dom", report_html.as_uri(), cwd=tmp_path).stdout
    assert "pwned" not in dom.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    shot = tmp_path / "report.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,1600", report_html.as_uri(), cwd=tmp_path)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
