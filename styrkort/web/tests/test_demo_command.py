"""Building the demo database: matches the generator, idempotent, recorded, with a user per role."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from styrkort.accounts.models import Membership
from styrkort.history.models import ChangeRecord
from styrkort.organisation.demo import DEMO_REGION, build_demo_registry
from styrkort.organisation.models import CareUnit, Listing, Provider, Region, Staffing
from styrkort.web import demo
from styrkort.web.management.commands import demo as demo_command

SEED = 3
ALL_STEPS = [s.name for s in demo.STEPS]  # before the fixture below narrows them


@pytest.fixture(autouse=True)
def _without_extracts(monkeypatch):
    # The registry, users and grant steps are what these tests are about; the extract steps
    # (synth, ingest, indicators) take most of a minute and have their own tests in
    # styrkort/extracts/tests/test_demo.py and styrkort/indicators/tests/test_demo.py.
    steps = [s for s in demo.STEPS if s.name in {"region", "registry", "users", "grant"}]
    monkeypatch.setattr(demo, "STEPS", steps)


def test_it_runs_every_part_of_the_demo_in_order():
    assert ALL_STEPS == [
        "region", "registry", "users", "grant", "synth", "ingest", "indicators"
    ]  # fmt: skip


def _counts() -> dict[str, int]:
    return {
        "regions": Region.objects.count(),
        "providers": Provider.objects.count(),
        "units": CareUnit.objects.count(),
        "listings": Listing.objects.count(),
        "staffing": Staffing.objects.count(),
        "users": get_user_model().objects.count(),
        "memberships": Membership.objects.count(),
        "history": ChangeRecord.objects.count(),
    }


def _state() -> tuple:
    users = tuple(get_user_model().objects.order_by("username").values_list("username", "password"))
    return _counts(), users


def _last_history_id() -> int:
    return ChangeRecord.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _build(seed: int = SEED) -> tuple[demo.DemoContext, list[str]]:
    lines: list[str] = []
    ctx = demo.build_demo(seed, write=lines.append)
    return ctx, lines


def test_it_builds_the_registry_the_generator_describes(db):
    ctx, lines = _build()
    region = Region.objects.get(lan_code=DEMO_REGION.lan_code)
    assert region.name == "Region Exempel"
    assert demo.database_digest(region) == build_demo_registry(SEED).digest()
    counts = _counts()
    assert counts["providers"] == 6
    assert counts["units"] == len(ctx.registry.units)
    assert counts["listings"] == len(ctx.registry.listings)
    assert counts["staffing"] == len(ctx.registry.staffing)
    assert [line.split()[0] for line in lines][:3] == ["region", "registry", "users"]
    for unit in CareUnit.objects.all():
        unit.full_clean()


def test_it_is_idempotent(db):
    _build()
    region = Region.objects.get(lan_code=DEMO_REGION.lan_code)
    digest, state = demo.database_digest(region), _state()
    _, lines = _build()
    assert _state() == state
    assert demo.database_digest(region) == digest
    assert "0 history rows" in lines[1]


def test_it_records_the_initial_build_in_the_history(db):
    ctx, _ = _build()
    admin = get_user_model().objects.get(username="admin")
    # The demo grant's step acts as the demo analyst and unit managers (grants.* records).
    records = ChangeRecord.objects.exclude(object_type__startswith="grants.")
    records = records.exclude(object_type__startswith="extracts.")  # by the demo analyst
    assert {r.actor_id for r in records} == {admin.pk}
    assert {r.note for r in records} == {"demo"}
    creates = records.filter(action="create")
    assert creates.filter(object_type="organisation.provider").count() == 6
    assert creates.filter(object_type="organisation.careunit").count() == len(ctx.registry.units)
    assert creates.filter(object_type="accounts.membership").count() == 6
    imports = records.filter(action="import", object_type="organisation.careunit")
    listing_imports = [r for r in imports if r.after["dataset"] == "listings"]
    assert len(listing_imports) == len(ctx.registry.units)
    norrby = CareUnit.objects.get(name="Vårdcentralen Norrby")
    summary = next(r.after for r in listing_imports if r.object_id == str(norrby.pk))
    assert summary["rows"] == Listing.objects.filter(unit=norrby).count()
    assert summary["created"] == summary["rows"]
    assert summary["seed"] == SEED
    # One transaction per build step: every registry row of the build shares one batch.
    registry_batches = {r.batch for r in records if r.object_type != "accounts.membership"}
    registry_batches.discard("")
    assert len(registry_batches) == 1


def test_it_refreshes_to_another_seed_and_records_it_as_imports(db):
    _build(1)
    last = _last_history_id()
    _build(2)
    region = Region.objects.get(lan_code=DEMO_REGION.lan_code)
    assert demo.database_digest(region) == build_demo_registry(2).digest()
    new = ChangeRecord.objects.filter(id__gt=last)
    assert new.exists()
    # (Extract versions replaced by the new seed's extracts are superseded: "transition".)
    new = new.exclude(object_type__startswith="extracts.")
    assert set(new.values_list("action", flat=True)) == {"import"}
    # The passwords follow the seed.
    analys = get_user_model().objects.get(username="analys")
    assert analys.check_password(demo.demo_users(2)[1].password)


def test_it_puts_back_rows_changed_by_hand(db):
    _build()
    region = Region.objects.get(lan_code=DEMO_REGION.lan_code)
    digest = demo.database_digest(region)
    norrby = CareUnit.objects.get(name="Vårdcentralen Norrby")
    row = Listing.objects.filter(unit=norrby).first()
    row.listed += 7
    row.save()
    Staffing.objects.filter(unit=norrby, period="2025").delete()
    Listing.objects.create(unit=norrby, month="2026-01", sex="K", age_band="0-4", listed=3)
    CareUnit.objects.filter(pk=norrby.pk).update(municipality="Någonstans")
    last = _last_history_id()
    _build()
    assert demo.database_digest(region) == digest
    new = list(ChangeRecord.objects.filter(id__gt=last))
    kinds = sorted((r.action, (r.after or {}).get("dataset", "")) for r in new)
    assert kinds == [("import", "listings"), ("import", "staffing"), ("update", "")]
    listing = next(r for r in new if (r.after or {}).get("dataset") == "listings")
    assert (listing.after["created"], listing.after["updated"], listing.after["deleted"]) == (
        0, 1, 1,
    )  # fmt: skip


def test_it_creates_one_user_per_role_with_the_printed_passwords(db):
    ctx, _ = _build()
    expected = {
        "admin": "admin",
        "analys": "analyst",
        "chef.norrby": "unit_manager",
        "chef.privat": "unit_manager",
        "revisor": "auditor",
        "politiker": "viewer",
    }
    users = {u.username: u for u in ctx.users}
    assert {name: u.role for name, u in users.items()} == expected
    for name, spec in users.items():
        user = get_user_model().objects.get(username=name)
        assert user.check_password(spec.password)
        assert spec.password.startswith("demo-")
        assert len(spec.password) >= 12
        assert user.membership.role == expected[name]
        assert user.membership.region.lan_code == "99"
        assert user.is_superuser == (name == "admin")
    norrby = Membership.objects.get(user__username="chef.norrby")
    assert [u.name for u in norrby.units.all()] == ["Vårdcentralen Norrby"]
    privat = Membership.objects.get(user__username="chef.privat")
    assert sorted(u.name for u in privat.units.all()) == [
        "Vårdcentralen Din Hälsa Centrum",
        "Vårdcentralen Din Hälsa Söder",
    ]
    assert {u.provider.name for u in privat.units.all()} == {"Vårdcentralen Din Hälsa AB"}


def test_it_derives_passwords_from_the_seed():
    assert demo.demo_users(5) == demo.demo_users(5)
    assert [u.password for u in demo.demo_users(5)] != [u.password for u in demo.demo_users(6)]
    assert len({u.password for u in demo.demo_users(5)}) == 6


def test_it_refuses_to_take_over_an_account_and_writes_nothing(db):
    other = Region.objects.create(name="Region Annan", lan_code="18", org_nr="2321000164")
    user = get_user_model().objects.create_user("revisor", password="not-the-demo-password")
    Membership.objects.create(user=user, region=other, role="auditor")
    state = _state()
    with pytest.raises(demo.DemoError, match="revisor"):
        _build()
    assert _state() == state
    assert user.__class__.objects.get(pk=user.pk).check_password("not-the-demo-password")


def test_later_steps_get_the_context_and_are_timed(db):
    seen = {}

    def extra(ctx: demo.DemoContext) -> str:
        seen.update(region=ctx.region, admin=ctx.admin, units=len(ctx.registry.units))
        return "extra done"

    lines: list[str] = []
    demo.build_demo(SEED, write=lines.append, steps=[*demo.STEPS, demo.DemoStep("extra", extra)])
    assert seen["region"].lan_code == "99"
    assert seen["admin"].username == "admin"
    assert seen["units"] == 30
    assert lines[-1].split()[0] == "extra"
    assert lines[-1].endswith("extra done")
    assert " s  " in lines[-1]


def test_the_command_builds_without_serving_and_prints_the_users(db):
    out = StringIO()
    call_command("demo", "--no-serve", "--seed", str(SEED), stdout=out)
    text = out.getvalue()
    for user in demo.demo_users(SEED):
        assert user.username in text
        assert user.password in text
    assert "http://127.0.0.1:8000/" in text
    assert "Demo built in" in text
    assert Region.objects.filter(lan_code="99").exists()
    assert CareUnit.objects.count() == 30


def test_the_command_serves_after_building(db, monkeypatch):
    calls = []

    def fake_call_command(name, *args, **kwargs):
        calls.append((name, kwargs))

    monkeypatch.setattr(demo_command, "call_command", fake_call_command)
    out = StringIO()
    call_command("demo", "--seed", str(SEED), "--port", "8123", stdout=out)
    assert [c[0] for c in calls] == ["migrate", "serve"]
    assert calls[1][1] == {"host": "127.0.0.1", "port": 8123}
    assert "http://127.0.0.1:8123/" in out.getvalue()


@pytest.mark.parametrize("args", [["--seed", "-1"], ["--port", "0"]])
def test_the_command_refuses_bad_options_and_writes_nothing(db, args):
    state = _state()
    with pytest.raises(CommandError):
        call_command("demo", "--no-serve", *args, stdout=StringIO())
    assert _state() == state


def test_the_command_reports_a_taken_username_clearly(db):
    get_user_model().objects.create_user("admin", password="x")
    state = _state()
    with pytest.raises(CommandError, match="admin"):
        call_command("demo", "--no-serve", stdout=StringIO())
    assert _state() == state


def _with_a_background_step(monkeypatch) -> list[str]:
    ran: list[str] = []

    def late(ctx: demo.DemoContext) -> str:
        assert ctx.region is not None
        ran.append(ctx.region.name)
        return "late done"

    steps = [*demo.STEPS, demo.DemoStep("late", late, atomic=False, background=True)]
    monkeypatch.setattr(demo, "STEPS", steps)
    return ran


def test_it_defers_the_background_steps_to_a_job_when_asked(db, settings, monkeypatch):
    from styrkort.jobs.models import Job
    from styrkort.jobs.services import run_pending

    settings.STYRKORT_JOBS = "poller"
    ran = _with_a_background_step(monkeypatch)
    lines: list[str] = []
    ctx = demo.build_demo(SEED, write=lines.append, defer_background=True)
    assert ran == []
    assert not any(line.split()[0] == "late" for line in lines)
    job = ctx.data["background_job"]
    assert (job.kind, job.params["steps"], job.created_by.username) == (
        demo.JOB_KIND, ["late"], "analys",
    )  # fmt: skip
    assert run_pending() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    assert ran == ["Region Exempel"]
    assert any(line.startswith("late") and "late done" in line for line in job.result["lines"])


def test_it_runs_the_background_steps_at_once_without_serving(db, monkeypatch):
    from styrkort.jobs.models import Job

    ran = _with_a_background_step(monkeypatch)
    call_command("demo", "--no-serve", "--seed", str(SEED), stdout=StringIO())
    assert ran == ["Region Exempel"]
    assert not Job.objects.exists()


def test_the_command_serves_at_once_and_loads_extracts_in_the_background(db, settings, monkeypatch):
    from styrkort.jobs.models import Job

    settings.STYRKORT_JOBS = "poller"
    ran = _with_a_background_step(monkeypatch)
    monkeypatch.setattr(demo_command, "call_command", lambda name, *a, **k: None)
    out = StringIO()
    call_command("demo", "--seed", str(SEED), stdout=out)
    assert ran == []
    assert Job.objects.get().kind == demo.JOB_KIND
    assert "loading in the background" in out.getvalue()
