"""The browser check itself: it must see what goes wrong on a page, or the page tests prove nothing."""

from tests.analysis.browser import check_page


def test_check_page_reports_errors_broken_images_and_blank_pages(tmp_path, chromium):
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!doctype html><html><body><p>text</p><img src='missing.png'>"
        "<script>console.error('logged'); undefinedFunction();</script></body></html>"
    )
    check = check_page(bad, chromium=chromium)
    assert check.images == [("missing.png", False)]
    assert any("logged" in e for e in check.errors)
    assert any("undefinedFunction" in e for e in check.errors)
    assert any("missing.png" in e for e in check.errors)

    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><html><body></body></html>")
    check = check_page(blank, chromium=chromium)
    assert check.errors == [] and check.text_length == 0 and check.distinct_colours() == 1
