"""``starter.py drift enable|status|disable``: a Temporal Schedule per resource group that runs what-if of its last
good deployment against the live state and classifies the result (docs/FLEET.md)."""

from __future__ import annotations

import argparse
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError, RPCStatusCode

from client.cli._common import (
    CommandError,
    Target,
    add_target_args,
    current_user,
    local_flag,
    print_json,
    progress,
    resolve_target,
    run_command,
)
from client.exit_codes import ExitCode
from client.inputs import InputError, validate_resource_group_name
from contract.drift import (
    DRIFT_WORKFLOW_NAME,
    MAX_ALLOW_ENTRIES,
    AllowEntry,
    DriftCheckInput,
    DriftReport,
    drift_schedule_id,
)
from contract.health import parse_duration

MIN_EVERY = 60.0
MAX_EVERY = 30 * 24 * 3600.0
STATUS_RUNS = 5
MAX_ALLOW_LIST_BYTES = 1024 * 1024


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "drift",
        help="detect drift on a schedule: what-if of a resource group's last good deployment against the live state",
        description="Drift detection (docs/FLEET.md). `enable` creates a Temporal Schedule that checks the resource "
        "group every --every (and once at once, which takes the baseline); `status` shows the latest checks and "
        "exits 7 when the latest found configuration or destructive drift; `disable` deletes the schedule.",
    )
    sub = p.add_subparsers(dest="drift_command", metavar="ACTION")
    sub.required = True
    q = sub.add_parser("enable", help="check the resource group on a schedule")
    _place(q)
    q.add_argument("--every", default="6h", help="how often (60s .. 30d; e.g. 15m, 6h; default 6h)")
    q.add_argument(
        "--allow-list",
        metavar="FILE",
        help="YAML/JSON list of {resource_type, api_version, path, expires, who, why}: differences that are not drift",
    )
    q.add_argument(
        "--remediate",
        action="store_true",
        help="a check that finds drift starts an ordinary deployment of the last good template and parameters "
        "(plan, approval of deletions under the worker's policy, deploy, health); you are its initiator",
    )
    q.add_argument(
        "-t",
        "--template",
        metavar="FILE",
        help="compare with this ARM JSON template instead of the last good deployment (no baseline then: the "
        "allow-list covers provider noise); --remediate deploys it",
    )
    q.add_argument("-p", "--parameters", metavar="FILE", help="with -t: its parameters file")
    q.add_argument("-l", "--location", help="with -t: the resource group's region (required with -t)")
    q.add_argument("--mode", choices=["Incremental", "Complete"], default="Incremental", help="with -t: the mode")
    add_target_args(q)
    q.set_defaults(run=run_enable)
    q = sub.add_parser("status", help="the latest checks of the resource group")
    _place(q)
    add_target_args(q)
    q.set_defaults(run=run_status)
    q = sub.add_parser("disable", help="delete the resource group's drift schedule")
    _place(q)
    add_target_args(q)
    q.set_defaults(run=run_disable)


def _place(q: Any) -> None:
    q.add_argument("-g", "--resource-group", help="the resource group (or --rollout)")
    q.add_argument("--subscription", help="subscription id (default: AZURE_SUBSCRIPTION_ID, or --local's)")
    q.add_argument(
        "--rollout",
        metavar="FILE",
        help="every target of this rollout file (docs/FLEET.md) instead of one resource group: each its own schedule",
    )


