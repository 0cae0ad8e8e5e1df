"""The class report read back: every number the page shows (through its data attributes and
its text) against a hand-built gradebook with known numbers and against the gradebook's own
methods and grades.csv; untrusted text escaped; nothing that could fetch; and a real headless
Chromium that renders the page, shows the scores, and sends no request even for hostile ids."""

from __future__ import annotations

import csv
import http.server
import io
import statistics
import threading
from html.parser import HTMLParser

import pytest

from kernelnet.grading.class_report import class_report_html, score_bins, top_failure
from kernelnet.grading.codes import meaning
from kernelnet.grading.gradebook import Gradebook, SubmissionGrade
from kernelnet.grading.gradebook import TestRow as Row  # not a pytest class
from tests.helpers import dump_dom, needs_browser

TESTS = {  # test -> (file, points)
    "fc_forward_small": ("layers.py", 1.0),
    "fc_backward_small": ("layers.py", 2.0),
    "softmax_small": ("loss.py", 2.0),
}
FILES = ("layers.py", "loss.py")
HOSTILE_ID = '<script>alert("x")</script>\'quoted" id'
HOSTILE_REASON = "</td></tr><img src=x onerror=alert(1)> \"' & reason"


def _row(test: str, code: int, seconds: float = 0.1, reason: str = "") -> Row:
    file, points = TESTS[test]
    return Row(
        test, file, test.split("_")[0], code, points if code == 0 else 0.0, points, seconds,
        "visible", reason if code else "",
    )  # fmt: skip


def _graded(name, student, codes, seconds, digest, reasons=None) -> SubmissionGrade:
    reasons = reasons or {}
    rows = tuple(_row(t, c, seconds / 3, reasons.get(t, f"code {c}")) for t, c in codes.items())
    return SubmissionGrade(name, student, "graded", "", seconds, rows, digest)


def _book(submissions, tests=tuple(TESTS)) -> Gradebook:
    return Gradebook(
        "hw3", tuple(submissions), tuple(tests), {t: TESTS[t][1] for t in tests}, FILES
    )


def _class(
    student: str = "alice",
    reason: str = "fc_backward: expected shape (2, 3)",
    limit_reason: str = HOSTILE_REASON,
) -> Gradebook:
    """Five submissions, three tests (5 points), known numbers:

    alice 5 (all pass), bob 3 and dave 3 (identical sources, 52 on fc_backward), carol 0
    (53, 52, and 70 time limit on softmax), eve not graded. Graded scores [5, 3, 0, 3]:
    mean 2.75, median 3, max 5; pass rates 3/4, 1/4, 3/4."""
    ok = {t: 0 for t in TESTS}
    return _book(
        [
            _graded("sub_alice", student, ok, 1.0, "d-alice"),
            _graded("sub_bob", "bob", {**ok, "fc_backward_small": 52}, 2.5, "d-same",
                    {"fc_backward_small": reason}),
            _graded("sub_carol", "carol",
                    {"fc_forward_small": 53, "fc_backward_small": 52, "softmax_small": 70},
                    12.0, "d-carol", {"softmax_small": limit_reason}),
            _graded("sub_dave", "dave", {**ok, "fc_backward_small": 52}, 2.4, "d-same"),
            SubmissionGrade("sub_eve", "eve", "failed", "cannot unpack sub_eve.zip: <bad> \"zip\"",
                            0.2, (), ""),
        ]
    )  # fmt: skip


class _Node:
    def __init__(self, tag: str, attrs: dict[str, str]):
        self.tag, self.attrs, self.children, self.parts = tag, attrs, [], []

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, tag: str | None = None, **attrs) -> list[_Node]:
        """Descendants with that tag and attributes (``data_test=None``: the attribute is
        present, whatever its value)."""
        keys = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag)
            and all(k in n.attrs and (v is None or n.attrs[k] == v) for k, v in keys.items())
        ]


class _Tree(HTMLParser):
    VOID = {"meta", "br", "img", "link", "input", "hr", "wbr", "source", "area", "base", "col"}

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.root = _Node("#root", {})
        self.stack = [self.root]
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].parts.append(data)


def parse(text: str) -> _Node:
    return _Tree(text).root


def _csv_rows(book: Gradebook) -> dict[str, dict[str, str]]:
    return {r["submission"]: r for r in csv.DictReader(io.StringIO(book.grades_csv()))}


def _students(dom: _Node) -> list[_Node]:
    return dom.find("tr", data_student=None, data_score=None)


