"""The organisation API: filters, access (401/403/404), token and session authentication."""

import json
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from styrkort.accounts.models import ApiToken
from styrkort.history.models import ChangeRecord
from styrkort.organisation import services
from styrkort.organisation.models import CareUnit, Staffing
from styrkort.organisation.tests.sample import add_listings, add_staffing

BASE = "/api/organisation"


def _state():
    return (
        list(CareUnit.objects.order_by("pk").values()),
        list(Staffing.objects.order_by("pk").values()),
        ChangeRecord.objects.count(),
    )


@pytest.fixture
def data(users, unit_a, unit_b, unit_c):
    add_listings(unit_a)
    add_listings(unit_b, months=("2025-01",), base=300)
    add_staffing(unit_a, "2025Q1", psykolog="1.50", kurator="0.50", lakare="2")
    add_staffing(unit_b, "2025Q1", lakare="3")
    return users


def _json(client, method, url, body=None, **headers):
    kwargs = {"content_type": "application/json", **headers}
    if body is not None:
        kwargs["data"] = json.dumps(body)
    return getattr(client, method)(url, **kwargs)


# --- reads ---------------------------------------------------------------------------------


def test_it_gives_only_the_users_region(client_for, data, region):
    r = client_for("viewer").get(f"{BASE}/regions")
    assert r.status_code == 200
    assert r.json() == [{"id": region.pk, "name": "Region Exempel", "lan_code": "99", "org_nr": ""}]


@pytest.mark.parametrize("persona", [None, "nobody"])
def test_it_refuses_the_api_without_a_role(client, client_for, data, persona):
    c = client if persona is None else client_for(persona)
    for path in ("/regions", "/providers", "/units", "/listings", "/staffing"):
        assert c.get(BASE + path).status_code == 401


def test_it_lists_providers_with_unit_counts(client_for, data, provider_region):
    rows = {p["name"]: p for p in client_for("manager").get(f"{BASE}/providers").json()}
    assert rows[provider_region.name]["units"] == 2
    assert rows[provider_region.name]["active_units"] == 1
    assert rows[provider_region.name]["kind"] == "region"


def test_it_filters_units_like_the_page(client_for, data, unit_a, unit_b, unit_c, provider_private):
    c = client_for("viewer")

    def hsa(**params):
        r = c.get(f"{BASE}/units", params)
        assert r.status_code == 200, r.content
        return [u["hsa_id"] for u in r.json()["items"]]

    assert hsa(q="Björkby") == [unit_b.hsa_id]
    assert hsa(q="a001") == [unit_a.hsa_id]
    assert hsa(provider=provider_private.pk) == [unit_b.hsa_id]
    assert hsa(kind="region") == [unit_a.hsa_id, unit_c.hsa_id]
    assert hsa(municipality="Bjurholm") == [unit_b.hsa_id]
    assert hsa(active="no") == [unit_c.hsa_id]
    assert hsa(sort="-listed") == [unit_b.hsa_id, unit_a.hsa_id, unit_c.hsa_id]
    r = c.get(f"{BASE}/units", {"limit": 1, "offset": 1, "sort": "name"}).json()
    assert r["count"] == 3
    assert len(r["items"]) == 1
    assert c.get(f"{BASE}/units", {"active": "maybe"}).status_code == 422


def test_it_gives_a_unit_by_id_or_hsa_id(client_for, data, unit_a):
    c = client_for("viewer")
    by_id = c.get(f"{BASE}/units/{unit_a.pk}").json()
    by_hsa = c.get(f"{BASE}/units/{unit_a.hsa_id}").json()
    assert by_id == by_hsa
    assert by_id["listed"] == 162
    assert by_id["listed_month"] == "2025-01"
    assert by_id["kind"] == "region"
    assert by_id["active"] is True
    assert c.get(f"{BASE}/units/nonsense").status_code == 404
    assert c.get(f"{BASE}/units/999999").status_code == 404


def test_it_hides_other_regions_units(client_for, data, unit_a, other_unit):
    assert client_for("analyst").get(f"{BASE}/units/{other_unit.pk}").status_code == 404
    assert client_for("outsider").get(f"{BASE}/units/{unit_a.hsa_id}").status_code == 404
    assert client_for("outsider").get(f"{BASE}/units/{unit_a.pk}/listings").status_code == 404
    items = client_for("outsider").get(f"{BASE}/units").json()["items"]
    assert [u["hsa_id"] for u in items] == [other_unit.hsa_id]


def test_it_filters_a_units_listings(client_for, data, unit_a):
    c = client_for("viewer")
    rows = c.get(f"{BASE}/units/{unit_a.pk}/listings").json()
    assert len(rows) == 9
    rows = c.get(
        f"{BASE}/units/{unit_a.pk}/listings",
        {"from_month": "2024-12", "to_month": "2025-01", "sex": "K", "age_band": "20-24"},
    ).json()
    assert rows == [
        {"month": "2024-12", "sex": "K", "age_band": "20-24", "listed": 101},
        {"month": "2025-01", "sex": "K", "age_band": "20-24", "listed": 102},
    ]
    url = f"{BASE}/units/{unit_a.pk}/listings"
    assert c.get(url, {"from_month": "2024-13"}).status_code == 422
    assert c.get(url, {"sex": "X"}).status_code == 422
    assert c.get(url, {"age_band": "20-30"}).status_code == 422


