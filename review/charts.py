"""Small server-side SVG charts (no JavaScript, no CDN). Every label is escaped."""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

PALETTE = ("#1f6f8b", "#e07a5f", "#3d9970", "#f2cc8f", "#81b29a", "#8d6a9f", "#9aa5b1")


def _svg(width: int, height: int, body: list[str], title: str) -> Markup:
    # Every dynamic piece of ``body`` and ``title`` went through escape() or is a number we formatted.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def bar_chart(rows: list[tuple[str, int]], *, title: str, limit: int = 10) -> Markup:
    """Horizontal bars, one per (label, count), largest first; the label sits above its bar."""
    rows = rows[:limit]
    if not rows:
        return Markup('<p class="muted">Belum ada data.</p>')
    row_height, width = 36, 480
    height = len(rows) * row_height + 4
    peak = max(n for _, n in rows) or 1
    span = width - 50
    body: list[str] = []
    for i, (label, count) in enumerate(rows):
        y = i * row_height
        w = max(2, round(span * count / peak))
        short = label if len(label) <= 70 else label[:69] + "…"
        body.append(
            f'<text x="0" y="{y + 13}" font-size="12" fill="#333">{escape(short)}<title>{escape(label)}</title></text>'
            f'<rect x="0" y="{y + 17}" width="{w}" height="14" fill="{PALETTE[0]}" rx="3"/>'
            f'<text x="{w + 6}" y="{y + 29}" font-size="12" fill="#333">{count}</text>'
        )
    return _svg(width, height, body, title)


def stacked_columns(buckets: list[date], series: dict[str, list[int]], *, title: str) -> Markup:
    """Columns per time bucket, stacked by series, with a legend."""
    if not series or not any(any(v) for v in series.values()):
        return Markup('<p class="muted">Belum ada data.</p>')
    width, plot_height, left, top = 720, 180, 40, 10
    legend_rows = (len(series) + 2) // 3
    height = top + plot_height + 30 + legend_rows * 18
    totals = [sum(values[i] for values in series.values()) for i in range(len(buckets))]
    peak = max(totals) or 1
    slot = (width - left - 10) / max(len(buckets), 1)
    column = max(2.0, slot * 0.7)
    body = [f'<line x1="{left}" y1="{top + plot_height}" x2="{width - 10}" y2="{top + plot_height}" stroke="#999"/>',
            f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" font-size="11" fill="#555">{peak}</text>',
            f'<text x="{left - 6}" y="{top + plot_height}" text-anchor="end" font-size="11" fill="#555">0</text>']
    for i, bucket in enumerate(buckets):
        x = left + i * slot + (slot - column) / 2
        y = float(top + plot_height)
        for j, values in enumerate(series.values()):
            h = plot_height * values[i] / peak
            if h > 0:
                y -= h
                body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{column:.1f}" height="{h:.1f}" '
                            f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(bucket.isoformat())}: '
                            f'{values[i]}</title></rect>')
        if len(buckets) <= 12 or i % max(1, len(buckets) // 8) == 0:
            body.append(f'<text x="{x + column / 2:.1f}" y="{top + plot_height + 14}" text-anchor="middle" '
                        f'font-size="10" fill="#555">{bucket:%d/%m}</text>')
    for j, label in enumerate(series):
        lx = left + (j % 3) * 220
        ly = top + plot_height + 30 + (j // 3) * 18
        short = label if len(label) <= 30 else label[:29] + "…"
        body.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
                    f'<text x="{lx + 14}" y="{ly}" font-size="11" fill="#333">{escape(short)}</text>')
    return _svg(width, height, body, title)


def funnel_chart(steps: list[tuple[str, int]], *, title: str) -> Markup:
    """Centered bars narrowing from the first step, each with its count and share of the first."""
    if not steps:
        return Markup("")
    width, bar_height, gap = 720, 34, 8
    height = len(steps) * (bar_height + gap) + gap
    first = steps[0][1] or 1
    body: list[str] = []
    for i, (label, count) in enumerate(steps):
        y = gap + i * (bar_height + gap)
        w = max(4, round((width - 20) * count / first)) if count else 4
        x = (width - w) / 2
        share = f"{100 * count / first:.0f}%" if steps[0][1] else "—"
        body.append(f'<rect x="{x:.1f}" y="{y}" width="{w}" height="{bar_height}" fill="{PALETTE[i % len(PALETTE)]}" '
                    f'rx="4"/><text x="{width / 2}" y="{y + 22}" text-anchor="middle" font-size="13" fill="#111">'
                    f'{escape(label)}: {count} ({share})</text>')
    return _svg(width, height, body, title)
