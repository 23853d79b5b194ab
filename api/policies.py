"""The policy workbench: stored versions of the routing policy (service/policy/store.py).

`{version}` in a path is the version label, the document's `policy.version` (e.g. `3`);
when two policy ids share a label, name it in full as `<policy id>@<version>`.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api.access import CredentialsFirst, Role, allow, principal_of, record
from api.agency_scope import AgencyQuery, chosen_agency
from api.deps import RuntimeDep
from routing.cases import TestResult, run_tests
from routing.decide import Shaping, route
from routing.models import Availability, Decision, ProgramContext, ProgramState
from rules.analysis import Warning as Finding
from rules.analysis import check_policy
from rules.call import CallFacts
from rules.evaluate import (
    Classification,
    CompiledPolicy,
    RuleTrace,
    classify,
    compile_policy,
)
from rules.load import PolicyInvalid
from rules.models import Policy
from rules.yaml_roundtrip import to_yaml
from service.errors import Conflict, DomainError, field_errors
from service.policy import store
from service.store.tables import utcnow

router = APIRouter(prefix="/v1/policies", tags=["policies"],
                   dependencies=[allow(Role.supervisor)], route_class=CredentialsFirst)

YAML_TYPES = ("text/yaml", "application/yaml", "application/x-yaml", "text/x-yaml",
              "text/plain")


async def policy_agency(request: Request, rt: RuntimeDep,
                        agency: AgencyQuery = None) -> str:
    """The agency whose policy versions a request works on (issue 17): a supervisor of
    one agency works on its own only; another agency's is 'not found' (audited)."""
    who = await principal_of(request)
    assert who is not None  # the router's allow() ran first
    return await chosen_agency(request, rt, who, agency, "policy.agency")


AgencyOf = Annotated[str, Depends(policy_agency)]


def _in_force(rt: Any, agency: str) -> str:
    """The label of the agency's version deciding calls now ("none": no policy yet)."""
    compiled = rt.region.policy_of(agency)
    return compiled.version if compiled is not None else "none"


class InvalidPolicy(DomainError):
    status = 422
    code = "invalid_policy"


class PolicyError(BaseModel):
    path: str = Field(description="where in the document, e.g. rules[3].when.nature_cod")
    reason: str


class PolicySummary(BaseModel):
    id: int
    agency: str = Field(description="the agency whose version it is")
    policy_id: str
    version: str
    label: str = Field(description="how paths name it: the version, or <policy id>@<version>")
    status: Literal["draft", "published", "superseded"]
    author: str
    comment: str
    created_at: str
    published_at: str | None
    publish_at: str | None = Field(description="a draft's scheduled publish")
    schedule_note: str | None = Field(description="why a due scheduled publish did not go in")
    parent_id: int | None = Field(description="the version it was drafted from")


class PolicyList(BaseModel):
    in_force: str = Field(description="the version deciding calls now")
    versions: list[PolicySummary] = Field(description="oldest first")


class PolicyDocument(PolicySummary):
    document: str = Field(description="the YAML, as stored")
    parsed: dict[str, Any] = Field(description="the YAML, parsed")
    diff_from_parent: str | None


class Validation(BaseModel):
    valid: bool
    version: str | None = Field(default=None, description="the document's label, when valid")
    errors: list[PolicyError]
    warnings: list[Finding] = Field(description="static analysis (rules/analysis.py)")
    parsed: dict[str, Any] | None = Field(description=(
        "the document as an object whenever its YAML parses to a mapping, valid or not "
        "(what the structured editor edits); null when it does not"))


class NatureCode(BaseModel):
    code: str
    text: str = Field(description="its most common nature text")
    calls: int


class NatureCodes(BaseModel):
    days: int
    since: str = Field(description="RFC 3339: calls opened since then count")
    codes: list[NatureCode] = Field(description="most calls first")


class UnsavedDocument(BaseModel):
    """A document not stored: what the structured editor holds."""

    model_config = ConfigDict(extra="forbid")

    document: str | dict[str, Any] = Field(description=(
        "YAML text, or the policy as an object (as `parsed` in GET /v1/policies/{version})"))


class YamlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any] = Field(description="the policy as an object (the editor's)")
    base: str | None = Field(default=None, description=(
        "the YAML text the editor started from: its comments and layout are kept where the "
        "object leaves them; null: a plain dump"))


class YamlText(BaseModel):
    yaml: str = Field(description="reads back (YAML) as exactly `document`")


