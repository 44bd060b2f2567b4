"""``HEALTHCODE_LIVENESS_ACTIONS``: an operator may restrict the actions that
liveness challenges are drawn from to some of the registered ones; a name
nobody registered stops the service at start."""

from __future__ import annotations

import asyncio

import pytest
from support.backends import Backend

from healthcode.api.app import _liveness_actions
from healthcode.api.settings import Settings
from healthcode.core.enrollment import EnrollmentService
from healthcode.core.enrollment.challenges import liveness_actions, restrict_actions
from healthcode.core.plugins import new_plugin_manager
from healthcode.core.storage.database import open_database

REGISTERED = ("blink", "turn_left", "turn_right", "open_mouth", "nod")


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEALTHCODE_LIVENESS_ACTIONS", raising=False)
    assert Settings.from_env().liveness_actions == ()
    monkeypatch.setenv("HEALTHCODE_LIVENESS_ACTIONS", " turn_left, turn_right,,turn_left ")
    assert Settings.from_env().liveness_actions == ("turn_left", "turn_right")


def test_restricting_keeps_the_registered_order_and_refuses_unknown_names() -> None:
    assert restrict_actions(REGISTERED, ("turn_right", "blink")) == ("blink", "turn_right")
    with pytest.raises(ValueError, match="unknown liveness actions wink"):
        restrict_actions(REGISTERED, ("wink", "blink"))
    with pytest.raises(ValueError, match="at least one"):
        restrict_actions(REGISTERED, ())


def test_the_service_refuses_to_start_with_an_unregistered_action() -> None:
    pm = new_plugin_manager(autoload=False)
    assert set(liveness_actions(pm)) == set(REGISTERED)
    assert _liveness_actions(Settings(), pm) == ()
    chosen = _liveness_actions(Settings(liveness_actions=("turn_right", "turn_left")), pm)
    assert chosen == ("turn_left", "turn_right")
    with pytest.raises(ValueError, match="HEALTHCODE_LIVENESS_ACTIONS: unknown liveness actions"):
        _liveness_actions(Settings(liveness_actions=("smile",)), pm)


def test_challenges_are_drawn_from_the_allowed_actions_only(backend: Backend) -> None:
    pm = new_plugin_manager(autoload=False)

    async def go() -> None:
        db, secrets = await open_database(backend.url, backend.secrets_file)
        try:
            service = EnrollmentService(db, secrets, pm, liveness_actions=("turn_left", "nod"))
            for _ in range(20):
                challenge = await service.issue_challenge()
                assert sorted(challenge.actions) == ["nod", "turn_left"]
            # One allowed action: challenges of one action.
            single = EnrollmentService(db, secrets, pm, liveness_actions=("blink",))
            assert (await single.issue_challenge()).actions == ("blink",)
            # Fixed actions (tests, benchmarks) are not restricted.
            fixed = await service.issue_challenge(actions=("open_mouth",))
            assert fixed.actions == ("open_mouth",)
            # Without the setting, any registered action may be drawn.
            free = EnrollmentService(db, secrets, pm)
            drawn = {a for _ in range(40) for a in (await free.issue_challenge()).actions}
            assert drawn - {"turn_left", "nod"}
        finally:
            await db.dispose()

    asyncio.run(go())
