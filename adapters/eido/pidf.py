"""A reader for the PIDF-LO documents an EIDO carries in locationByValue (RFC 4119, RFC 5139
civic addresses, RFC 5491 geodetic shapes).

Only what routing needs is read: one civic address as a line of text, and one point
(a shape's centre). Elements are matched by local name, so a document that binds the
usual namespaces differently still reads. Documents with a DTD or entity declarations
are refused unread: a location string comes from outside and is never expanded.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

# RFC 5139 civic address elements, in the order they are written on one line.
_STREET = ("HNO", "HNS", "PRM", "PRD", "RD", "STS", "POD", "POM")
_AFTER_STREET = ("BLD", "UNIT", "FLR", "ROOM", "SEAT", "LOC", "A6", "A5", "A4", "A3")
_CENTRED = ("Point", "Circle", "Ellipse", "Ellipsoid", "Sphere", "ArcBand")
_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass
class PidfLocation:
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    problems: list[str] = field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find_all(root: ET.Element, name: str) -> list[ET.Element]:
    return [el for el in root.iter() if _local(el.tag) == name]


def _text(el: ET.Element | None) -> str:
    return " ".join((el.text or "").split()) if el is not None else ""


def _civic_line(civic: ET.Element) -> str | None:
    values: dict[str, str] = {}
    for child in civic:
        name = _local(child.tag)
        if name not in values and _text(child):
            values[name] = _text(child)
    number = values.get("HNO", "") + values.get("HNS", "")
    street = " ".join(v for v in [number, *(values.get(k, "") for k in _STREET[2:])] if v)
    parts = [values.get("NAM", ""), street, *(values.get(k, "") for k in _AFTER_STREET),
             " ".join(v for v in (values.get("A1", ""), values.get("PC", "")) if v),
             values.get("country", "")]
    line = ", ".join(p for p in parts if p)
    return line or None


def _numbers(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split()]
    except ValueError:
        return []


def _point(location_info: ET.Element, problems: list[str]) -> tuple[float, float] | None:
    for el in location_info.iter():
        name = _local(el.tag)
        if name in _CENTRED:
            pos = next((p for p in el.iter() if _local(p.tag) == "pos"), None)
            nums = _numbers(_text(pos))
            if len(nums) < 2:
                problems.append(f"a {name} without a readable gml:pos")
                return None
            return nums[0], nums[1]
        if name == "Polygon":
            nums = [n for p in el.iter() if _local(p.tag) in ("pos", "posList")
                    for n in _numbers(_text(p))]
            dim = 3 if "4979" in (el.get("srsName") or "") else 2
            points = [nums[i:i + dim] for i in range(0, len(nums) - dim + 1, dim)]
            if len(points) >= 3 and points[0] == points[-1]:
                points = points[:-1]  # a ring repeats its first vertex
            if len(points) < 3:
                problems.append("a Polygon without at least three vertices")
                return None
            return (sum(p[0] for p in points) / len(points),
                    sum(p[1] for p in points) / len(points))
    return None


def read_pidf(document: str) -> PidfLocation:
    """Read a PIDF-LO string. Problems are described, never raised: the caller decides."""
    out = PidfLocation()
    if _DTD.search(document):
        out.problems.append("it declares a DTD or entities, which Liaison does not read")
        return out
    try:
        root = ET.fromstring(document.strip())
    except ET.ParseError as exc:
        out.problems.append(f"it is not well-formed XML ({exc})")
        return out
    if _local(root.tag) != "presence":
        out.problems.append(f"it is not a PIDF-LO document (its root is <{_local(root.tag)}>, "
                            "not <presence>)")
        return out
    infos = _find_all(root, "location-info")
    if not infos:
        out.problems.append("it has no geopriv location-info")
        return out
    for info in infos:
        if out.address is None:
            civic = next((el for el in info.iter() if _local(el.tag) == "civicAddress"), None)
            if civic is not None:
                out.address = _civic_line(civic)
        if out.lat is None:
            point = _point(info, out.problems)
            if point is not None:
                lat, lon = point
                if -90 <= lat <= 90 and -180 <= lon <= 180:
                    out.lat, out.lon = lat, lon
                else:
                    out.problems.append(f"its point ({lat} {lon}) is not a latitude and "
                                        "longitude")
    if out.address is None and out.lat is None and not out.problems:
        out.problems.append("it has neither a civic address nor a shape Liaison reads")
    return out
