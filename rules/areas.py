"""Service areas as geometry: GeoJSON checked with its path, polygons indexed. Pure.

Every polygon of every program goes into one shapely STRtree, so finding the programs
whose area holds a point is a bounding-box lookup then an exact test on the few
polygons found, however many the policy lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.validation import explain_validity

_POLYGONAL = ("Polygon", "MultiPolygon")


def _geometries(doc: Any, path: str, out: list[tuple[str, Any]],
                errors: list[tuple[str, str]]) -> None:
    """Collect the (path, GeoJSON geometry) of a Polygon, MultiPolygon, Feature or
    FeatureCollection; what is anything else is an error at its path."""
    if not isinstance(doc, dict):
        errors.append((path, "must be a GeoJSON object"))
        return
    kind = doc.get("type")
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list) or not features:
            errors.append((f"{path}.features".lstrip("."), "must list at least one feature"))
            return
        for i, f in enumerate(features):
            _geometries(f, f"{path}.features[{i}]".lstrip("."), out, errors)
    elif kind == "Feature":
        _geometries(doc.get("geometry"), f"{path}.geometry".lstrip("."), out, errors)
    elif kind in _POLYGONAL:
        out.append((path, doc))
    else:
        errors.append((f"{path}.type".lstrip("."), f"{kind!r} is not a Polygon, "
                                                   "MultiPolygon, Feature or FeatureCollection"))


def _shape(path: str, geometry: dict[str, Any]) -> tuple[Any | None, str | None]:
    try:
        geom = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError,
            shapely.errors.GEOSException) as exc:
        return None, f"coordinates are not a {geometry.get('type')}: {exc}"
    if geom.is_empty:
        return None, "is empty"
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        return None, "coordinates must be longitude, latitude in degrees (WGS 84)"
    if not geom.is_valid:
        return None, f"not a valid polygon ({explain_validity(geom)})"
    return geom, None


def geojson_errors(doc: Any) -> list[tuple[str, str]]:
    """Every problem of a GeoJSON area, each with its path inside the document."""
    found: list[tuple[str, Any]] = []
    errors: list[tuple[str, str]] = []
    _geometries(doc, "", found, errors)
    for path, geometry in found:
        _, problem = _shape(path, geometry)
        if problem:
            errors.append((f"{path}.coordinates".lstrip("."), problem))
    return errors


def polygons(doc: dict[str, Any]) -> list[Any]:
    """The shapely polygons of a GeoJSON area already checked by `geojson_errors`."""
    found: list[tuple[str, Any]] = []
    _geometries(doc, "", found, [])
    return [g for g in (_shape(p, geometry)[0] for p, geometry in found) if g is not None]


class AreaIndex:
    """The polygons of every program, indexed: `containing(lat, lon)` gives the indexes
    of the programs whose polygons hold the point (a boundary point counts as inside)."""

    def __init__(self, areas: Sequence[tuple[int, Sequence[Any]]]) -> None:
        geoms: list[Any] = []
        owners: list[int] = []
        for program, shapes in areas:
            for g in shapes:
                geoms.append(g)
                owners.append(program)
        for g in geoms:
            shapely.prepare(g)
        self._owners = owners
        self._tree = shapely.STRtree(geoms)
        self.size = len(geoms)

    def containing(self, lat: float, lon: float) -> frozenset[int]:
        hits = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        return frozenset(self._owners[i] for i in hits)
