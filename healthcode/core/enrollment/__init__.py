"""Enrollment, face-only renewal, dependants (他人代查) and the assisted quick
check (老幼助查): the service the CLI and the API call.

Enrollment takes a document (typed number, MRZ text or a photo of the data
page), the name the person typed, an answer to a liveness challenge this
instance issued (frames), a still capture and the holder's device public key:

1. the document is parsed and validated through the document hooks; an expired
   document, a specimen and any other error are refused with their reason, and
   the typed name must agree with the name the document carries (a false
   declaration is refused as ``name_mismatch``);
2. the challenge is looked up in the database and marked used in the same
   statement that checks it is unused, so an answer counts once whatever the
   number of workers;
3. the liveness hook judges the frames; the capture must show the person of the
   frames, and must match the reference: the stored template when the document
   (or, for a renewed passport, the previous one) is enrolled already, else the
   portrait on the photographed page, else an authority's reference photo
   (``healthcode_reference_face``);
4. the subject is written (created, updated, or the new document linked to
   the existing subject; never duplicated) with masked display fields, the
   template encrypted with AES-GCM and the device key; a face that does not
   match a stored template is refused and recorded in ``enrollment_reviews``.

Every face step goes through the hooks (``healthcode_detect_faces``,
``healthcode_face_template``, ``healthcode_compare_templates``,
``healthcode_check_liveness``, ``healthcode_reference_face``), so another face
plugin can stand in for the built-in one.

Nothing stored holds a raw document number or a full name: subjects are keyed
by the HMAC of the document key, names are kept as the surname only, and log
lines carry kinds and outcomes only.

With pair keys for peer regions (``peer_keys``), enrollment also stores the
document's token for each peer (``healthcode.core.status.sharing``), the only
moment it can: a peer's shared red/yellow lists are matched against these
tokens later, without the number. A subject enrolled before a pair key was
configured gets a token for that peer when they next enroll with the document.

The package: ``values`` (requests and results), ``document`` (reading it and
the declared name), ``device_keys``, ``challenges`` (the liveness vocabulary
the face plugins register, drawing, single use), ``intake`` (image limits),
``faces`` (the face steps, through the hooks), ``store`` (subjects,
documents, dependants), ``assist`` (the quick check's limits), ``errors`` and
``service`` (``EnrollmentService``, the steps put together).
"""

from __future__ import annotations

from healthcode.core.enrollment.assist import (
    ASSIST_MAX_AGE_CHILD,
    ASSIST_MIN_AGE_ELDER,
    OperatorRateLimiter,
    age_on,
)
from healthcode.core.enrollment.challenges import (
    CHALLENGE_RETENTION,
    CHALLENGE_TTL,
    DEFAULT_CHALLENGE_LENGTH,
    MAX_NONCE_LENGTH,
    draw_challenge,
    liveness_actions,
    liveness_challenges,
)
from healthcode.core.enrollment.device_keys import normalise_device_key
from healthcode.core.enrollment.document import names_agree
from healthcode.core.enrollment.intake import (
    BASELINE_FRAMES,
    FRAME_MAX_PIXELS,
    FRAMES_PER_ACTION,
    IMAGE_REQUESTS_PER_WORKER,
    MAX_ANSWER_FRAMES,
    REQUEST_PIXEL_BUDGET,
    check_frame_count,
    frames_allowed,
)
from healthcode.core.enrollment.service import EnrollmentService
from healthcode.core.enrollment.values import (
    ASSIST_DISPLAY_SECONDS,
    PURPOSES,
    AssistResult,
    DependantView,
    EnrollmentRequest,
    EnrollmentResult,
    LivenessAnswer,
    Outcome,
    Purpose,
    RenewalResult,
    status_to_dict,
    subject_to_dict,
)

__all__ = [
    "ASSIST_DISPLAY_SECONDS",
    "ASSIST_MAX_AGE_CHILD",
    "ASSIST_MIN_AGE_ELDER",
    "BASELINE_FRAMES",
    "CHALLENGE_RETENTION",
    "CHALLENGE_TTL",
    "DEFAULT_CHALLENGE_LENGTH",
    "FRAMES_PER_ACTION",
    "FRAME_MAX_PIXELS",
    "IMAGE_REQUESTS_PER_WORKER",
    "MAX_ANSWER_FRAMES",
    "MAX_NONCE_LENGTH",
    "PURPOSES",
    "REQUEST_PIXEL_BUDGET",
    "AssistResult",
    "DependantView",
    "EnrollmentRequest",
    "EnrollmentResult",
    "EnrollmentService",
    "LivenessAnswer",
    "OperatorRateLimiter",
    "Outcome",
    "Purpose",
    "RenewalResult",
    "age_on",
    "check_frame_count",
    "draw_challenge",
    "frames_allowed",
    "liveness_actions",
    "liveness_challenges",
    "names_agree",
    "normalise_device_key",
    "status_to_dict",
    "subject_to_dict",
]