def test_it_sums_the_regions_listings_by_month(client_for, data):
    rows = client_for("viewer").get(f"{BASE}/listings").json()
    assert rows[-1] == {"month": "2025-01", "K": 422, "M": 200, "T": 622}
    rows = client_for("viewer").get(f"{BASE}/listings", {"kind": "private"}).json()
    assert rows == [{"month": "2025-01", "K": 310, "M": 150, "T": 460}]


def test_it_gives_staffing(client_for, data, unit_a):
    c = client_for("viewer")
    rows = c.get(f"{BASE}/units/{unit_a.hsa_id}/staffing", {"period": "2025Q1"}).json()
    assert {r["profession"]: Decimal(r["fte"]) for r in rows} == {
        "lakare": Decimal("2"),
        "psykolog": Decimal("1.5"),
        "kurator": Decimal("0.5"),
    }
    assert c.get(f"{BASE}/units/{unit_a.pk}/staffing", {"period": "spring"}).status_code == 422
    region = c.get(f"{BASE}/staffing", {"profession": "lakare"}).json()
    assert region["count"] == 2
    assert c.get(f"{BASE}/staffing", {"profession": "wizard"}).status_code == 422
    psych = {r["hsa_id"]: r for r in c.get(f"{BASE}/psychosocial").json()}
    assert psych[unit_a.hsa_id]["period"] == "2025Q1"
    assert Decimal(psych[unit_a.hsa_id]["per_10000"]) == Decimal("123.46")


def test_it_gives_a_units_history_to_those_who_may_read_it(client_for, data, users, unit_a):
    services.update_unit(users["analyst"], unit_a, name="Ankarsrum Nya")
    services.set_staffing(users["manager"], unit_a, "2025", "psykolog", Decimal("1"))
    url = f"{BASE}/units/{unit_a.pk}/history"
    for persona in ("analyst", "admin", "auditor", "manager"):
        r = client_for(persona).get(url)
        assert r.status_code == 200, persona
        types = sorted(c["object_type"] for c in r.json()["items"])
        assert types == ["organisation.careunit", "organisation.staffing"]
    change = next(
        c for c in client_for("auditor").get(url).json()["items"] if c["action"] == "update"
    )
    assert change["before"]["name"] == "Vårdcentralen Ankarsrum"
    assert change["after"]["name"] == "Ankarsrum Nya"
    assert client_for("viewer").get(url).status_code == 403
    assert client_for("colleague").get(url).status_code == 403
    assert client_for("outsider").get(url).status_code == 404


# --- writes --------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["analyst", "admin"])
def test_it_patches_a_unit_and_records_history(client_for, data, unit_a, provider_private, persona):
    r = _json(
        client_for(persona),
        "patch",
        f"{BASE}/units/{unit_a.hsa_id}",
        {"name": "Ankarsrum Syd", "provider_id": provider_private.pk, "closed": "2031-01-01"},
    )
    assert r.status_code == 200, r.content
    assert r.json()["name"] == "Ankarsrum Syd"
    assert r.json()["kind"] == "private"
    unit_a.refresh_from_db()
    assert unit_a.provider_id == provider_private.pk
    change = ChangeRecord.objects.get(object_type="organisation.careunit")
    assert change.before["name"] == "Vårdcentralen Ankarsrum"
    assert change.after["closed"] == "2031-01-01"
    assert change.actor.username == persona


def test_it_leaves_unmentioned_fields_alone_and_can_clear_a_date(client_for, data, unit_c):
    r = _json(client_for("analyst"), "patch", f"{BASE}/units/{unit_c.pk}", {"closed": None})
    assert r.status_code == 200
    unit_c.refresh_from_db()
    assert unit_c.closed is None
    assert unit_c.name == "Vårdcentralen Centrum"


@pytest.mark.parametrize(
    "body",
    [
        {"closed": "2000-01-01"},  # before it opened
        {"name": ""},
        {"provider_id": 999999},
    ],
)
def test_it_refuses_an_invalid_patch_and_changes_nothing(client_for, data, unit_a, body):
    before = _state()
    r = _json(client_for("analyst"), "patch", f"{BASE}/units/{unit_a.pk}", body)
    assert r.status_code == 422
    assert _state() == before


def test_it_refuses_a_provider_of_another_region(client_for, data, unit_a, other_unit):
    before = _state()
    r = _json(
        client_for("analyst"),
        "patch",
        f"{BASE}/units/{unit_a.pk}",
        {"provider_id": other_unit.provider_id},
    )
    assert r.status_code == 422
    assert _state() == before


