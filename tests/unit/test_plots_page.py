"""The offline page template for `dvc plots show`: built from pinned npm packages, wired into DVC."""

from __future__ import annotations

import configparser

import pytest
from dvc_render.html import HTML

from scripts.make_plots_page import LIBRARIES, PAGE, build_page, inline_script, integrity_of
from tests.conftest import PROJECT


def test_the_page_inlines_the_libraries_in_order_and_leaves_dvc_its_placeholders():
    page = build_page({lib.name: f"window.{lib.name.replace('-', '_')} = 1;" for lib in LIBRARIES})
    assert page.count("{plot_divs}") == 1 and "{refresh_tag}" in page
    assert "{scripts}" not in page  # DVC would put its CDN <script src=...> tags there
    positions = [page.index(f"/* {lib.name}@{lib.version} (BSD-3-Clause) */") for lib in LIBRARIES]
    assert positions == sorted(positions)
    filled = HTML(page).with_element("<div id='p'></div>").embed()
    assert "<div id='p'></div>" in filled and "{plot_divs}" not in filled


def test_a_bundle_that_would_close_its_script_element_is_refused():
    with pytest.raises(ValueError, match="cannot inline"):
        inline_script(LIBRARIES[0], "var s = '</script>';")


def test_the_committed_page_is_the_configured_template_and_holds_the_pinned_versions():
    config = configparser.ConfigParser()
    config.read(PROJECT / ".dvc/config")
    assert PROJECT / ".dvc" / config["plots"]["html_template"] == PAGE
    text = PAGE.read_text(encoding="utf-8")
    for lib in LIBRARIES:
        assert f"/* {lib.name}@{lib.version} (BSD-3-Clause) */" in text
    assert 500_000 < PAGE.stat().st_size < 2_000_000
    assert (
        integrity_of(b"")
        == "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
    )
