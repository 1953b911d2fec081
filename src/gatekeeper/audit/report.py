"""A one-page summary of an audit archive: decisions over time by outcome, who and what was
denied, which rate-limit rules rejected, which sources were blocked — as an SVG chart and text.

Built on the query layer (:mod:`gatekeeper.audit.query`, the ``gatekeeper_audit`` view), so it
reads exactly what ``archive query`` and Athena read. A corrupt object does not stop a report: it
is skipped and counted (:attr:`Report.skipped`). The SVG is drawn by hand (no plotting library):
one timeline of stacked bars (per minute, hour or day, whichever fits the span) and four ranked
bar lists.

Example::

    with local_archive(Path("audit-copy")) as archive:
        report = build_report(archive, top=10)
    Path("report.svg").write_text(render_svg(report))
    print(render_text(report))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any

from gatekeeper.audit.query import QueryError, run_queries, skip_corrupt

if TYPE_CHECKING:
    from gatekeeper.audit.query import Archive

OUTCOMES = ("allow", "deny", "unauthorized")
COLOURS = {"allow": "#2e7d32", "deny": "#ef6c00", "unauthorized": "#c62828"}
_UNITS = (("minute", 60, 3 * 3600), ("hour", 3600, 4 * 86400), ("day", 86400, None))

Ranking = list[tuple[str, int]]


@dataclass
class Report:
    where: str
    first: datetime | None = None
    last: datetime | None = None
    unit: str = "minute"
    totals: dict[str, int] = field(default_factory=dict)  # decision → authorization events
    admin_changes: int = 0
    timeline: list[tuple[datetime, dict[str, int]]] = field(default_factory=list)
    denied_principals: Ranking = field(default_factory=list)
    denied_routes: Ranking = field(default_factory=list)
    rate_limited_rules: Ranking = field(default_factory=list)
    blocked_sources: Ranking = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # corrupt objects, why

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat().replace("+00:00", "Z") if value else None

        return {
            "where": self.where,
            "first": iso(self.first),
            "last": iso(self.last),
            "unit": self.unit,
            "totals": self.totals,
            "admin_changes": self.admin_changes,
            "timeline": [{"at": iso(at), **counts} for at, counts in self.timeline],
            "denied_principals": [{"principal": k, "count": n} for k, n in self.denied_principals],
            "denied_routes": [{"route": k, "count": n} for k, n in self.denied_routes],
            "rate_limited_rules": [{"rule": k, "count": n} for k, n in self.rate_limited_rules],
            "blocked_sources": [{"ip": k, "count": n} for k, n in self.blocked_sources],
            "corrupt_objects": self.skipped,
        }


# The SQL below is assembled from these constants and validated values only (no user text).
_AUTHZ = "unmapped.event_type = 'authorization'"
_AT = 'from_unixtime("time" / 1000)'


def _ranking(expr: str, where: str, top: int) -> str:
    return (
        f"SELECT coalesce({expr}, 'unknown') AS k, count(*) AS n FROM gatekeeper_audit "  # noqa: S608
        f"WHERE {_AUTHZ} AND {where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {int(top)}"
    )


def build_report(archive: Archive, *, top: int = 10) -> Report:
    """Query ``archive`` for the summary; corrupt objects are skipped and counted."""
    report = Report(archive.where)
    try:
        run_queries(archive, ["SELECT count(*) FROM gatekeeper_audit"])
    except QueryError:
        report.skipped = skip_corrupt(archive)
        if not report.skipped:
            raise
        if not archive.files:
            raise QueryError(
                f"{archive.where}: every object is corrupt ({len(report.skipped)}), first: "
                f"{report.skipped[0]}"
            ) from None
    span, totals = run_queries(
        archive,
        [
            f"SELECT min({_AT}), max({_AT}) FROM gatekeeper_audit WHERE {_AUTHZ}",  # noqa: S608
            "SELECT unmapped.event_type, unmapped.decision, count(*) FROM gatekeeper_audit "
            "GROUP BY 1, 2",
        ],
    )
    for event_type, decision, count in totals.rows:
        if event_type == "admin_change":
            report.admin_changes += count
        else:
            report.totals[decision] = report.totals.get(decision, 0) + count
    report.first, report.last = span.rows[0] if span.rows else (None, None)
    if report.first is None or report.last is None:
        return report
    seconds = (report.last - report.first).total_seconds()
    report.unit, step = next((u, s) for u, s, limit in _UNITS if limit is None or seconds <= limit)
    timeline, principals, routes, rules, blocked = run_queries(
        archive,
        [
            f"SELECT date_trunc('{report.unit}', {_AT}) AS at, unmapped.decision, count(*) "  # noqa: S608
            f"FROM gatekeeper_audit WHERE {_AUTHZ} GROUP BY 1, 2 ORDER BY 1",
            _ranking("actor.user.uid", "unmapped.decision <> 'allow'", top),
            _ranking("api.operation", "unmapped.decision <> 'allow'", top),
            _ranking("unmapped.rate_limit.rule_id", "unmapped.rate_limit.limited", top),
            _ranking("src_endpoint.ip", "unmapped.reason = 'blocked'", top),
        ],
    )
    buckets: dict[datetime, dict[str, int]] = {}
    for at, decision, count in timeline.rows:
        buckets.setdefault(at, {})[decision] = count
    start = min(buckets)
    end = max(buckets)
    current = start
    while current <= end:  # every bucket, empty ones too: gaps show
        report.timeline.append((current, {o: buckets.get(current, {}).get(o, 0) for o in OUTCOMES}))
        current += timedelta(seconds=step) if report.unit != "day" else timedelta(days=1)
    report.denied_principals = [(str(k), int(n)) for k, n in principals.rows]
    report.denied_routes = [(str(k), int(n)) for k, n in routes.rows]
    report.rate_limited_rules = [(str(k), int(n)) for k, n in rules.rows]
    report.blocked_sources = [(str(k), int(n)) for k, n in blocked.rows]
    return report


# --- text ----------------------------------------------------------------------------------------
def render_text(report: Report) -> str:
    lines = [f"Audit report: {report.where}"]
    if report.first is None:
        lines.append("no authorization decisions in this range")
    else:
        lines.append(f"{_when(report.first)} .. {_when(report.last)} (per {report.unit})")
    total = sum(report.totals.values())
    parts = ", ".join(f"{o} {report.totals.get(o, 0)}" for o in OUTCOMES)
    lines.append(f"decisions: {total} ({parts}); admin changes: {report.admin_changes}")
    if report.skipped:
        lines.append(f"corrupt objects skipped: {len(report.skipped)} (first: {report.skipped[0]})")
    for title, head, ranking in _rankings(report):
        lines += ["", title]
        width = max([len(head), *(len(k) for k, _ in ranking)])
        lines.append(f"  {head.upper().ljust(width)}  COUNT")
        lines += [f"  {k.ljust(width)}  {n}" for k, n in ranking] or ["  (none)"]
    return "\n".join(lines) + "\n"


def _rankings(report: Report) -> list[tuple[str, str, Ranking]]:
    return [
        ("Top denied principals", "principal", report.denied_principals),
        ("Top denied routes", "route", report.denied_routes),
        ("Rate-limited rules", "rule", report.rate_limited_rules),
        ("Blocked sources", "ip", report.blocked_sources),
    ]


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


# --- SVG -----------------------------------------------------------------------------------------
WIDTH = 960
_FONT = "font-family='Helvetica, Arial, sans-serif'"


def render_svg(report: Report) -> str:
    """The report as one SVG page (timeline on top, four ranked lists below)."""
    out: list[str] = []
    y = 36
    out.append(_text(24, y, "Gatekeeper audit report", size=20, weight="bold"))
    total = sum(report.totals.values())
    summary = (
        f"{report.where} · {_when(report.first)} to {_when(report.last)} · {total} decisions, "
        f"{report.admin_changes} admin changes"
        + (f" · {len(report.skipped)} corrupt object(s) skipped" if report.skipped else "")
    )
    out.append(_text(24, y + 22, summary, size=12, fill="#555"))
    y += 50
    out += _timeline(report, 24, y, WIDTH - 48, 220)
    y += 270
    panel_w = (WIDTH - 72) // 2
    panel_h = 40 + 18 * max([5, *(len(r) for _, _, r in _rankings(report))])
    for i, (title, _head, ranking) in enumerate(_rankings(report)):
        px = 24 + (i % 2) * (panel_w + 24)
        py = y + (i // 2) * (panel_h + 20)
        out += _bars(title, ranking, px, py, panel_w)
    height = y + 2 * (panel_h + 20) + 10
    body = "\n".join(out)
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}' {_FONT}>\n"
        f"<rect width='{WIDTH}' height='{height}' fill='white'/>\n{body}\n</svg>\n"
    )


def _text(x: float, y: float, text: str, *, size: int = 11, fill: str = "#222",
          weight: str = "normal", anchor: str = "start") -> str:  # fmt: skip
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' fill='{fill}' font-weight='{weight}' "
        f"text-anchor='{anchor}'>{escape(text)}</text>"
    )


def _timeline(report: Report, x: int, y: int, w: int, h: int) -> list[str]:
    out = [_text(x, y, f"Decisions per {report.unit} by outcome", size=14, weight="bold")]
    for i, outcome in enumerate(OUTCOMES):
        lx = x + w - 300 + i * 100
        out.append(
            f"<rect x='{lx}' y='{y - 10}' width='10' height='10' fill='{COLOURS[outcome]}'/>"
        )
        out.append(_text(lx + 14, y, outcome, size=11))
    top, plot_h = y + 14, h - 40
    peak = max([1, *(sum(c.values()) for _, c in report.timeline)])
    out.append(f"<line x1='{x + 40}' y1='{top + plot_h}' x2='{x + w}' y2='{top + plot_h}' "
               "stroke='#999'/>")  # fmt: skip
    for tick in (0, peak // 2, peak) if peak > 1 else (0, 1):
        ty = top + plot_h - plot_h * tick / peak
        out.append(_text(x + 34, ty + 4, str(tick), size=10, fill="#555", anchor="end"))
        out.append(f"<line x1='{x + 40}' y1='{ty:.1f}' x2='{x + w}' y2='{ty:.1f}' "
                   "stroke='#eee'/>")  # fmt: skip
    n = max(1, len(report.timeline))
    slot = (w - 40) / n
    for i, (at, counts) in enumerate(report.timeline):
        bx, base = x + 40 + i * slot, float(top + plot_h)
        for outcome in OUTCOMES:
            bar = plot_h * counts.get(outcome, 0) / peak
            if bar > 0:
                out.append(
                    f"<rect x='{bx + slot * 0.1:.1f}' y='{base - bar:.1f}' "
                    f"width='{max(slot * 0.8, 1):.1f}' height='{bar:.1f}' "
                    f"fill='{COLOURS[outcome]}'><title>{escape(_when(at))} {outcome}: "
                    f"{counts[outcome]}</title></rect>"
                )
                base -= bar
        if i in {0, n - 1} or (n > 2 and i == n // 2):
            label = at.astimezone(UTC).strftime("%H:%M" if report.unit != "day" else "%m-%d")
            out.append(_text(bx + slot / 2, top + plot_h + 14, label, size=10, fill="#555",
                             anchor="middle"))  # fmt: skip
    if not report.timeline:
        out.append(_text(x + w / 2, top + plot_h / 2, "no decisions", size=12, fill="#999",
                         anchor="middle"))  # fmt: skip
    return out


def _bars(title: str, ranking: Ranking, x: int, y: int, w: int) -> list[str]:
    out = [_text(x, y, title, size=14, weight="bold")]
    if not ranking:
        return [*out, _text(x, y + 24, "(none)", size=11, fill="#999")]
    peak = max(n for _, n in ranking)
    label_w = 200
    for i, (name, count) in enumerate(ranking):
        row = y + 14 + i * 18
        shown = name if len(name) <= 30 else name[:29] + "…"
        out.append(_text(x, row + 11, shown, size=11))
        bar = (w - label_w - 40) * count / peak
        out.append(f"<rect x='{x + label_w}' y='{row + 2}' width='{max(bar, 1):.1f}' height='12' "
                   f"fill='#546e7a'><title>{escape(name)}: {count}</title></rect>")  # fmt: skip
        out.append(_text(x + label_w + bar + 4, row + 12, str(count), size=10, fill="#555"))
    return out