# ---- numbers --------------------------------------------------------------------------------


def test_headline_figures_are_the_gradebooks():
    book = _class()
    dom = parse(class_report_html(book, "hw3, spring"))
    stat = {n.attrs["data-stat"]: n for n in dom.find(data_stat=None)}
    graded = [s.score for s in book.submissions if s.status == "graded"]
    assert graded == [5.0, 3.0, 0.0, 3.0]
    expected = {"graded": 4, "failed": 1, "mean": 2.75, "median": 3.0, "max": 5.0, "full": 1}
    assert {k: float(stat[k].attrs["data-value"]) for k in expected} == expected
    assert float(stat["mean"].attrs["data-value"]) == statistics.fmean(graded)
    assert float(stat["median"].attrs["data-value"]) == statistics.median(graded)
    assert [stat[k].text() for k in ("graded", "failed", "mean", "median", "max")] == [
        "4", "1", "2.75", "3", "5",
    ]  # fmt: skip
    assert "max of 5" in dom.text()


def test_histogram_counts_each_graded_score_once():
    book = _class()
    dom = parse(class_report_html(book, "t"))
    (svg,) = dom.find("svg", class_="histogram")
    bars = svg.find("rect", class_="bin")
    # Whole points out of 5: one bar per point, the last one [4, 5] closed.
    assert [(float(b.attrs["data-lo"]), float(b.attrs["data-hi"])) for b in bars] == [
        (0, 1), (1, 2), (2, 3), (3, 4), (4, 5),
    ]  # fmt: skip
    counts = [int(b.attrs["data-count"]) for b in bars]
    assert counts == [1, 0, 0, 2, 1]
    assert sum(counts) == sum(s.status == "graded" for s in book.submissions)
    labels = [t.text() for t in svg.find("text")]
    assert labels.count("2") >= 2 and "points of 5" in " ".join(labels)  # count 2 and tick 2


def test_score_bins_edges_and_float_sums():
    assert [n for *_, n in score_bins([0.0, 5.0, 5.0, 2.0], 5.0)] == [1, 0, 1, 0, 2]
    # 0.6 / 0.1 is 5.999...: it must still count in [0.6, 0.7).
    bins = score_bins([0.6, 0.1 + 0.2, 1.0], 1.0)
    assert len(bins) == 10 and bins[6][2] == 1 and bins[3][2] == 1 and bins[9][2] == 1
    wide = score_bins([43.0, 12.5], 43.0)
    assert len(wide) <= 12 and wide[0][1] == 5.0 and sum(n for *_, n in wide) == 2
    assert score_bins([], 0.0) == [(0.0, 1.0, 0)]


def test_each_test_row_shows_its_pass_rate_top_failure_and_codes():
    book = _class()
    dom = parse(class_report_html(book, "t"))
    rows = {r.attrs["data-test"]: r for r in dom.find("tr", data_test=None, data_pass_rate=None)}
    assert list(rows) == list(TESTS)
    known = {
        "fc_forward_small": (0.75, "53", 0.25),
        "fc_backward_small": (0.25, "52", 0.75),
        "softmax_small": (0.75, "70", 0.25),
    }
    for test, (rate, code, share) in known.items():
        row = rows[test]
        assert float(row.attrs["data-pass-rate"]) == rate == book.pass_rate(test)
        assert row.attrs["data-top-code"] == code
        assert float(row.attrs["data-top-share"]) == share
        assert top_failure(book, test)[::2] == (int(code), share)
        chips = {
            int(c.attrs["data-code"]): int(c.attrs["data-count"])
            for c in row.find("span", data_count=None)
        }
        assert chips == dict(book.code_counts(test))
    # The sentence an instructor reads: code, meaning, test, share.
    text = " ".join(rows["fc_backward_small"].text().split())
    assert f"52 {meaning(52)} · 75% of the class" in text and "25%" in text
    struggles = " ".join(dom.find("ul", class_="struggles")[0].text().split())
    assert f"52 {meaning(52)} on fc_backward_small for 75% of the class (3 of 4)" in struggles


def test_top_failure_ties_go_to_the_lower_code_and_none_without_failures():
    book = _book(
        [_graded(f"s{i}", f"u{i}", {"softmax_small": c}, 1.0, "") for i, c in enumerate((61, 53))],
        tests=["softmax_small"],
    )
    assert top_failure(book, "softmax_small") == (53, 1, 0.5)
    passing = _book([_graded("s", "u", {"softmax_small": 0}, 1.0, "")], tests=["softmax_small"])
    assert top_failure(passing, "softmax_small") is None
    row = parse(class_report_html(passing, "t")).find("tr", data_test="softmax_small")[0]
    assert row.attrs["data-top-code"] == "" and "none" in row.text()


