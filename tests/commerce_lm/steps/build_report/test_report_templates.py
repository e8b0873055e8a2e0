"""The report pages come from templates: the HTML one is autoescaped, both ship in the wheel."""

import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser

import pytest

from commerce_lm.steps.build_report.render import render_html, render_markdown
from tests.helpers.paths import REPO

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'

METRICS = {
    "tasks": {
        "t": {
            "plm": {
                "roc_auc": 0.7,
                "pr_auc": 0.5,
                "roc_auc_ci": [0.6, 0.8],
                "pr_auc_ci": [],
                "train_seconds": 1.0,
                "by_language": {},
            },
            "n_test": 10,
            "positive_rate": 0.3,
        }
    },
    "similarity": {},
    "domain": {},
    "cost": {},
    "data": {},
}
CURVES = {
    "t": {
        "plm": {
            "roc": {"fpr": [0, 1], "tpr": [0, 1], "thresholds": [1, 0]},
            "pr": {"precision": [1, 0.3], "recall": [0, 1]},
        }
    }
}


class _Page(HTMLParser):
    """What a browser would build: the elements, their attributes and the text of every cell."""

    def __init__(self):
        super().__init__()
        self.tags, self.attributes, self.cells, self._cell = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]
        if tag == "td":
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self.cells.append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


@pytest.fixture(scope="module")
def page(tiny_cfg):
    examples = {"t": [{"id": ATTRIBUTE, "label": 1, "score": 0.1, "text": f"{SCRIPT} then {ATTRIBUTE}"}]}
    html = render_html(tiny_cfg, METRICS, CURVES, examples)
    parsed = _Page()
    parsed.feed(html)
    return html, parsed


def test_listing_text_stays_inert_text_in_the_html(page):
    html, parsed = page
    # No element or attribute came from the listing: one plot, no script, no event handler.
    assert "script" not in parsed.tags and "onerror" not in parsed.attributes
    assert parsed.tags.count("img") == 1 and html.count("data:image/png;base64,") == 1
    # The listing reaches the page as text, every character of it, and escaped in the source.
    assert f"{SCRIPT} then {ATTRIBUTE}" in parsed.cells and ATTRIBUTE in parsed.cells
    assert SCRIPT not in html and ATTRIBUTE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_markdown_keeps_its_tables_whole(tiny_cfg):
    metrics = {**METRICS, "tasks": {"a|b": METRICS["tasks"]["t"]}}
    text = render_markdown(tiny_cfg, metrics)
    assert text.startswith(f"# {tiny_cfg.report.title}\n") and text.index("## Verdict") < text.index("## Binary")
    assert "| a\\|b / PLM frozen + head | 0.700 [0.600, 0.800] | 0.500 | 1.0 | - | - |" in text.splitlines()


def test_a_run_without_similarity_sets_shows_no_empty_knn_table(tiny_cfg):
    text = render_markdown(tiny_cfg, METRICS)
    assert "## Binary integrity tasks" in text and "KNN" not in text and "Similarity" not in text
    arm = {"f1": 0.4, "precision": 0.5, "recall": 0.3}
    with_knn = {**METRICS, "similarity": {"s": {"plm": arm, "finetuned": arm}}}
    assert "## Similarity detection (KNN)" in render_markdown(tiny_cfg, with_knn)


def test_the_wheel_ships_the_templates(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ beside the sources
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for file in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / file, source / file)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*command, str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("commerce_lm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"commerce_lm/steps/build_report/templates/report.{ext}" for ext in ("html", "md")} <= names
