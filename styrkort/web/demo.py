"""Building the demo database: a list of named steps, run in order, each timed and printed.

`build_demo(seed)` runs `STEPS`. A step is a plain function `step(ctx: DemoContext) -> str`
returning a one-line summary; it must be idempotent (running it again on its own result changes
nothing and writes no history) and, unless declared otherwise, runs in its own transaction, so
a build that fails half-way is finished by running it again.

Later parts of the demo (synthetic extracts and indicators, a demo grant, …) add one entry to
`STEPS` below, e.g. ``DemoStep("extracts", synthesise_extracts)`` with the function in their own
app (``styrkort/extracts/demo.py``), reading `ctx.registry` (the generated registry with its
unit profiles), `ctx.region`, `ctx.admin` (the actor for history) and `ctx.seed`. A step that
must not run inside one transaction (e.g. one that enqueues jobs and waits for them) is declared
with ``atomic=False`` and takes care of its own transactions.

Registry writes are update-or-create on natural keys (organisation number, HSA-id, unit × month
× sex × age band, unit × period × profession); only real differences are written, in bulk, and
recorded in the change history in the same transaction, with the demo admin as actor and the
note "demo".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Model

from styrkort.accounts.models import Membership, Role
from styrkort.extracts.demo import demo_analyst, ingest_step
from styrkort.extracts.synth import synth_step
from styrkort.grants.demo import demo_grant
from styrkort.history.services import new_batch, record, record_many, snapshot
from styrkort.indicators.demo import compute_step
from styrkort.jobs.services import enqueue
from styrkort.organisation.demo import (
    DEFAULT_SEED,
    FIRST_MONTH,
    LAST_MONTH,
    MANAGED_UNITS,
    DemoRegistry,
    build_demo_registry,
    demo_rng,
    lines_digest,
    registry_lines,
)
from styrkort.organisation.models import CareUnit, Listing, Provider, Region, Staffing

NOTE = "demo"
BATCH_SIZE = 2000
DEMO_URL = "http://127.0.0.1:{port}/"

log = logging.getLogger(__name__)


class DemoError(Exception):
    """The demo cannot be built in this database (e.g. a demo username is taken elsewhere)."""


@dataclass(frozen=True)
class DemoUser:
    """A demo login: one per role, with a password derived from the seed."""

    username: str
    role: str
    password: str
    unit_keys: tuple[str, ...] = ()


@dataclass
class DemoContext:
    """What the steps share. Later steps may put their own results in `data`."""

    seed: int
    registry: DemoRegistry
    write: Callable[[str], None] = print
    region: Region | None = None
    admin: object | None = None
    users: list[DemoUser] = field(default_factory=list)
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoStep:
    """A named step of the demo build."""

    name: str
    run: Callable[[DemoContext], str]
    atomic: bool = True
    # Steps that may run after the demo starts serving (the extracts and the indicators on
    # them, about a minute), so that the region is in the browser within seconds.
    background: bool = False


# --- users --------------------------------------------------------------------------------

# (username, role, managed unit keys) — one per role; the admin is the actor of the build.
USER_SPECS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("admin", Role.ADMIN, ()),
    ("analys", Role.ANALYST, ()),
    ("chef.norrby", Role.UNIT_MANAGER, MANAGED_UNITS["chef.norrby"]),
    ("chef.privat", Role.UNIT_MANAGER, MANAGED_UNITS["chef.privat"]),
    ("revisor", Role.AUDITOR, ()),
    ("politiker", Role.VIEWER, ()),
)

# Plain ASCII words so the printed passwords are easy to type on any keyboard.
_PASSWORD_WORDS = (
    "lingon", "hjortron", "kantarell", "vitsippa", "blabar", "nyponros", "granskog", "fjallsjo",
    "tallkotte", "strandkal", "hassel", "ronnbar", "skogsmus", "lavendel", "kornblixt", "ljung",
)  # fmt: skip


def demo_users(seed: int) -> list[DemoUser]:
    """The demo users with their passwords for this seed ("demo-<word>-<4 digits>")."""
    users = []
    for username, role, units in USER_SPECS:
        rng = demo_rng(seed, "password", username)
        word = rng.choice(_PASSWORD_WORDS)
        password = f"demo-{word}-{rng.randrange(1000, 10000)}"
        users.append(DemoUser(username, str(role), password, units))
    return users


def check_accounts(ctx: DemoContext) -> None:
    """Refuse before writing anything when a demo username is taken by an account that is not
    a demo user (one with a role in the demo region): the demo never takes over accounts."""
    region = Region.objects.filter(lan_code=ctx.registry.region.lan_code).first()
    names = [u.username for u in ctx.users]
    for user in get_user_model().objects.filter(username__in=names).order_by("username"):
        membership = Membership.objects.filter(user=user).select_related("region").first()
        if membership is None or region is None or membership.region_id != region.pk:
            where = f"belongs to {membership.region}" if membership else "has no role in the demo"
            raise DemoError(
                f"the user {user.username!r} already exists and {where}; the demo does not take "
                "over other accounts (build it in an empty data directory or database)"
            )


def _ensure_user(spec: DemoUser, region: Region | None):
    """Create a demo login, or reset its password and flags (see check_accounts)."""
    User = get_user_model()
    user = User.objects.filter(username=spec.username).first()
    changed = user is None
    if user is None:
        user = User(username=spec.username)
        user.set_password(spec.password)
    elif not user.check_password(spec.password):
        user.set_password(spec.password)
        changed = True
    admin = spec.role == Role.ADMIN
    for attr, value in (("is_active", True), ("is_staff", admin), ("is_superuser", admin)):
        if getattr(user, attr) != value:
            setattr(user, attr, value)
            changed = True
    if changed:
        user.save()
    return user


# --- steps --------------------------------------------------------------------------------


def step_region(ctx: DemoContext) -> str:
    """Region Exempel and the demo admin, who is the actor of everything the build records."""
    spec = ctx.registry.region
    admin_spec = next(u for u in ctx.users if u.role == Role.ADMIN)
    region = Region.objects.filter(lan_code=spec.lan_code).first()
    admin = _ensure_user(admin_spec, region)
    if region is None:
        region = Region(name=spec.name, lan_code=spec.lan_code, org_nr=spec.org_nr)
        region.full_clean()
        region.save()
        record(admin, "create", region, after=snapshot(region), note=NOTE)
        done = "created"
    else:
        before = snapshot(region)
        region.name, region.org_nr = spec.name, spec.org_nr
        region.full_clean()
        after = snapshot(region)
        done = "unchanged"
        if after != before:
            region.save()
            record(admin, "update", region, before=before, after=after, note=NOTE)
            done = "updated"
    _ensure_membership(admin, admin, admin_spec, region, {})
    ctx.region, ctx.admin = region, admin
    return f"{region.name} (län {region.lan_code}) {done}"


def step_registry(ctx: DemoContext) -> str:
    """Providers, care units, listings and staffing, written in bulk with their history."""
    region, admin, reg = ctx.region, ctx.admin, ctx.registry
    assert region is not None
    assert admin is not None
    batch = new_batch()
    entries: list[dict] = []

    providers = {p.org_nr: p for p in Provider.objects.filter(region=region)}
    new_providers = []
    for dp in reg.providers:
        fields: dict[str, object] = {"name": dp.name, "kind": dp.kind}
        provider = providers.get(dp.org_nr)
        if provider is None:
            provider = Provider(region=region, org_nr=dp.org_nr, **fields)
            provider.full_clean(validate_constraints=False)
            new_providers.append(provider)
        else:
            _update(provider, fields, entries)
    Provider.objects.bulk_create(new_providers)
    entries += [_entry("create", p, after=snapshot(p)) for p in new_providers]
    providers.update({p.org_nr: p for p in new_providers})

    units = {u.hsa_id: u for u in CareUnit.objects.filter(hsa_id__in=[u.hsa_id for u in reg.units])}
    new_units = []
    for du in reg.units:
        fields = {
            "region_id": region.pk, "provider_id": providers[du.provider_org_nr].pk,
            "name": du.name, "municipality": du.municipality, "opened": du.opened,
            "closed": du.closed,
        }  # fmt: skip
        unit = units.get(du.hsa_id)
        if unit is None:
            unit = CareUnit(hsa_id=du.hsa_id, **fields)
            unit.full_clean(validate_unique=False)
            new_units.append(unit)
        else:
            if unit.region_id != region.pk:
                raise DemoError(f"the HSA-id {du.hsa_id} belongs to a unit of another region")
            _update(unit, fields, entries)
    CareUnit.objects.bulk_create(new_units)
    entries += [_entry("create", u, after=snapshot(u)) for u in new_units]
    units.update({u.hsa_id: u for u in new_units})

    listing_counts = _sync_listings(ctx, units, entries)
    staffing_counts = _sync_staffing(ctx, units, entries)
    record_many(admin, entries, batch=batch)
    return (
        f"{len(new_providers)} providers and {len(new_units)} units created; listings "
        f"{_counts(listing_counts)}; staffing {_counts(staffing_counts)}; "
        f"{len(entries)} history rows"
    )


def step_users(ctx: DemoContext) -> str:
    """The other demo logins and their memberships (roles, and units for unit managers)."""
    region = ctx.region
    assert region is not None
    units = {u.key: u.hsa_id for u in ctx.registry.units}
    by_hsa = {u.hsa_id: u for u in CareUnit.objects.filter(hsa_id__in=units.values())}
    changed = 0
    others = [spec for spec in ctx.users if spec.role != Role.ADMIN]  # admin: step_region
    for spec in others:
        user = _ensure_user(spec, region)
        managed = {units[k]: by_hsa[units[k]] for k in spec.unit_keys}
        changed += _ensure_membership(ctx.admin, user, spec, region, managed)
    return f"{len(others)} users besides admin, {changed} memberships created or changed"


# Later engineers: append your step here (see the module docstring).
STEPS: list[DemoStep] = [
    DemoStep("region", step_region),
    DemoStep("registry", step_registry),
    DemoStep("users", step_users),
    DemoStep("grant", demo_grant),
    DemoStep("synth", synth_step, atomic=False, background=True),
    DemoStep("ingest", ingest_step, atomic=False, background=True),
    DemoStep("indicators", compute_step, atomic=False, background=True),
]

JOB_KIND = "web.demo_background"


def build_demo(
    seed: int = DEFAULT_SEED,
    *,
    write: Callable[[str], None] = print,
    steps: list[DemoStep] | None = None,
    defer_background: bool = False,
) -> DemoContext:
    """Build or refresh the demo database; prints one line per step with its duration.

    With ``defer_background`` the steps marked ``background`` are not run here but queued as
    one job (``JOB_KIND``, acting as the demo analyst), which the serving process's job poller
    runs; ``ctx.data["background_job"]`` is that job."""
    ctx = DemoContext(seed=seed, registry=build_demo_registry(seed), write=write)
    ctx.users = demo_users(seed)
    check_accounts(ctx)
    chosen = STEPS if steps is None else steps
    later = [s for s in chosen if s.background] if defer_background else []
    for step in chosen:
        if step in later:
            continue
        _run_step(ctx, step)
    if later:
        params = {"seed": seed, "steps": [s.name for s in later]}
        ctx.data["background_job"] = enqueue(demo_analyst(ctx.region), JOB_KIND, params)
    return ctx


def _run_step(ctx: DemoContext, step: DemoStep) -> None:
    started = time.perf_counter()
    if step.atomic:
        with transaction.atomic():
            summary = step.run(ctx)
    else:
        summary = step.run(ctx)
    ctx.write(f"  {step.name:<12} {time.perf_counter() - started:6.1f} s  {summary}")


def background_job(job, progress) -> dict:
    """Job handler: the demo's deferred steps (synth, ingest, indicators), in order, after the
    region step has found the demo region again."""
    names = list(job.params.get("steps") or [])
    steps = [s for s in STEPS if s.name == "region"] + [s for s in STEPS if s.name in names]
    lines: list[str] = []

    def write(line: str) -> None:
        lines.append(line)
        log.info("demo: %s", line.strip())
        done = sum(1 for ln in lines if ln.startswith("  ") and ln.split()[0] in names)
        progress(done, len(names), line.strip()[:200])

    progress(0, len(names), "")
    build_demo(int(job.params["seed"]), write=write, steps=steps)
    return {"steps": names, "lines": [ln.strip() for ln in lines if ln.startswith("  ")]}


def users_table(ctx: DemoContext, port: int = 8000) -> str:
    """The demo logins with their passwords, and where to open the demo."""
    names = {u.key: u.name for u in ctx.registry.units}
    rows = [("user", "role", "password", "units")]
    rows += [
        (u.username, u.role, u.password, ", ".join(names[k] for k in u.unit_keys))
        for u in ctx.users
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        ("  " + "  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3]).rstrip()
        for r in rows
    ]
    lines.insert(1, "  " + "  ".join("-" * w for w in widths) + "  " + "-" * 5)
    url = DEMO_URL.format(port=port)
    return "\n".join(["Demo users (passwords follow from the seed):", *lines, "", f"Open {url}"])


# --- digest -------------------------------------------------------------------------------


def database_lines(region: Region) -> Iterator[str]:
    """The registry rows stored for a region, as the generator's canonical lines."""
    providers = list(Provider.objects.filter(region=region).values_list("org_nr", "name", "kind"))
    units = list(
        CareUnit.objects.filter(region=region).values_list(
            "hsa_id", "name", "provider__org_nr", "municipality", "opened", "closed"
        )
    )
    listings = Listing.objects.filter(unit__region=region).values_list(
        "unit__hsa_id", "month", "sex", "age_band", "listed"
    )
    staffing = Staffing.objects.filter(unit__region=region).values_list(
        "unit__hsa_id", "period", "profession", "fte"
    )
    return registry_lines(
        region=(region.name, region.lan_code, region.org_nr),
        providers=providers, units=units, listings=list(listings), staffing=list(staffing),
    )  # fmt: skip


