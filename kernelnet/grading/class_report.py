"""The class report: one self-contained HTML page an instructor opens after grading a class.

It draws only from a :class:`~kernelnet.grading.gradebook.Gradebook`: the headline (graded
and ungraded submissions, mean, median and best score), a score histogram, each test's pass
rate and most frequent failing code, every student's score, the slowest submissions, the
limits hit, the submissions that could not be graded and the groups of identical sources.

The page makes no network request by construction: no script at all, charts as inline SVG,
CSS inline, no ``src``/``href`` other than ``#fragment``, and a Content-Security-Policy of
``default-src 'none'`` so that even a tag that slipped through could not fetch anything.
Student ids, submission names, errors and reasons are untrusted text: every one goes through
:func:`html.escape` (quotes included) before it reaches the page.

Key values carry stable ``data-*`` attributes holding the exact number (``repr`` of the
float), so a test or a script reads the page back without parsing display text:
``tr[data-student][data-submission][data-score][data-status]``, ``td[data-file][data-points]``,
``tr[data-test][data-pass-rate][data-top-code][data-top-share]``, ``span[data-code][data-count]``,
``rect.bin[data-lo][data-hi][data-count]``, ``[data-stat]`` on the headline figures.
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Iterable, Sequence

from kernelnet.grading.codes import meaning
from kernelnet.grading.gradebook import Gradebook, SubmissionGrade
from kernelnet.report_html import STYLE

SLOWEST = 10  # submissions listed under "slowest"
STRUGGLES = 5  # tests listed under "where the class struggled"
MAX_BINS = 12

# The browser itself refuses any fetch: scripts, style sheets, images, frames, fonts, forms.
CSP = "; ".join(
    [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)

CSS = """
.sub { color: #555; margin-top: -.4rem; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.card { border: 1px solid #dde3ea; border-radius: 8px; padding: .6rem 1.1rem; min-width: 8rem; }
.card b { display: block; font-size: 1.7rem; font-weight: 600; color: #2166ac; }
.card.bad b { color: #c62828; } .card span { font-size: .85rem; color: #555; }
.bar { display: inline-block; width: 8rem; height: .7rem; background: #eef2f7;
  border-radius: 4px; overflow: hidden; vertical-align: middle; margin-right: .4rem; }
.bar > span { display: block; height: 100%; background: #1a7f37; }
.bar.score > span { background: #2166ac; }
.code { display: inline-block; border-radius: 999px; padding: 0 .45rem; margin: .1rem;
  font-size: .8rem; background: #eef2f7; white-space: nowrap; }
.c-ok { background: #dcf2e1; } .c-wrong { background: #fde7c8; } .c-limit { background: #eadcf5; }
.c-ours { background: #e4e4e4; } .c-todo { background: #f3f3f3; color: #666; }
td.l, th.l { text-align: left; } th.r { text-align: right; }
.muted { color: #777; } .nw { white-space: nowrap; } .none { color: #777; font-style: italic; }
.tag { font-size: .75rem; border-radius: 4px; padding: 0 .3rem; background: #fde2e2;
  color: #c62828; }
svg text { font-family: system-ui, sans-serif; font-size: 11px; fill: #333; }
svg .bin { fill: #2166ac; } svg .axis { stroke: #999; } svg .mean { stroke: #c62828; }
ul.struggles li { margin: .25rem 0; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pts(value: float) -> str:
    """A number of points as shown: at most two decimals, no trailing zeros, never ``-0``."""
    return f"{round(value, 2) + 0.0:.2f}".rstrip("0").rstrip(".")


def _exact(value: float | None) -> str:
    """The value of a data attribute: the float's repr, or empty when there is none."""
    return "" if value is None else repr(float(value))


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def _code_class(code: int) -> str:
    if code == 0:
        return "c-ok"
    if code == 40:
        return "c-todo"
    if 1 <= code <= 5:
        return "c-ours"
    return "c-limit" if code >= 70 else "c-wrong"


def _chip(code: int, count: int | None = None) -> str:
    tail = f" &times;{count}" if count is not None else ""
    attrs = f' data-count="{count}"' if count is not None else ""
    return (
        f'<span class="code {_code_class(code)}" data-code="{code}"{attrs} '
        f'title="{_e(meaning(code))}">{code}{tail}</span>'
    )


def _bar(share: float, kind: str = "") -> str:
    width = max(0.0, min(1.0, share)) * 100
    return f'<span class="bar {kind}"><span style="width:{width:.1f}%"></span></span>'


def _table(head: Sequence[str], rows: Iterable[str], align: str) -> str:
    """A table; ``align`` has one letter per column, ``l`` for text (left) or ``r``."""
    cells = "".join(f'<th class="{a}">{h}</th>' for h, a in zip(head, align, strict=True))
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _section(key: str, heading: str, body: str) -> str:
    return f'<section id="{key}" data-section="{key}"><h2>{heading}</h2>{body}</section>'


def _none(text: str) -> str:
    return f'<p class="none">{text}</p>'


def _graded(book: Gradebook) -> list[SubmissionGrade]:
    return [s for s in book.submissions if s.status == "graded"]


def top_failure(book: Gradebook, test: str) -> tuple[int, int, float] | None:
    """The most frequent failing code of ``test`` as (code, count, share of the graded class);
    ties go to the lower code. None when nobody failed it (or nobody was graded)."""
    counts = book.code_counts(test)
    failing = [(n, c) for c, n in counts.items() if c != 0]
    if not failing:
        return None
    count, code = max(failing, key=lambda nc: (nc[0], -nc[1]))
    return code, count, count / sum(counts.values())


def score_bins(scores: Sequence[float], max_score: float) -> list[tuple[float, float, int]]:
    """The histogram's bins as (low, high, count) over [0, max_score]: at most ``MAX_BINS``
    equal widths of 1, 2 or 5 times a power of ten (at least 1 when every score and the
    maximum are whole points), each [low, high) but the last, which also holds ``high``
    (as numpy.histogram does)."""
    top = max([max_score, *scores, 0.0])
    if top <= 0:
        return [(0.0, 1.0, len(scores))]
    power = 10.0 ** math.floor(math.log10(top / MAX_BINS))
    width = next(m * power for m in (1, 2, 5, 10) if top / (m * power) <= MAX_BINS + 1e-9)
    if all(float(v).is_integer() for v in (top, *scores)):
        width = max(width, 1.0)
    count = max(1, math.ceil(top / width - 1e-9))
    bins = [0] * count
    for score in scores:
        # 1e-9 of slack: a sum of float points (0.1 + 0.2) must land in its intended bin.
        bins[min(count - 1, max(0, math.floor(score / width + 1e-9)))] += 1
    return [(i * width, (i + 1) * width, n) for i, n in enumerate(bins)]


def _histogram(book: Gradebook, scores: list[float]) -> str:
    if not scores:
        return _none("No submission was graded: nothing to plot.")
    bins = score_bins(scores, book.max_score)
    width, height, left, bottom, top = 640, 230, 24, 34, 22
    plot_w, plot_h = width - 2 * left, height - bottom - top
    step = plot_w / len(bins)
    tallest = max(n for _, _, n in bins) or 1
    base = top + plot_h
    parts = []
    for i, (lo, hi, n) in enumerate(bins):
        h = plot_h * n / tallest
        x = left + i * step + 1.5
        label = f"{_pts(lo)}–{_pts(hi)} points: {n} submission{'s' if n != 1 else ''}"
        parts.append(
            f'<rect class="bin" x="{x:.1f}" y="{base - h:.1f}" width="{step - 3:.1f}" '
            f'height="{h:.1f}" rx="2" data-lo="{_exact(lo)}" data-hi="{_exact(hi)}" '
            f'data-count="{n}"><title>{label}</title></rect>'
        )
        if n:
            parts.append(
                f'<text x="{x + (step - 3) / 2:.1f}" y="{base - h - 5:.1f}" '
                f'text-anchor="middle">{n}</text>'
            )
    for i in range(len(bins) + 1):
        edge = bins[0][0] + i * (bins[0][1] - bins[0][0])
        parts.append(
            f'<text x="{left + i * step:.1f}" y="{base + 15}" text-anchor="middle">'
            f"{_pts(edge)}</text>"
        )
    span = bins[-1][1] or 1.0
    mean_x = left + plot_w * statistics.fmean(scores) / span
    parts.append(
        f'<line class="mean" x1="{mean_x:.1f}" x2="{mean_x:.1f}" y1="{top - 6}" y2="{base}" '
        f'stroke-dasharray="4 3"/><text x="{mean_x:.1f}" y="{top - 9}" '
        f'text-anchor="middle">mean</text>'
    )
    parts.append(f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{base}" y2="{base}"/>')
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle">'
        f"score (points of {_pts(book.max_score)})</text>"
    )
    return (
        f'<svg class="histogram" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="score histogram"><title>Scores of the '
        f"{len(scores)} graded submissions</title>{''.join(parts)}</svg>"
    )


def _headline(book: Gradebook, scores: list[float]) -> str:
    failed = len(book.submissions) - len(scores)
    of = f"of {_pts(book.max_score)}"

    def card(stat: str, value: float | None, shown: str, label: str, bad: bool = False) -> str:
        return (
            f'<div class="card{" bad" if bad else ""}"><b data-stat="{stat}" '
            f'data-value="{_exact(value)}">{shown}</b><span>{label}</span></div>'
        )

    stats = [
        card("graded", len(scores), str(len(scores)), "submissions graded"),
        card("failed", failed, str(failed), "could not be graded", bad=failed > 0),
    ]
    for stat, fn in (("mean", statistics.fmean), ("median", statistics.median), ("max", max)):
        value = fn(scores) if scores else None
        stats.append(card(stat, value, "—" if value is None else _pts(value), f"{stat} {of}"))
    full = sum(1 for x in scores if book.max_score > 0 and x >= book.max_score - 1e-9)
    stats.append(card("full", full, str(full), "full marks"))
    note = (
        f'<p class="muted">Mean, median and max are over the graded submissions; the {failed} '
        f"that could not be graded score{'s' if failed == 1 else ''} 0 in grades.csv.</p>"
        if failed and scores
        else ""
    )
    return f'<div class="cards">{"".join(stats)}</div>{note}'


def _struggles(book: Gradebook) -> str:
    rated = [(r, t) for t in book.tests if (r := book.pass_rate(t)) is not None and r < 1]
    items = []
    for rate, test in sorted(rated, key=lambda rt: rt[0])[:STRUGGLES]:
        code, count, share = top_failure(book, test) or (0, 0, 0.0)
        items.append(
            f"<li>{_chip(code)} {_e(meaning(code))} on <code>{_e(test)}</code> for "
            f"<b>{_percent(share)}</b> of the class ({count} of {len(book.results(test))}); "
            f'<span class="muted">{_percent(rate)} passed it</span></li>'
        )
    if not items:
        return ""
    return f'<h3>Where the class struggled</h3><ul class="struggles">{"".join(items)}</ul>'


def _tests(book: Gradebook) -> str:
    if not book.tests:
        return _none("The assignment has no tests.")
    files = {}
    for s in book.submissions:
        for t in s.tests:
            files.setdefault(t.test, t.file)
    rows = []
    for test in book.tests:
        rate = book.pass_rate(test)
        top = top_failure(book, test)
        shown = "—" if rate is None else f"{_bar(rate)}{_percent(rate)}"
        if top is None:
            worst = '<span class="muted">none</span>'
        else:
            code, count, share = top
            worst = f"{_chip(code)} {_e(meaning(code))} · <b>{_percent(share)}</b> of the class"
        counts = sorted(book.code_counts(test).items(), key=lambda cn: (-cn[1], cn[0]))
        rows.append(
            f'<tr data-test="{_e(test)}" data-pass-rate="{_exact(rate)}" '
            f'data-top-code="{top[0] if top else ""}" '
            f'data-top-share="{_exact(top[2]) if top else ""}">'
            f'<td class="l"><code>{_e(test)}</code></td>'
            f'<td class="l muted">{_e(files.get(test, ""))}</td>'
            f'<td>{_pts(book.max_points.get(test, 0.0))}</td><td class="l nw">{shown}</td>'
            f'<td class="l">{worst}</td>'
            f'<td class="l">{"".join(_chip(c, n) for c, n in counts)}</td></tr>'
        )
    head = ["test", "file", "points", "pass rate", "most frequent failure", "all codes"]
    return _table(head, rows, "llrlll")


def _students(book: Gradebook) -> str:
    if not book.submissions:
        return _none("No submissions.")
    ranked = sorted(book.submissions, key=lambda s: (-s.score, s.student, s.submission))
    full = book.max_score or 1.0
    rows = []
    for rank, s in enumerate(ranked, 1):
        per_file = s.file_scores
        tag = ' <span class="tag">not graded</span>' if s.status != "graded" else ""
        cells = "".join(
            f'<td data-file="{_e(f)}" data-points="{_exact(per_file.get(f, 0.0))}">'
            f"{_pts(per_file.get(f, 0.0))}</td>"
            for f in book.files
        )
        rows.append(
            f'<tr data-student="{_e(s.student)}" data-submission="{_e(s.submission)}" '
            f'data-score="{_exact(s.score)}" data-status="{_e(s.status)}">'
            f'<td class="muted">{rank}</td><td class="l">{_e(s.student)}{tag}</td>'
            f'<td class="l muted">{_e(s.submission)}</td>'
            f'<td class="l nw">{_bar(s.score / full, "score")}<b>{_pts(s.score)}</b></td>'
            f"{cells}</tr>"
        )
    head = ["#", "student", "submission", "score", *(f"<code>{_e(f)}</code>" for f in book.files)]
    return _table(head, rows, "llll" + "r" * len(book.files))


def _slowest(book: Gradebook) -> str:
    ranked = sorted(book.submissions, key=lambda s: (-s.seconds, s.submission))[:SLOWEST]
    if not ranked:
        return _none("No submissions.")
    rows = []
    for s in ranked:
        worst = max(s.tests, key=lambda t: t.seconds, default=None)
        test = f"<code>{_e(worst.test)}</code> ({worst.seconds:.2f} s)" if worst else "—"
        rows.append(
            f'<tr data-submission="{_e(s.submission)}" data-seconds="{_exact(s.seconds)}">'
            f'<td class="l">{_e(s.student)}</td><td class="l muted">{_e(s.submission)}</td>'
            f'<td>{s.seconds:.2f}</td><td class="l">{test}</td></tr>'
        )
    return _table(["student", "submission", "seconds", "slowest test"], rows, "llrl")


def _limits(book: Gradebook) -> str:
    rows = [
        f'<tr data-submission="{_e(s.submission)}" data-test="{_e(t.test)}" data-code="{t.code}">'
        f'<td class="l">{_e(s.student)}</td><td class="l muted">{_e(s.submission)}</td>'
        f'<td class="l"><code>{_e(t.test)}</code></td><td class="l">{_chip(t.code)} '
        f'{_e(meaning(t.code))}</td><td class="l">{_e(t.reason)}</td></tr>'
        for s in book.submissions
        for t in s.limits_hit
    ]
    if not rows:
        return _none("No submission hit a time, memory or output limit.")
    return _table(["student", "submission", "test", "code", "reason"], rows, "lllll")


def _failed(book: Gradebook) -> str:
    rows = [
        f'<tr data-submission="{_e(s.submission)}"><td class="l">{_e(s.student)}</td>'
        f'<td class="l muted">{_e(s.submission)}</td><td class="l">{_e(s.error)}</td></tr>'
        for s in book.submissions
        if s.status != "graded"
    ]
    if not rows:
        return _none("Every submission was graded.")
    return _table(["student", "submission", "error"], rows, "lll")


def _duplicates(book: Gradebook) -> str:
    by_name = {s.submission: s for s in book.submissions}
    groups = []
    for i, names in enumerate(book.duplicates(), 1):
        members = [by_name[n] for n in names if n in by_name]
        items = "".join(
            f'<li data-submission="{_e(s.submission)}">{_e(s.student)} '
            f'<span class="muted">({_e(s.submission)}, {_pts(s.score)} points)</span></li>'
            for s in members
        )
        digest = _e(members[0].digest[:12]) if members else ""
        groups.append(
            f'<div data-group="{i}" data-size="{len(members)}"><h3>Group {i}: '
            f'{len(members)} submissions <span class="muted">sha256 {digest}…</span></h3>'
            f"<ul>{items}</ul></div>"
        )
    if not groups:
        return _none("No two submissions have the same normalized source.")
    return "".join(groups)


def class_report_html(book: Gradebook, title: str) -> str:
    """The class report of ``book`` as one self-contained HTML page (module docstring)."""
    scores = [s.score for s in _graded(book)]
    subtitle = (
        f"{_e(book.assignment)} · {len(book.submissions)} submissions · {len(book.tests)} tests"
        f" · {_pts(book.max_score)} points"
    )
    sections = [
        f'<p class="sub">{subtitle}</p>',
        _headline(book, scores),
        _section("histogram", "Scores", _histogram(book, scores)),
        _section("tests", "Tests", _struggles(book) + _tests(book)),
        _section("students", "Students", _students(book)),
        _section("slowest", f"Slowest submissions (top {SLOWEST})", _slowest(book)),
        _section("limits", "Limits hit", _limits(book)),
        _section("failed", "Could not be graded", _failed(book)),
        _section("duplicates", "Identical or near-identical submissions", _duplicates(book)),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}{CSS}</style></head>\n<body>\n"
        f"<h1>{_e(title)}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
