"""The liveness actions this plugin's judge recognises: the one list of them.

Registered with core through ``healthcode_liveness_actions``; core draws every
challenge's actions from the registered ones. Kept apart from ``liveness`` so
that registering them imports no numpy.
"""

from __future__ import annotations

from healthcode.core.models import LivenessAction

LIVENESS_ACTIONS: tuple[LivenessAction, ...] = (
    LivenessAction("blink", "Blink", "眨眼"),
    LivenessAction("turn_left", "Turn your head to your left", "向左转头"),
    LivenessAction("turn_right", "Turn your head to your right", "向右转头"),
    LivenessAction("open_mouth", "Open your mouth", "张嘴"),
    LivenessAction("nod", "Nod", "点头"),
)
ACTIONS: tuple[str, ...] = tuple(action.name for action in LIVENESS_ACTIONS)
"""The action names, in the order above."""
