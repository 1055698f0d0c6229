"""Shared by the grants' commands: the acting user and refusals as clear messages."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from styrkort.accounts import access
from styrkort.grants import services


def acting_user(username: str):
    """The user the command acts as (rights and history), who must have a role."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"no active user {username!r}")
    if access.get_membership(user) is None:
        raise CommandError(f"the user {username!r} has no role in any region")
    return user


def refusal(exc: Exception) -> CommandError:
    """A service's refusal as one CommandError listing every problem (exit status 1)."""
    lines = services.describe_error(exc)
    if len(lines) == 1:
        return CommandError(lines[0])
    return CommandError("\n  ".join([lines[0], *lines[1:]]))