def database_digest(region: Region) -> str:
    """SHA-256 of every registry row of the region (natural keys, no primary keys)."""
    return lines_digest(database_lines(region))


# --- helpers ------------------------------------------------------------------------------


def _update(obj, fields: dict, entries: list[dict]) -> bool:
    """Set fields on a stored object; save and queue a history entry if anything changed."""
    before = snapshot(obj)
    for name, value in fields.items():
        setattr(obj, name, value)
    after = snapshot(obj)
    if after == before:
        return False
    obj.full_clean(validate_unique=False, validate_constraints=False)
    obj.save()
    entries.append(_entry("update", obj, before=before, after=after))
    return True


def _ensure_membership(actor, user, spec: DemoUser, region: Region, managed: dict) -> int:
    """Give a demo user its role (and units); 1 if anything was written, else 0."""
    membership = Membership.objects.filter(user=user).first()
    before = None
    if membership is None:
        membership = Membership(user=user, region=region, role=spec.role)
    else:
        before = snapshot(membership)
        before["units"] = sorted(membership.units.values_list("hsa_id", flat=True))
        membership.region, membership.role = region, spec.role
    if before is not None and before == {**snapshot(membership), "units": sorted(managed)}:
        return 0
    membership.save()
    membership.units.set(managed.values())
    after = {**snapshot(membership), "units": sorted(managed)}
    action = "update" if before else "create"
    record(actor, action, membership, before=before, after=after, note=NOTE)
    return 1


