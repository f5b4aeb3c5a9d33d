"""Routing analysis: what the routers of each iteration do.

    recorder.py   RoutingRecorder: forward hooks that record the routing of any forward (RoutingRecord)
    stats.py      pure statistics: load, entropy, co-selection, re-selection, paths, orderings for display
    tokens.py     kinds of tokens (digits, operators, number words, ...) for specialisation
    summary.py    every number of an analysis as one JSON-ready dict
    figures.py    matplotlib figures drawn from that dict, and the loss curves of a comparison
    html.py       the one stylesheet and page template of every HTML page, tables, escaping
    report.py     the report directory (analysis.json, PNGs, report.html) and analyze_checkpoint
    explain.py    the routing path of every token of a text: JSONL audit log, terminal table, HTML grid
    comparison.py the report of several finished training runs side by side, with their routing

Modules are imported where used: the trainer needs stats.py without matplotlib.
"""
