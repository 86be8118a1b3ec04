"""The dashboard's stylesheet (inline in the page: nothing to collect or serve)."""

CSS = """
:root { --bg: #f5f6f8; --panel: #fff; --ink: #1d2129; --muted: #6b7280; --line: #e5e7eb; --accent: #4f7cff; --bad: #e5484d; }
* { box-sizing: border-box; }
body.hc-dashboard { margin: 0; background: var(--bg); color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
#hc-dashboard-page { max-width: 1400px; margin: 0 auto; padding: 1.25rem 1.5rem 3rem; }
.hc-header { display: flex; align-items: baseline; justify-content: space-between; }
.hc-header h1 { font-size: 1.4rem; margin: 0 0 1rem; }
.hc-live { font-size: .75rem; color: #fff; background: #18a058; border-radius: 999px; padding: .1rem .5rem; vertical-align: middle; }
html.hypergen-websocket-offline .hc-live { background: var(--bad); }
.hc-who { color: var(--muted); }
.hc-cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: .75rem; margin-bottom: .75rem; }
.hc-card, .hc-panel, .hc-chart { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem; }
.hc-card-value { font-size: 1.6rem; font-weight: 650; }
.hc-card-label, .hc-chart-title span { color: var(--muted); text-transform: uppercase; font-size: .7rem; letter-spacing: .05em; }
.hc-charts { display: grid; grid-template-columns: 1fr 1fr; gap: .75rem; margin-bottom: .75rem; }
.hc-chart-title { display: flex; justify-content: space-between; }
.hc-spark { width: 100%; height: 60px; display: block; }
.hc-grid { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: .75rem; }
@media (max-width: 1000px) { .hc-grid { grid-template-columns: minmax(0, 1fr); } }
.hc-wide { grid-column: 1 / -1; }
.hc-panel h2 { font-size: .95rem; margin: 0 0 .5rem; }
.hc-table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
.hc-table th { text-align: left; color: var(--muted); font-weight: 500; font-size: .75rem; border-bottom: 1px solid var(--line); padding: .3rem .4rem; }
.hc-table td { border-bottom: 1px solid var(--line); padding: .3rem .4rem; vertical-align: top; }
.hc-table code { font-size: .8rem; overflow-wrap: anywhere; }
.hc-actions button, .hc-operations button { border: 1px solid var(--line); background: #fff; border-radius: 6px; padding: .15rem .5rem; cursor: pointer; margin-right: .25rem; }
.hc-actions button:hover { border-color: var(--bad); color: var(--bad); }
.hc-log { list-style: none; margin: 0; padding: 0; max-height: 320px; overflow: auto; font-size: .85rem; }
.hc-event { padding: .2rem 0; border-bottom: 1px dashed var(--line); display: flex; gap: .6rem; flex-wrap: wrap; }
.hc-event-time { color: var(--muted); font-variant-numeric: tabular-nums; }
.hc-event-kind { font-weight: 600; min-width: 5rem; }
.hc-event-error .hc-event-kind, .hc-event-outage .hc-event-kind { color: var(--bad); }
.hc-event-operation .hc-event-kind { color: var(--accent); }
.hc-event small { color: var(--muted); margin-left: auto; }
.hc-operations { margin-top: .75rem; display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
.hc-operations input { border: 1px solid var(--line); border-radius: 6px; padding: .3rem .5rem; min-width: 16rem; }
.hc-waiting { color: var(--muted); }
@media (max-width: 800px) { .hc-cards, .hc-charts { grid-template-columns: 1fr 1fr; } }
"""