def _entry(action: str, obj, *, before: dict | None = None, after: dict | None = None) -> dict:
    """A history entry for record_many."""
    return {"action": action, "obj": obj, "before": before, "after": after, "note": NOTE}


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items())


def _sync_listings(ctx: DemoContext, units: dict[str, CareUnit], entries: list[dict]) -> dict:
    reg = ctx.registry
    last = reg.listed_in(LAST_MONTH)
    rows_of: dict[str, int] = {}
    for row in reg.listings:
        rows_of[row.hsa_id] = rows_of.get(row.hsa_id, 0) + 1
    return _sync_cells(
        ctx, units, entries, model=Listing, keys=("month", "sex", "age_band"), value="listed",
        rows=[(r.hsa_id, (r.month, r.sex, r.age_band), r.listed) for r in reg.listings],
        summary=lambda hsa_id: {
            "dataset": "listings", "months": f"{FIRST_MONTH}–{LAST_MONTH}",
            "rows": rows_of.get(hsa_id, 0), f"listed_{LAST_MONTH}": last.get(hsa_id, 0),
        },
    )  # fmt: skip


def _sync_staffing(ctx: DemoContext, units: dict[str, CareUnit], entries: list[dict]) -> dict:
    return _sync_cells(
        ctx, units, entries, model=Staffing, keys=("period", "profession"), value="fte",
        rows=[(r.hsa_id, (r.period, r.profession), r.fte) for r in ctx.registry.staffing],
        summary=lambda hsa_id: {
            "dataset": "staffing", "periods": "2024, 2025 and their quarters",
        },
    )  # fmt: skip