@pytest.mark.parametrize(
    ("persona", "status"),
    [("manager", 403), ("viewer", 403), ("auditor", 403), ("outsider", 404), ("nobody", 401)],
)
def test_it_refuses_patches_and_changes_nothing(client_for, data, unit_a, persona, status):
    before = _state()
    r = _json(client_for(persona), "patch", f"{BASE}/units/{unit_a.pk}", {"name": "Hacked"})
    assert r.status_code == status
    assert _state() == before


@pytest.mark.parametrize("persona", ["manager", "analyst", "admin"])
def test_it_puts_staffing(client_for, data, unit_a, persona):
    r = _json(
        client_for(persona),
        "put",
        f"{BASE}/units/{unit_a.pk}/staffing",
        {"period": "2025Q1", "fte": {"psykolog": "2.25", "psykoterapeut": 1}},
    )
    assert r.status_code == 200, r.content
    fte = {row["profession"]: Decimal(row["fte"]) for row in r.json()}
    assert fte == {
        "lakare": Decimal("2"),
        "psykolog": Decimal("2.25"),
        "kurator": Decimal("0.5"),
        "psykoterapeut": Decimal("1"),
    }
    changes = ChangeRecord.objects.filter(object_type="organisation.staffing")
    assert sorted(c.action for c in changes) == ["create", "update"]
    assert {c.actor.username for c in changes} == {persona}
    assert changes.get(action="create").after["fte"] == "1.00"


@pytest.mark.parametrize(
    ("persona", "status"),
    [("colleague", 403), ("viewer", 403), ("auditor", 403), ("outsider", 404), ("nobody", 401)],
)
def test_it_refuses_staffing_of_other_units_and_changes_nothing(
    client_for, data, unit_a, persona, status
):
    before = _state()
    r = _json(
        client_for(persona),
        "put",
        f"{BASE}/units/{unit_a.pk}/staffing",
        {"period": "2025Q1", "fte": {"psykolog": "9"}},
    )
    assert r.status_code == status
    assert _state() == before


@pytest.mark.parametrize(
    "body",
    [
        {"period": "2025Q5", "fte": {"psykolog": "1"}},
        {"period": "2025", "fte": {"wizard": "1"}},
        # All or nothing: the valid psychologist figure is not kept either.
        {"period": "2025", "fte": {"psykolog": "1", "kurator": "-1"}},
        {"period": "2025", "fte": {"psykolog": "1.234"}},
    ],
)
def test_it_refuses_invalid_staffing_and_writes_nothing(client_for, data, unit_a, body):
    before = _state()
    r = _json(client_for("manager"), "put", f"{BASE}/units/{unit_a.pk}/staffing", body)
    assert r.status_code == 422, r.content
    assert _state() == before


# --- authentication ------------------------------------------------------------------------


def test_it_accepts_an_api_token_for_reads_and_writes(data, users, unit_a):
    _token, raw = ApiToken.issue(users["manager"], "script")
    c = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert c.get(f"{BASE}/units/{unit_a.hsa_id}", **auth).status_code == 200
    # No CSRF for a token: scripts have no session cookie to abuse.
    r = _json(
        c,
        "put",
        f"{BASE}/units/{unit_a.pk}/staffing",
        {"period": "2025", "fte": {"psykolog": "1"}},
        **auth,
    )
    assert r.status_code == 200
    change = ChangeRecord.objects.get(object_type="organisation.staffing")
    assert change.actor == users["manager"]
    assert ApiToken.objects.get(pk=_token.pk).last_used is not None


def test_it_refuses_a_revoked_or_unknown_token(data, users, unit_a):
    token, raw = ApiToken.issue(users["analyst"], "old script")
    token.revoked = timezone.now()
    token.save()
    c = Client()
    before = _state()
    for value in (raw, "sk_not-a-token"):
        auth = {"HTTP_AUTHORIZATION": f"Bearer {value}"}
        assert c.get(f"{BASE}/units", **auth).status_code == 401
        r = _json(c, "patch", f"{BASE}/units/{unit_a.pk}", {"name": "Hacked"}, **auth)
        assert r.status_code == 401
    assert _state() == before


def test_it_needs_csrf_for_session_writes(data, users, unit_a):
    c = Client(enforce_csrf_checks=True)
    c.force_login(users["analyst"])
    url = f"{BASE}/units/{unit_a.pk}"
    assert c.get(url).status_code == 200  # reads need no token
    before = _state()
    r = _json(c, "patch", url, {"name": "Without CSRF"})
    assert r.status_code == 403
    assert _state() == before
    c.get("/organisation/overview/")  # any page sets the CSRF cookie
    token = c.cookies["csrftoken"].value
    r = _json(c, "patch", url, {"name": "With CSRF"}, HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 200
    unit_a.refresh_from_db()
    assert unit_a.name == "With CSRF"
