"""The internal link check that CI runs on the built documentation (``.ci/check_links.py``)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "check_links.py"


def _checker():
    spec = importlib.util.spec_from_file_location("check_links", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="api.html#module-x">ok</a><a href="api.html#module-y">gone</a>'
        '<a href="sub/">folder</a><a href="missing.html">no file</a>'
        '<a href="#top">self</a><a href="https://example.org/#x">external</a>'
        '<img src="img.png"><a id="top"></a>')
    (tmp_path / "api.html").write_text('<section id="module-x"></section>')
    (tmp_path / "sub" / "index.html").write_text('<a href="../index.html#top">up</a>')
    (tmp_path / "img.png").write_bytes(b"")
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "template.html").write_text('<a href="{{ pathto(x) }}">')
    checked, broken = _checker().check(tmp_path)
    assert checked == 7
    assert len(broken) == 2
    assert "api.html#module-y (no id 'module-y'" in broken[0] + broken[1]
    assert any("missing.html (no file" in line for line in broken)


def test_main_reports_and_fails(tmp_path, capsys):
    (tmp_path / "index.html").write_text('<a href="#nowhere">x</a>')
    assert _checker().main(["check_links", str(tmp_path)]) == 1
    assert "1 internal links checked, 1 broken" in capsys.readouterr().out
    (tmp_path / "index.html").write_text('<a href="#here" id="here">x</a>')
    assert _checker().main(["check_links", str(tmp_path)]) == 0