def _sync_cells(
    ctx: DemoContext,
    units: dict[str, CareUnit],
    entries: list[dict],
    *,
    model: type[Model],
    keys: tuple[str, ...],
    value: str,
    rows: list[tuple[str, tuple, object]],
    summary: Callable[[str], dict],
) -> dict[str, int]:
    """Make a unit × key → value table hold exactly `rows` for the demo units: create what is
    missing, update what differs, delete what the generator does not produce (e.g. rows added
    by hand), in bulk; queue one "import" history entry per unit that changed."""
    hsa_of = {u.pk: hsa for hsa, u in units.items()}
    existing: dict[tuple, tuple[int, object]] = {}
    manager = model._default_manager
    stored = manager.filter(unit_id__in=hsa_of).values_list("pk", "unit_id", *keys, value)
    for pk, unit_id, *rest in stored:
        existing[(unit_id, *rest[:-1])] = (pk, rest[-1])
    rows_before: dict[int, int] = {}
    for unit_id, *_ in existing:
        rows_before[unit_id] = rows_before.get(unit_id, 0) + 1
    create: list[Model] = []
    update: list[Model] = []
    stats: dict[int, dict[str, int]] = {}
    for hsa_id, key, wanted in rows:
        unit_id = units[hsa_id].pk
        counts = stats.setdefault(unit_id, {"created": 0, "updated": 0, "deleted": 0})
        current = existing.pop((unit_id, *key), None)
        if current is None:
            create.append(
                model(unit_id=unit_id, **dict(zip(keys, key, strict=True)), **{value: wanted})
            )
            counts["created"] += 1
        elif current[1] != wanted:
            update.append(model(pk=current[0], **{value: wanted}))
            counts["updated"] += 1
    stale = [pk for pk, _ in existing.values()]
    for unit_id, *_ in existing:
        stats.setdefault(unit_id, {"created": 0, "updated": 0, "deleted": 0})["deleted"] += 1
    manager.bulk_create(create, batch_size=BATCH_SIZE)
    manager.bulk_update(update, [value], batch_size=500)
    for i in range(0, len(stale), 500):
        manager.filter(pk__in=stale[i : i + 500]).delete()
    for unit_id, counts in stats.items():
        if not any(counts.values()):
            continue
        hsa_id = hsa_of[unit_id]
        dataset = summary(hsa_id)
        before = None
        if unit_id in rows_before:
            before = {"dataset": dataset["dataset"], "rows": rows_before[unit_id]}
        after = {
            **dataset, "seed": ctx.seed, "generator_version": ctx.registry.version, **counts,
        }  # fmt: skip
        entries.append(_entry("import", units[hsa_id], before=before, after=after))
    return {"created": len(create), "updated": len(update), "deleted": len(stale)}