class UnsavedDryRun(UnsavedDocument):
    call: CallFacts
    units_busy: int = Field(default=0, ge=0, description="the team's units busy")
    programs: dict[str, ProgramState] | None = Field(default=None, description=(
        "each program's units busy and calls queued, as in /{version}/dry-run"))


class PolicyDiff(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    diff: str = Field(description="unified diff of the YAML")


class TestRun(BaseModel):
    __test__ = False  # not a pytest class

    version: str
    passed: bool = Field(description="every test case passed")
    failed: int
    results: list[TestResult]


class InForce(PolicySummary):
    in_force: str = Field(description="the version deciding calls now")


class Published(InForce):
    scheduled: bool = Field(description="to be published at `publish_at`, not now")


class Stopped(BaseModel):
    at: str | None = Field(description="the rule (or exclusion) where evaluation stopped")
    kind: str | None
    reason: str


class ShapedBy(BaseModel):
    """A program setting route() consulted and what it did (routing.decide.Shaping)."""

    setting: Literal["hours", "capacity", "phase"]
    value: str | int | None = None
    local_time: str | None = None
    within_hours: bool | None = None
    units_total: int | None = None
    units_busy: int | None = None
    effect: str
    program: str | None = Field(default=None, description="the program's id, in a policy "
                                                          "of programs")


class ProgramConsulted(BaseModel):
    """One program of a policy of programs, and what it did with the dry-run's call."""

    id: str
    name: str
    mode: str
    takes_category: bool = Field(description="the call's category is one it takes")
    outcome: Literal["took", "queued", "deferred", "refused", "not_tried"] = Field(
        description="not_tried: it does not take the category, or an earlier program "
                    "took the call")
    factors: list[str] = Field(description="the decision's steps that name it")
    shaped_by: list[ShapedBy] = Field(description="its hours and capacity as consulted")


class DryRun(BaseModel):
    version: str
    decision: Decision
    classification: Classification = Field(description="what the rules said (its trace "
                                                        "is `trace`)")
    trace: list[RuleTrace] = Field(description="every exclusion and rule tested, in order, "
                                               "with each condition's expected and actual")
    stopped: Stopped
    program: ProgramContext
    factors: list[str]
    shaped_by: list[ShapedBy]
    programs: list[ProgramConsulted] = Field(default_factory=list, description=(
        "in a policy of programs, each in policy order with why it did or did not take "
        "the call; empty for a one-team policy"))
    stored: Literal[False]


def _invalid(exc: PolicyInvalid, field: str | None = None) -> InvalidPolicy:
    """422 with each error's path in the document; for a document sent in a JSON body
    (`field`), also `detail` naming the body's field, as every other 422 does."""
    extra: dict[str, Any] = {}
    if field is not None:
        extra["detail"] = [{"field": f"{field}.{e.path}", "reason": e.reason,
                            "type": "invalid_policy"} for e in exc.errors]
    return InvalidPolicy(f"the policy is invalid ({len(exc.errors)} error(s))",
                         errors=[{"path": e.path, "reason": e.reason} for e in exc.errors],
                         **extra)


def as_text(document: str | dict[str, Any]) -> str:
    """A document sent as an object, as YAML text (the form parse and store take)."""
    if isinstance(document, dict):
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return document


def unsaved(document: str | dict[str, Any]) -> Policy:
    """The policy of a document not stored; invalid → 422 (errors and detail)."""
    try:
        return store.parse(as_text(document))
    except PolicyInvalid as exc:
        raise _invalid(exc, "document") from None


def unsaved_label(policy: Policy) -> str:
    return f"{policy.version_label} (unsaved)"


def _mapping(document: str) -> dict[str, Any] | None:
    """The YAML as an object, when it parses to a mapping (valid as a policy or not)."""
    try:
        parsed = yaml.safe_load(document)
    except yaml.YAMLError:
        return None
    return parsed if isinstance(parsed, dict) else None


async def _document(request: Request) -> tuple[str, dict[str, Any]]:
    """The YAML text of a request: a YAML body, or JSON {document, author, comment} where
    document is YAML text or the parsed mapping."""
    raw = (await request.body()).decode("utf-8", "replace")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in YAML_TYPES:
        return raw, {}
    try:
        body = json.loads(raw)
    except ValueError:
        return raw, {}  # not JSON: taken as YAML whatever the content type said
    if not isinstance(body, dict) or "document" not in body:
        raise InvalidPolicy("a JSON body needs 'document'",
                            errors=[{"path": "document", "reason": "field required"}])
    doc = as_text(body["document"]) if isinstance(body["document"], dict) else body["document"]
    if not isinstance(doc, str):
        raise InvalidPolicy("'document' must be YAML text or a mapping",
                            errors=[{"path": "document", "reason": "not text or a mapping"}])
    return doc, body


def _parse(document: str) -> Any:
    try:
        return store.parse(document)
    except PolicyInvalid as exc:
        raise _invalid(exc) from None


def _full(row: Any) -> dict[str, Any]:
    return {**store.summary(row), "document": row.document,
            "parsed": yaml.safe_load(row.document), "diff_from_parent": row.diff_from_parent}


@router.get("", summary="Every stored version, oldest first, with status, author and times",
            response_model=PolicyList)
async def list_policies(rt: RuntimeDep, agency: AgencyOf) -> dict[str, Any]:
    rows = await store.list_versions(rt.engine, agency)
    return {"in_force": _in_force(rt, agency),
            "versions": [store.summary(r) for r in rows]}


@router.post("/validate", summary="Errors and static-analysis warnings for a document (YAML "
                                  "text, or JSON {document: YAML text or the object}), and "
                                  "the document as an object",
             response_model=Validation, response_model_exclude_unset=True)
async def validate(request: Request, rt: RuntimeDep) -> dict[str, Any]:
    document, _ = await _document(request)
    parsed = _mapping(document)
    try:
        policy = store.parse(document)
    except PolicyInvalid as exc:
        return {"valid": False, "errors": [{"path": e.path, "reason": e.reason}
                                           for e in exc.errors], "warnings": [],
                "parsed": parsed}
    codes = await store.history_codes(rt.engine)
    # Static analysis can take a while on a large policy: off the event loop.
    warnings = await asyncio.to_thread(check_policy, policy, history_codes=codes)
    return {"valid": True, "version": policy.version_label, "errors": [],
            "warnings": [w.model_dump() for w in warnings], "parsed": parsed}


@router.post("/yaml", summary="The editor's object as YAML, merged into the text it started "
                              "from so that its comments are kept (docs/policy-editor.md)",
             response_model=YamlText)
async def as_yaml(body: YamlRequest) -> dict[str, Any]:
    # Not validated: the editor may save a document it is still fixing. Pure Python
    # round-trip YAML takes tens of milliseconds on a large policy: off the event loop.
    return {"yaml": await asyncio.to_thread(to_yaml, body.document, body.base)}


@router.post("/test", summary="Run an unsaved document's own test cases",
             response_model=TestRun)
async def test_unsaved(body: UnsavedDocument) -> dict[str, Any]:
    policy = unsaved(body.document)
    return _test_run(unsaved_label(policy), policy)


@router.post("/dry-run", summary="Decide a call with an unsaved document, with the full "
                                 "trace; nothing is stored", response_model=DryRun)
async def dry_run_unsaved(body: UnsavedDryRun) -> Response:
    policy = unsaved(body.document)
    compiled = compile_policy(policy)
    availability = Availability(units_total=compiled.policy.program.units,
                                units_busy=body.units_busy)
    return _dry_run(unsaved_label(policy), compiled, body.call, availability, body.programs)


@router.post("", status_code=201, summary="Create a draft from YAML (or JSON with document)",
             response_model=PolicyDocument)
async def create(request: Request, rt: RuntimeDep, agency: AgencyOf) -> dict[str, Any]:
    document, body = await _document(request)
    _parse(document)
    who = await principal_of(request)
    # The author is who is logged in; what a body says of itself is not evidence.
    row = await store.create_draft(rt.engine, document,
                                   author=who.name if who else "unknown",
                                   comment=str(body.get("comment") or ""), agency=agency)
    await record(request, who, "policy.create", target=store.label(row),
                 detail={"version": store.label(row)})
    return _full(row)


@router.get("/nature-codes", summary="The nature codes of the live calls opened in the last "
                                     "`days` days, with each one's commonest text and its "
                                     "calls, most calls first", response_model=NatureCodes)
async def nature_codes(rt: RuntimeDep, days: int = Query(default=90, ge=1, le=400)
                       ) -> dict[str, Any]:
    # Declared before /{version}, which would otherwise take "nature-codes" as a label.
    since = utcnow() - timedelta(days=days)
    return {"days": days, "since": since.isoformat(),
            "codes": await store.nature_codes(rt.engine, since)}


@router.get("/{version}", summary="One version: YAML and parsed; ?format=yaml exports the YAML",
            response_model=PolicyDocument,
            responses={200: {"content": {"text/yaml": {"schema": {"type": "string"}}}}})
async def read(version: str, rt: RuntimeDep, agency: AgencyOf,
               format: str = Query(default="json", pattern="^(json|yaml)$")) -> Any:
    row = await store.get_version(rt.engine, version, agency)
    if format == "yaml":
        return PlainTextResponse(row.document, media_type="text/yaml")
    return _full(row)


@router.get("/{version}/diff", summary="Unified diff of the YAML (default: against the "
                                       "published version)", response_model=PolicyDiff)
async def diff(version: str, rt: RuntimeDep, agency: AgencyOf,
               against: str | None = None) -> dict[str, Any]:
    row = await store.get_version(rt.engine, version, agency)
    other = (await store.get_version(rt.engine, against, agency) if against
             else await store.published(rt.engine, agency))
    if other is None:
        raise Conflict("no published version to compare with; name one with ?against=")
    return {"from": store.label(other), "to": store.label(row),
            "diff": store.unified_diff(other.document, row.document, store.label(other),
                                       store.label(row))}


def _tests(policy: Policy) -> tuple[list[dict[str, Any]], bool]:
    results = run_tests(policy)
    return ([{"name": r.name, "passed": r.passed, "failures": r.failures,
              "decision": r.decision.model_dump(mode="json") if r.decision else None}
             for r in results], all(r.passed for r in results))


@router.post("/{version}/test", summary="Run the version's own test cases",
             response_model=TestRun)
async def test(version: str, rt: RuntimeDep, agency: AgencyOf) -> dict[str, Any]:
    row = await store.get_version(rt.engine, version, agency)
    return _test_run(store.label(row), _parse(row.document))


def _test_run(label: str, policy: Policy) -> dict[str, Any]:
    results, ok = _tests(policy)
    return {"version": label, "passed": ok,
            "failed": sum(not r["passed"] for r in results), "results": results}


class PublishRequest(BaseModel):
    at: AwareDatetime | None = None  # later: a scheduled publish


async def _publish_body(request: Request) -> PublishRequest:
    raw = await request.body()
    try:
        return PublishRequest.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise InvalidPolicy("invalid publish request",
                            errors=field_errors(exc.errors())) from None


@router.post("/{version}/publish", summary="Publish a draft now (or at `at`); refused unless "
                                           "every test case passes", response_model=Published)
async def publish(version: str, request: Request, rt: RuntimeDep,
                  agency: AgencyOf) -> dict[str, Any]:
    req = await _publish_body(request)
    row = await store.get_version(rt.engine, version, agency)
    if row.status != store.DRAFT:
        raise Conflict(f"{store.label(row)} is {row.status}; only a draft is published "
                       "(use rollback for an earlier version)")
    results, ok = _tests(_parse(row.document))
    if not ok:
        raise Conflict(f"{store.label(row)} is not published: a test case fails",
                       failed=[r for r in results if not r["passed"]])
    who = await principal_of(request)
    if req.at is not None and req.at > datetime.now(req.at.tzinfo):
        row = await store.schedule(rt.engine, row.id, req.at)
        await record(request, who, "policy.schedule", target=store.label(row),
                     detail={"version": store.label(row)})
        return {**store.summary(row), "scheduled": True, "in_force": _in_force(rt, agency)}
    row = await store.publish(rt.engine, row.id, from_status=(store.DRAFT,))
    rt.region.adopt(agency, row)  # in force here now; the others on their next poll
    await record(request, who, "policy.publish", target=store.label(row),
                 detail={"version": store.label(row)})
    return {**store.summary(row), "scheduled": False, "in_force": _in_force(rt, agency)}


@router.post("/{version}/unschedule", summary="Cancel a draft's scheduled publish; it stays a "
                                              "draft",
             responses={409: {"description": "the version has no scheduled publish"}},
             response_model=InForce)
async def unschedule(version: str, request: Request, rt: RuntimeDep,
                     agency: AgencyOf) -> dict[str, Any]:
    row = await store.get_version(rt.engine, version, agency)
    row = await store.unschedule(rt.engine, row.id)
    await record(request, await principal_of(request), "policy.unschedule",
                 target=store.label(row), detail={"version": store.label(row)})
    return {**store.summary(row), "in_force": _in_force(rt, agency)}


@router.post("/{version}/rollback", summary="Re-publish an earlier (superseded) version; the "
                                            "published one becomes superseded",
             response_model=InForce)
async def rollback(version: str, request: Request, rt: RuntimeDep,
                   agency: AgencyOf) -> dict[str, Any]:
    row = await store.get_version(rt.engine, version, agency)
    if row.status != store.SUPERSEDED:
        raise Conflict(f"{store.label(row)} is {row.status}; only a superseded version can "
                       "be rolled back to")
    row = await store.publish(rt.engine, row.id, from_status=(store.SUPERSEDED,))
    rt.region.adopt(agency, row)  # in force here now; the others on their next poll
    await record(request, await principal_of(request), "policy.rollback",
                 target=store.label(row), detail={"version": store.label(row)})
    return {**store.summary(row), "in_force": _in_force(rt, agency)}


@router.post("/{version}/dry-run", summary="Decide a call with this version, with the full "
                                           "trace; nothing is stored", response_model=DryRun)
async def dry_run(version: str, request: Request, rt: RuntimeDep,
                  agency: AgencyOf) -> Response:
    row = await store.get_version(rt.engine, version, agency)
    compiled = compile_policy(_parse(row.document))
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return JSONResponse({"error": "invalid", "detail": [
            {"field": "(body)", "reason": "not valid JSON", "type": "json"}]}, status_code=422)
    if not isinstance(body, dict):
        body = {}
    units_busy = body.pop("units_busy", 0)
    states = body.pop("programs", None)
    try:
        call = CallFacts.model_validate(body)
        availability = Availability(units_total=compiled.policy.program.units,
                                    units_busy=units_busy)
    except ValidationError as exc:
        return JSONResponse({"error": "invalid", "detail": field_errors(exc.errors())},
                            status_code=422)
    try:
        # Each program's units busy and calls queued: given, the call may be queued or
        # deferred as the live service would decide it.
        state = None if states is None else _STATES.validate_python(states)
    except ValidationError as exc:
        errors = [{**e, "loc": ("programs", *e["loc"])} for e in exc.errors()]
        return JSONResponse({"error": "invalid", "detail": field_errors(errors)},
                            status_code=422)
    return _dry_run(store.label(row), compiled, call, availability, state)


def _dry_run(label: str, compiled: CompiledPolicy, call: CallFacts,
             availability: Availability, state: dict[str, ProgramState] | None
             ) -> JSONResponse:
    classification = classify(call, compiled)
    shaped: list[Shaping] = []
    decision = route(call, classification, compiled, availability, shaped=shaped,
                     state=state)
    tested = [t for t in classification.trace if t.kind != "disabled"]
    last = tested[-1] if tested else None
    stopped: dict[str, Any]
    if classification.rule_id:
        stopped = {"at": classification.rule_id, "kind": "rule",
                   "reason": "the first rule that held decides"}
    else:
        stopped = {"at": last.rule_id if last else None, "kind": last.kind if last else None,
                   "reason": "no rule held: every rule was tested"}
    return JSONResponse({
        "version": label,
        "decision": decision.model_dump(mode="json"),
        "classification": classification.model_dump(mode="json", exclude={"trace"}),
        "trace": [t.model_dump(mode="json") for t in classification.trace],
        "stopped": stopped,
        "program": decision.program.model_dump(mode="json"),
        "factors": decision.factors,
        "shaped_by": shaped,
        "programs": _consulted(compiled, classification.category, decision, shaped),
        "stored": False,
    })


_STATES = TypeAdapter(dict[str, ProgramState])


def _consulted(compiled: CompiledPolicy, category: str | None, decision: Decision,
               shaped: list[Shaping]) -> list[dict[str, Any]]:
    """Per program, in policy order, what it did with the call: the decision's steps that
    name it ("Program 'x' (Name) cannot take it now: …") and its settings consulted."""
    if not compiled.programs.named:
        return []
    out = []
    for p in compiled.programs.programs:
        mine = f"program '{p.id}'"
        factors = [f for f in decision.factors if mine in f.lower()]
        outcome = "refused" if factors else "not_tried"
        if decision.program.id == p.id and decision.destination.value != "police":
            outcome = ("queued" if decision.queued else "deferred" if decision.deferred_until
                       else "took")
        out.append({"id": p.id, "name": p.name, "mode": p.mode,
                    "takes_category": category is not None and p.takes(category),
                    "outcome": outcome, "factors": factors,
                    "shaped_by": [s for s in shaped if s.get("program") == p.id]})
    return out