def _places(args: argparse.Namespace) -> list[tuple[str | None, str]]:
    """(subscription or None for the default, resource group) of each schedule the command names, checked before
    anything connects: one group (-g), or every target of a rollout file (--rollout)."""
    if args.rollout and (args.resource_group or args.subscription):
        raise InputError("--rollout names every target itself: leave out -g and --subscription.")
    if args.rollout:
        from client.rollout_file import check_rollout_file

        try:
            checked = check_rollout_file(args.rollout)
        except InputError as exc:  # the file's reader names the rollout command's argument (FILE)
            raise InputError(str(exc).replace(" given with FILE ", " given with --rollout ")) from None
        return [(t.subscription_id, t.resource_group) for ring in checked.rings for t in ring.targets]
    if not args.resource_group:
        raise InputError("Give the resource group (-g RG), or a rollout file (--rollout FILE) for all its targets.")
    rg = validate_resource_group_name(args.resource_group)
    if args.subscription or not args.local:
        _subscription(args, None)
    return [(None, rg)]


def run_enable(args: argparse.Namespace) -> int:
    return run_command(lambda: enable(args), output=args.output)


def run_status(args: argparse.Namespace) -> int:
    return run_command(lambda: status(args), output=args.output)


def run_disable(args: argparse.Namespace) -> int:
    return run_command(lambda: disable(args), output=args.output)


def read_allow_list(path: str) -> list[AllowEntry]:
    import json

    import yaml
    from pydantic import ValidationError

    from services.input_files import read_input_file

    raw = read_input_file(Path(path), what="allow-list", flag="--allow-list", max_bytes=MAX_ALLOW_LIST_BYTES)
    try:
        doc = json.loads(raw) if path.endswith(".json") else yaml.safe_load(raw.decode("utf-8"))
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(f"The allow-list {path} cannot be read: {str(exc).splitlines()[0][:200]}.") from None
    if not isinstance(doc, list):
        raise InputError(f"The allow-list {path} must be a list of entries (docs/FLEET.md, Drift).")
    if len(doc) > MAX_ALLOW_ENTRIES:
        raise InputError(f"The allow-list {path} has {len(doc)} entries; at most {MAX_ALLOW_ENTRIES}.")
    entries = []
    for i, item in enumerate(doc):
        try:
            entry = AllowEntry.model_validate(item)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"]) or "entry"
            msg = "is required" if err["type"] == "missing" else err["msg"]
            raise InputError(f"The allow-list {path}: [{i}].{field}: {msg} (docs/FLEET.md, Drift).") from None
        if entry.expires.tzinfo is None:
            entry = entry.model_copy(update={"expires": entry.expires.replace(tzinfo=UTC)})
        entries.append(entry)
    return entries


