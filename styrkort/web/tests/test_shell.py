import pytest
from django.urls import reverse


def test_it_shows_the_login_page_in_swedish_by_default(client, db):
    r = client.get(reverse("login"))
    assert r.status_code == 200
    assert 'lang="sv"' in r.content.decode()


def test_it_redirects_anonymous_users_to_login(client, db):
    r = client.get(reverse("web:home"))
    assert r.status_code == 302
    assert reverse("login") in r["Location"]


def test_it_sends_a_content_security_policy(client, db):
    r = client.get(reverse("login"))
    assert "default-src 'self'" in r["Content-Security-Policy"]


@pytest.mark.parametrize("role", ["admin", "analyst", "manager", "auditor", "viewer"])
def test_it_shows_each_role_its_menu(client_for, role):
    from styrkort.accounts.models import Membership
    from styrkort.web.context import menu_for

    m = Membership.objects.get(user__username=role)
    labels = [str(i["label"]) for i in menu_for(m.user)]
    if role == "analyst":
        assert "Extracts" in labels or "Besöksdata" in labels
    else:
        assert "Extracts" not in labels
        assert "Besöksdata" not in labels


def test_it_ships_with_swedish_as_the_default_language():
    import styrkort.settings as shipped

    assert shipped.LANGUAGE_CODE == "sv"


def test_it_speaks_swedish_even_when_the_browser_asks_for_english(client, db, settings):
    settings.LANGUAGE_CODE = "sv"
    r = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    page = r.content.decode()
    assert 'lang="sv"' in page
    assert "Logga in" in page


def test_it_switches_to_english_and_back(client, db, settings):
    settings.LANGUAGE_CODE = "sv"
    r = client.post(reverse("set_language"), {"language": "en", "next": "/login/"})
    assert r.status_code == 302
    assert 'lang="en"' in client.get(reverse("login")).content.decode()
    client.post(reverse("set_language"), {"language": "sv", "next": "/login/"})
    assert 'lang="sv"' in client.get(reverse("login")).content.decode()


def test_it_locks_login_after_repeated_failures(client, users):
    for _ in range(5):
        client.post(reverse("login"), {"username": "analyst", "password": "wrong"})
    r = client.post(
        reverse("login"), {"username": "analyst", "password": "correct-horse-battery-staple"}
    )
    assert r.status_code == 429
    assert "_auth_user_id" not in client.session


def test_it_marks_cookies_secure_outside_debug():
    from django.conf import settings

    assert settings.SESSION_COOKIE_SECURE
    assert settings.CSRF_COOKIE_SECURE
    assert settings.SESSION_COOKIE_HTTPONLY


def test_it_explains_a_refusal_in_the_page_shell(client_for, users, unit_a, settings):
    settings.DEBUG = False
    r = client_for("viewer").get(f"/organisation/units/{unit_a.pk}/staffing/")
    assert r.status_code == 403
    page = r.content.decode()
    assert "Not allowed" in page
    assert "Nothing was changed" in page
    assert 'class="main-nav"' in page


def test_it_explains_a_missing_page_in_the_page_shell(client_for, users, other_unit):
    r = client_for("viewer").get(f"/organisation/units/{other_unit.pk}/")
    assert r.status_code == 404
    assert "not in your region" in r.content.decode()
