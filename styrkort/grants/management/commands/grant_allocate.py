"""styrkort grant-allocate --grant ID --reference-month 2025-10 --user USER [--decide --dnr …]"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404
from django.utils import translation

from styrkort.grants import queries, services
from styrkort.grants.allocation import AllocationError
from styrkort.grants.management.commands._common import acting_user, refusal
from styrkort.money import format_kronor


def _central(text: str) -> dict:
    """ "Utbildning=15%" (share) or "Utbildning=2000000" (kronor), optionally ":category"."""
    if "=" not in text:
        raise CommandError(f"--central {text!r}: write NAME=AMOUNT or NAME=PERCENT%")
    name, value = text.split("=", 1)
    category = None
    if ":" in value:
        value, category = value.split(":", 1)
    value = value.strip()
    item = {"name": name.strip(), "category": category}
    if value.endswith("%"):
        item["percent"] = value[:-1]
    else:
        item["amount"] = value
    return item


class Command(BaseCommand):
    help = (
        "Compute a new draft allocation plan for a grant (central efforts, then every active "
        "unit by listed patients at the reference month); --decide decides it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--grant", required=True, type=int, help="Grant id")
        parser.add_argument("--reference-month", required=True, help="E.g. 2025-10")
        parser.add_argument("--user", required=True, help="Acting user (an analyst)")
        parser.add_argument(
            "--central",
            action="append",
            default=None,
            help="Central effort NAME=AMOUNT or NAME=PERCENT%%[:category] (repeatable); "
            "default: those of the plan in force",
        )
        parser.add_argument("--weighting", default=None, choices=["none", "need_index", "age_sex"])
        parser.add_argument("--floor", help="Floor per unit (kr)")
        parser.add_argument("--cap", help="Cap per unit (kr)")
        parser.add_argument("--note", default="")
        parser.add_argument("--decide", action="store_true", help="Decide the new version")
        parser.add_argument("--dnr", default="", help="Decision reference for --decide")
        parser.add_argument("--reason", default="", help="Reason when superseding a plan")

    def handle(self, *args, **opts):
        translation.activate("en")
        user = acting_user(opts["user"])
        try:
            grant = queries.get_grant(user, opts["grant"])
        except Http404:
            raise CommandError(f"no grant {opts['grant']} in {user.username}'s region")
        if opts["decide"] and not opts["dnr"].strip():
            raise CommandError("--decide needs --dnr (the decision's reference number)")
        base = grant.decided_plan()
        base_spec = services.plan_input_of(base) if base else None
        if opts["central"] is not None:
            central = [_central(c) for c in opts["central"]]
        elif base_spec:
            central = [
                {"name": i.name, "amount": i.fixed_amount, "share": i.share, "category": i.category}
                for i in base_spec.central_items
            ]
        else:
            central = []
        values = {
            "reference_month": opts["reference_month"],
            "weighting": opts["weighting"] or (base_spec.weighting if base_spec else "none"),
            "need_index": base_spec.need_index if base_spec else {},
            "age_sex_weights": base_spec.age_sex_weights if base_spec else {},
            "central_items": central,
            "floor": opts["floor"],
            "cap": opts["cap"],
            "note": opts["note"],
        }
        try:
            spec = services.plan_input_from_values(values)
            plan = services.create_plan(user, grant, spec)
            if opts["decide"]:
                services.decide_plan(user, plan, dnr=opts["dnr"], reason=opts["reason"])
        except (services.GrantError, AllocationError) as exc:
            raise refusal(exc)
        except PermissionDenied:
            raise CommandError(f"the user {user.username!r} may not allocate grants")
        preview = services.preview_plan(plan)
        status = "decided" if opts["decide"] else "draft"
        summary = (
            f"Plan v{plan.version} ({status}) for {grant.name}: {format_kronor(plan.region_total)}"
            f" = {format_kronor(preview.central_total)} central + "
            f"{format_kronor(preview.units_total)} to {len(preview.rows)} units "
            f"({preview.listed_total} listed in {plan.reference_month})"
        )
        self.stdout.write(summary.replace("\xa0", " "))