def _every(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise InputError(f"--every {exc}.") from None
    if not MIN_EVERY <= seconds <= MAX_EVERY:
        raise InputError(f"--every '{text}' is outside 60s .. 30d.")
    return seconds


def _subscription(args: argparse.Namespace, target: Target | None) -> str:
    from client.cli.deploy import resolve_subscription

    return resolve_subscription(args, target)


def _given(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    """-t/-p/-l checked before connecting: the template, its parameters and the location; None without -t."""
    from client.inputs import load_parameters_file, load_template, validate_location

    if args.template is None:
        if args.parameters or args.location or args.mode != "Incremental":
            raise InputError("-p, -l and --mode describe the template given with -t: give -t too.")
        return None
    if args.rollout:
        raise InputError("--rollout compares every target with its last good deployment: leave out -t.")
    if not args.location:
        raise InputError("-t needs -l/--location: the resource group's region (what-if evaluates the template there).")
    template = load_template(args.template)
    parameters = load_parameters_file(args.parameters) if args.parameters else {}
    return template, parameters, validate_location(args.location)


async def enable(args: argparse.Namespace) -> int:
    from client.cli._common import open_store, store_write_error
    from client.deployments import build_deploy_request
    from contract.models import DeploymentMode

    every = _every(args.every)
    allow = read_allow_list(args.allow_list) if args.allow_list else []
    given = _given(args)
    places = _places(args)
    target = await resolve_target(args)
    enabled = []
    for sub, rg in places:
        sub = sub or _subscription(args, target)
        inp = DriftCheckInput(
            subscription_id=sub, resource_group=rg, allow_list=allow, remediate=args.remediate, initiator=current_user()
        )
        if given is not None:
            template, parameters, location = given
            store = open_store(target)
            try:
                inp.request = build_deploy_request(
                    store=store,
                    template=template,
                    subscription_id=sub,
                    resource_group=rg,
                    location=location,
                    parameters=parameters,
                    template_path=args.template,
                    parameters_path=args.parameters,
                    mode=DeploymentMode(args.mode),
                    initiator=inp.initiator,
                )
            except OSError as exc:
                raise store_write_error(store, exc, "the template") from None
        schedule_id, verb = await _enable_one(target, inp, every)
        enabled.append(schedule_id)
        progress(
            f"{verb} drift detection for {rg}: schedule {schedule_id}, every {args.every}, {len(allow)} allow-list "
            f"entries{'; drift is remediated by a deployment started as ' + inp.initiator if args.remediate else ''}"
            f"; a check runs now{'' if given else ' (it takes the baseline)'}. `python starter.py drift status -g {rg} "
            f"--subscription "
            f"{sub}{local_flag(target)}` shows the results."
        )
    if args.output == "json":
        print_json(
            {
                "schedule_id": enabled[0] if len(enabled) == 1 else None,
                "schedule_ids": enabled,
                "every_seconds": every,
                "allow_list": len(allow),
                "remediate": args.remediate,
            }
        )
    return ExitCode.OK


async def _enable_one(target: Target, inp: DriftCheckInput, every: float) -> tuple[str, str]:
    """Create (or update) the group's schedule and run one check now; its id and what was done."""
    schedule_id = drift_schedule_id(inp.subscription_id, inp.resource_group)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            DRIFT_WORKFLOW_NAME, inp, id=f"{schedule_id}-check", task_queue=target.task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await target.client.create_schedule(schedule_id, schedule, trigger_immediately=True)
        return schedule_id, "Enabled"
    except ScheduleAlreadyRunningError:
        handle = target.client.get_schedule_handle(schedule_id)
        await handle.update(lambda _: ScheduleUpdate(schedule=schedule))
        await handle.trigger()
        return schedule_id, "Updated"


async def _schedule(target: Target, sub: str, rg: str, *, missing_ok: bool = False) -> tuple[Any, str]:
    """The group's schedule description (None with ``missing_ok`` when there is none) and its id."""
    schedule_id = drift_schedule_id(sub, rg)
    handle = target.client.get_schedule_handle(schedule_id)
    try:
        return await handle.describe(), schedule_id
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            if missing_ok:
                return None, schedule_id
            raise CommandError(
                f"Drift detection is not enabled for {rg} (no schedule {schedule_id}): `python starter.py drift "
                f"enable -g {rg}{local_flag(target)}` enables it.",
                ExitCode.USAGE,
            ) from None
        raise CommandError(f"Could not read schedule {schedule_id}: {exc.message}.", ExitCode.ENVIRONMENTAL) from None


async def _resolved(args: argparse.Namespace) -> tuple[Target, list[tuple[str, str]]]:
    places = _places(args)
    target = await resolve_target(args)
    return target, [(sub or _subscription(args, target), rg) for sub, rg in places]


async def _reports(target: Target, description: Any) -> list[tuple[str, DriftReport | None, str | None]]:
    reports: list[tuple[str, DriftReport | None, str | None]] = []
    for action in list(description.info.recent_actions)[-STATUS_RUNS:][::-1]:
        run = action.action
        run_id = run.first_execution_run_id
        wf = target.client.get_workflow_handle(run.workflow_id, run_id=run_id, result_type=DriftReport)
        try:
            if (await wf.describe()).status is WorkflowExecutionStatus.RUNNING:
                reports.append((run_id, None, "running"))
                continue
            reports.append((run_id, await wf.result(follow_runs=False), None))
        except Exception as exc:  # a failed check, or one whose history is gone: shown as such
            reports.append((run_id, None, (str(exc).splitlines() or [type(exc).__name__])[0][:200]))
    return reports


def _checks_json(reports: list[tuple[str, DriftReport | None, str | None]]) -> list[dict[str, Any]]:
    return [
        {"run_id": run_id, "report": r.model_dump(mode="json") if r else None, "error": err}
        for run_id, r, err in reports
    ]


async def status(args: argparse.Namespace) -> int:
    target, places = await _resolved(args)
    fleet = bool(args.rollout)
    drifted_any = False
    documents: list[dict[str, Any]] = []
    for sub, rg in places:
        description, schedule_id = await _schedule(target, sub, rg, missing_ok=fleet)
        if description is None:
            documents.append({"schedule_id": schedule_id, "resource_group": rg, "enabled": False, "checks": []})
            if args.output != "json":
                print(f"Drift schedule {schedule_id}: not enabled")
            continue
        reports = await _reports(target, description)
        latest = next((r for _, r, _ in reports if r is not None), None)
        drifted_any = drifted_any or (latest is not None and latest.drifted)
        documents.append({"schedule_id": schedule_id, "resource_group": rg, "enabled": True,
                          "checks": _checks_json(reports)})  # fmt: skip
        if args.output != "json":
            _print_reports(target, schedule_id, description, reports[:1] if fleet else reports)
    if args.output == "json":
        if fleet:
            print_json({"schedules": documents})
        else:
            print_json({"schedule_id": documents[0]["schedule_id"], "checks": documents[0]["checks"]})
    return ExitCode.DRIFT if drifted_any else ExitCode.OK


def _print_reports(
    target: Target, schedule_id: str, description: Any, reports: list[tuple[str, DriftReport | None, str | None]]
) -> None:
    print(f"Drift schedule {schedule_id}: {len(description.info.recent_actions)} recent checks")
    for run_id, r, err in reports:
        if r is None:
            print(f"  run {run_id}: {err}")
            continue
        print(
            f"  {r.checked_at:%Y-%m-%d %H:%M:%S}Z  {r.classification.value:<20} suppressed: "
            f"{r.suppressed_baseline} by the baseline, {r.suppressed_allow_list} by the allow-list"
            + ("  (baseline taken)" if r.baseline_captured else "")
        )
        if r.compared_with:
            print(f"      compared with {r.compared_with}")
        if r.problem:
            print(f"      {r.problem}")
        for f in r.findings:
            gone = f.change_type == "Create"
            what = "gone (deleted out of band)" if gone else ", ".join(f.paths) or f.change_type
            print(f"      {f.resource_id}: {what}")
        for e in r.expired_entries:
            print(f"      expired allow-list entry (not applied): {e}")
        if r.remediation_workflow_id:
            print(
                f"      remediation: deployment {r.remediation_workflow_id} run {r.remediation_run_id} "
                f"(`python starter.py status {r.remediation_workflow_id}{local_flag(target)}`)"
            )
        if r.remediation_problem:
            print(f"      not remediated: {r.remediation_problem}")
        if r.notification_id:
            print(f"      announced to the notification sinks: event {r.notification_id}")


async def disable(args: argparse.Namespace) -> int:
    target, places = await _resolved(args)
    fleet = bool(args.rollout)
    deleted: list[str] = []
    for sub, rg in places:
        description, schedule_id = await _schedule(target, sub, rg, missing_ok=fleet)
        if description is None:
            progress(f"Drift detection was not enabled for {rg} (no schedule {schedule_id}).")
            continue
        await target.client.get_schedule_handle(schedule_id).delete()
        deleted.append(schedule_id)
        progress(
            f"Disabled drift detection: schedule {schedule_id} deleted (its past checks stay in Temporal's history)."
        )
    if args.output == "json":
        if fleet:
            print_json({"deleted": deleted})
        else:
            print_json({"schedule_id": deleted[0], "deleted": True})
    return ExitCode.OK