def test_student_table_is_grades_csv_sorted_by_score():
    book = _class()
    dom = parse(class_report_html(book, "t"))
    rows = _students(dom)
    assert [r.attrs["data-submission"] for r in rows] == [
        "sub_alice", "sub_bob", "sub_dave", "sub_carol", "sub_eve",
    ]  # fmt: skip
    expected = _csv_rows(book)
    assert len(rows) == len(expected)
    for row in rows:
        line = expected[row.attrs["data-submission"]]
        assert row.attrs["data-student"] == line["student"]
        assert row.attrs["data-status"] == line["status"]
        assert float(row.attrs["data-score"]) == float(line["score"])
        for cell in row.find("td", data_file=None):
            assert float(cell.attrs["data-points"]) == float(
                line[f"points {cell.attrs['data-file']}"]
            )
        assert [c.attrs["data-file"] for c in row.find("td", data_file=None)] == list(FILES)
    assert float(rows[0].attrs["data-score"]) == 5.0 and "not graded" in rows[-1].text()


def test_slowest_limits_failed_and_duplicates():
    book = _class()
    dom = parse(class_report_html(book, "t"))
    slowest = dom.find("section", id="slowest")[0].find("tr", data_seconds=None)
    assert [r.attrs["data-submission"] for r in slowest] == [
        "sub_carol", "sub_bob", "sub_dave", "sub_alice", "sub_eve",
    ]  # fmt: skip
    assert float(slowest[0].attrs["data-seconds"]) == 12.0
    limits = dom.find("section", id="limits")[0].find("tr", data_code=None)
    assert [(r.attrs["data-submission"], r.attrs["data-test"], r.attrs["data-code"]) for r in limits
            ] == [("sub_carol", "softmax_small", "70")]  # fmt: skip
    assert HOSTILE_REASON in limits[0].text() and meaning(70) in limits[0].text()
    failed = dom.find("section", id="failed")[0].find("tr", data_submission=None)
    assert [r.attrs["data-submission"] for r in failed] == ["sub_eve"]
    assert 'cannot unpack sub_eve.zip: <bad> "zip"' in failed[0].text()
    groups = dom.find("div", data_group=None)
    assert [[li.attrs["data-submission"] for li in g.find("li")] for g in groups] == [
        list(group) for group in book.duplicates()
    ] == [["sub_bob", "sub_dave"]]  # fmt: skip


def test_only_the_ten_slowest_are_listed():
    subs = [_graded(f"s{i:02}", f"u{i}", {"softmax_small": 0}, float(i), "") for i in range(13)]
    dom = parse(class_report_html(_book(subs, tests=["softmax_small"]), "t"))
    slowest = dom.find("section", id="slowest")[0].find("tr", data_seconds=None)
    assert [float(r.attrs["data-seconds"]) for r in slowest] == [float(i) for i in range(12, 2, -1)]


@pytest.mark.parametrize("submissions", [[], ["one"]], ids=["empty class", "one submission"])
def test_an_empty_class_and_a_single_submission_render(submissions):
    subs = [_graded("only", "solo", {t: 0 for t in TESTS}, 0.5, "x") for _ in submissions]
    book = _book(subs)
    page = class_report_html(book, "t")
    dom = parse(page)
    stat = {n.attrs["data-stat"]: n.attrs["data-value"] for n in dom.find(data_stat=None)}
    assert float(stat["graded"]) == len(subs) and stat["failed"] == "0.0"
    assert len(_students(dom)) == len(subs)
    if subs:
        assert stat["mean"] == stat["median"] == stat["max"] == "5.0"
        assert [int(b.attrs["data-count"]) for b in dom.find("rect", class_="bin")] == [0] * 4 + [1]
    else:
        assert stat["mean"] == "" and "nothing to plot" in page and not dom.find("svg")
        assert all(r.attrs["data-pass-rate"] == "" for r in dom.find("tr", data_test=None))
    bare = parse(class_report_html(Gradebook("hw0", (), (), {}, ()), "nothing"))
    assert "no tests" in bare.text() and bare.find("h1")[0].text() == "nothing"


# ---- safety ---------------------------------------------------------------------------------

URL_ATTRIBUTES = {"src", "href", "xlink:href", "action", "formaction", "srcset", "poster",
                  "data", "background", "ping", "manifest", "cite"}  # fmt: skip
