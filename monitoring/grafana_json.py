"""A small builder for Grafana dashboard JSON: just the parts the platform's dashboards use.

Generating the JSON (rather than editing it in Grafana and exporting it) keeps the queries next
to the metric names and thresholds they depend on, and makes the output deterministic, so a test
can prove the committed dashboards are current.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SCHEMA_VERSION = 39
GRID_WIDTH = 24


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    kind: Literal["timeseries", "stat"] = "timeseries"
    unit: str = "short"
    # A red line (timeseries) or colour change (stat) at this value.
    threshold: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    width: int = 12
    height: int = 8
    stepped: bool = False
    mappings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = ("mlops-lab",)
    refresh: str = "30s"
    time_from: str = "now-1h"

    def queries(self) -> list[tuple[str, str]]:
        """(panel title, PromQL) for every query: what the live-Prometheus test evaluates."""
        return [
            (panel.title, query.expr)
            for row in self.rows
            for panel in row.panels
            for query in panel.queries
        ]


def _thresholds(panel: Panel) -> dict:
    steps: list[dict] = [{"color": "green", "value": None}]
    if panel.threshold is not None:
        steps.append({"color": "red", "value": panel.threshold})
    return {"mode": "absolute", "steps": steps}


def _field_config(panel: Panel) -> dict:
    defaults: dict = {"unit": panel.unit, "thresholds": _thresholds(panel)}
    if panel.minimum is not None:
        defaults["min"] = panel.minimum
    if panel.maximum is not None:
        defaults["max"] = panel.maximum
    if panel.mappings:
        defaults["mappings"] = [
            {
                "type": "value",
                "options": {
                    value: {"text": text, "index": index}
                    for index, (value, text) in enumerate(panel.mappings)
                },
            }
        ]
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineInterpolation": "stepAfter" if panel.stepped else "linear",
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "line" if panel.threshold is not None else "off"},
        }
    return {"defaults": defaults, "overrides": []}


def _options(panel: Panel) -> dict:
    if panel.kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
            "justifyMode": "auto",
            "orientation": "auto",
        }
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": DATASOURCE,
                "expr": query.expr,
                "legendFormat": query.legend or "__auto",
                "range": True,
            }
            for index, query in enumerate(panel.queries)
        ],
        "fieldConfig": _field_config(panel),
        "options": _options(panel),
    }


def render(dashboard: Dashboard) -> dict:
    """The dashboard as Grafana's JSON model; panels flow left to right, rows top to bottom."""
    panels: list[dict] = []
    panel_id = 1
    y = 0
    for row in dashboard.rows:
        panels.append(
            {
                "id": panel_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        panel_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            panels.append(_panel_json(panel, panel_id, x, y))
            panel_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(dashboard.tags),
        "editable": False,
        "graphTooltip": 1,
        "refresh": dashboard.refresh,
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": dashboard.time_from, "to": "now"},
        "timezone": "browser",
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [
            {"type": "dashboards", "tags": ["mlops-lab"], "title": "mlops-lab", "asDropdown": True}
        ],
        "panels": panels,
        "version": 1,
    }
