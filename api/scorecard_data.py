"""The rule scorecard of a stored version (or `all`) for a range: the policy documents
for its entries, the calls for its figures, the thresholds from the settings. Shared by
the API route (api/scorecard.py) and the figures page (api/metrics.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import yaml

from api.deps import RuntimeDep
from service.figures.scorecard import ALL, Scorecard, Thresholds, entries_of, load, score
from service.policy import store
from service.store.tables import DEFAULT_AGENCY


def _document(row: Any) -> dict[str, Any]:
    doc = yaml.safe_load(row.document)
    return doc if isinstance(doc, dict) else {}


async def scorecard_of(rt: RuntimeDep, version: str, since: datetime, until: datetime, *,
                       supervisor: bool, agency: str = DEFAULT_AGENCY) -> Scorecard:
    """`version`: `3`, `<policy id>@3` or `all` of the agency's versions, its calls only;
    an unknown one is NotFound (404)."""
    if version == ALL:
        rows = await store.list_versions(rt.engine, agency)
        label, only = ALL, None
    else:
        rows = [await store.get_version(rt.engine, version, agency)]
        label = only = store.label(rows[0])
    s = rt.settings
    return score(await load(rt.engine, version=only, since=since, until=until, agency=agency),
                 entries_of(_document(r) for r in rows), version=label, since=since,
                 until=until, supervisor=supervisor,
                 thresholds=Thresholds(s.scorecard_over_broad_share,
                                       s.scorecard_over_broad_min_calls,
                                       s.scorecard_too_narrow_min_calls))