FETCHING_TAGS = {"script", "link", "img", "iframe", "frame", "object", "embed", "base", "form",
                 "audio", "video", "source", "track", "image", "use", "input"}  # fmt: skip


def _assert_cannot_fetch(dom: _Node) -> None:
    for node in dom.walk():
        assert node.tag not in FETCHING_TAGS, node.tag
        for name, value in node.attrs.items():
            assert not name.startswith("on"), name  # no event handler: no script at all
            if name in URL_ATTRIBUTES:
                assert value.startswith(("#", "data:")), (name, value)
            assert "url(" not in value.lower(), value
    (csp,) = dom.find("meta", http_equiv="Content-Security-Policy")
    assert "default-src 'none'" in csp.attrs["content"]


def test_untrusted_text_is_escaped_and_reads_back_intact():
    book = _class(student=HOSTILE_ID, reason=HOSTILE_REASON)
    page = class_report_html(book, 'Grades <script>"t"</script>')
    for raw in (HOSTILE_ID, HOSTILE_REASON, "<script", "<img", "<bad>"):
        assert raw not in page, raw
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#x27;quoted&quot; id" in page
    dom = parse(page)
    _assert_cannot_fetch(dom)
    # The parser unescapes: the ids come back exactly (escaped once, not twice).
    assert {r.attrs["data-student"] for r in _students(dom)} >= {HOSTILE_ID}
    assert dom.find("title")[0].text() == 'Grades <script>"t"</script>'
    assert HOSTILE_REASON in dom.text() and HOSTILE_ID in dom.text()


def test_the_page_has_no_url_no_script_and_no_external_resource():
    page = class_report_html(_class(limit_reason="time limit of 2 s exceeded"), "hw3")
    _assert_cannot_fetch(parse(page))
    lowered = page.lower()
    for needle in ("http:", "https:", "//", "<script", "<link", "<img", "@import", "url(", "src="):
        assert needle not in lowered, needle


# ---- a real browser -------------------------------------------------------------------------


@needs_browser
def test_chromium_renders_the_scores_and_the_histogram(tmp_path):
    book = _class(student=HOSTILE_ID)
    path = tmp_path / "report.html"
    path.write_text(class_report_html(book, "hw3 class report"), encoding="utf-8")
    dom = parse(dump_dom(path.as_uri(), tmp_path / "profile"))
    rows = _students(dom)
    expected = _csv_rows(book)
    assert {r.attrs["data-submission"]: float(r.attrs["data-score"]) for r in rows} == {
        name: float(line["score"]) for name, line in expected.items()
    }
    assert {r.attrs["data-student"] for r in rows} == {
        line["student"] for line in expected.values()
    }
    (svg,) = dom.find("svg", class_="histogram")
    bars = svg.find("rect", class_="bin")
    graded = [s.score for s in book.submissions if s.status == "graded"]
    assert len(bars) == len(score_bins(graded, book.max_score)) == 5
    assert sum(int(b.attrs["data-count"]) for b in bars) == len(graded)
    assert not dom.find("script") and not dom.find("img")


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str]

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.seen.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@needs_browser
def test_chromium_sends_no_request_for_hostile_ids_even_with_escaping_undone(tmp_path):
    """A local server records every request. Control: a plain page's <img> reaches it (so
    the check can see a request here). Then the report with ids and reasons that are fetching
    tags sends none, and neither does the report with such a tag planted unescaped: the
    page's Content-Security-Policy refuses the fetch."""
    seen: list[str] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        control = tmp_path / "control.html"
        control.write_text(f'<!DOCTYPE html><p>x</p><img src="{base}/control">')
        dump_dom(control.as_uri(), tmp_path / "p1")
        assert seen == ["/control"], "the recording server saw no request from a plain page"

        fetch = f'<img src="{base}/img"><link rel="stylesheet" href="{base}/css">'
        hostile = class_report_html(_class(student=fetch, reason=fetch), "t")
        report = tmp_path / "report.html"
        report.write_text(hostile, encoding="utf-8")
        dom = parse(dump_dom(report.as_uri(), tmp_path / "p2"))
        assert fetch in {r.attrs["data-student"] for r in _students(dom)}

        planted = tmp_path / "planted.html"
        planted.write_text(hostile.replace("<body>", f"<body>{fetch}", 1), encoding="utf-8")
        dump_dom(planted.as_uri(), tmp_path / "p3")
        assert seen == ["/control"]
    finally:
        server.shutdown()
        server.server_close()
