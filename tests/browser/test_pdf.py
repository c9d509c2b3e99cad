"""scripts/pdf.py: the built site printed as one PDF by headless Chromium."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


def _pdf_module():
    spec = importlib.util.spec_from_file_location("pdf_script", ROOT / "scripts" / "pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_site_prints_as_one_pdf_in_reading_order(built_site, tmp_path):
    pdf = _pdf_module()
    out = tmp_path / "report.pdf"
    n = pdf.make_pdf(built_site, out, only=("foundations/", "architectures/"))
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert n >= 3  # Foundations, the Architectures survey and its pages
    pages = data.count(b"/Type /Page") - data.count(b"/Type /Pages")
    assert pages > n  # a title page, then each site page starting on a new page
    assert not out.with_name("report.pdf.part").exists()


def test_reading_order_keeps_the_first_of_each_page_and_skips_prefixes():
    pdf = _pdf_module()
    base = "http://127.0.0.1:1/"
    links = [base, base + "a/", base + "api/x/", base + "a/", base + "b/", "http://x.org/"]
    assert pdf.reading_order(links, base, ("api/",)) == [base, base + "a/", base + "b/"]


def test_a_missing_site_is_named(tmp_path, capsys):
    pdf = _pdf_module()
    assert pdf.main(["--site", str(tmp_path / "nope"), "--out", str(tmp_path / "x.pdf")]) == 2
    assert "holds no built site" in capsys.readouterr().err
