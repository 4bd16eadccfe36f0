"""The studio's changes (POST): post edits and moves, bulk moves, drags, card edits, jobs.

Every write is one of `editing`'s store calls; the answers are the editor again (200), a
refused text (422 with the failed checks), or a conflict (409 with the current text).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..errors import LLMError, PersonaFoundryError
from ..llm.session import LLMSession
from ..store import SlotMove, SlotMoveError, StaleVersionError, update_card_json
from .context import studio_of
from .editing import (
    USER_MOVES,
    MoveRefusedError,
    PostChange,
    PostRejectedError,
    change_post,
    move_slots,
    reschedule,
)
from .generation import regenerate_post
from .pages import CARD_FIELDS, checks_fragment, editor, not_found, path_slot, persona_page
from .reading import NotFoundError, PostView

MAX_GENERATE_COUNT = 200
POST_MOVES: dict[str, SlotMove | None] = {"save": None, "approve": "approve", "skip": "skip"}


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def post_action(request: Request) -> Response:
    """Save, approve or skip one post (the text saved first when it changed)."""
    studio = studio_of(request)
    action = request.path_params["action"]
    if action not in POST_MOVES:
        return not_found(request, f"no action {action!r}")
    form = await request.form()
    post = _post_of(request)
    if isinstance(post, Response):
        return post
    text = _field(form, "text") if "text" in form else None
    change = PostChange(text=text, move=POST_MOVES[action],
                        note=_field(form, "note") if action == "skip" else None,
                        expected_version=_field(form, "version") or None)
    try:
        changed = change_post(studio.reader, post, change)
    except PostRejectedError as exc:
        return editor(request, post, 422, text=text, problems=exc.problems,
                      message="Not saved: the post fails the checks below.")
    except StaleVersionError:
        return _conflict(request, post, text)
    except (SlotMoveError, MoveRefusedError) as exc:
        return editor(request, post, 422, text=text, message=f"Not done: {exc}")
    done = {"save": "Saved.", "approve": "Approved.", "skip": "Skipped."}[action]
    return editor(request, changed, message=done)


def _post_of(request: Request) -> PostView | Response:
    """The post the request's path names, or the 404 page saying why there is none."""
    try:
        return studio_of(request).reader.post(*path_slot(request))
    except NotFoundError as exc:
        return not_found(request, str(exc))


def _conflict(request: Request, post: PostView, text: str | None) -> Response:
    """409: someone changed the post since this tab read it; show theirs, keep ours."""
    current = studio_of(request).reader.post(*path_slot(request))
    now = current.record.text if current.record else (current.slot.text or "")
    return editor(request, current, 409, text=text,
                  message="Not saved: this post was changed elsewhere since you opened it. "
                          "Its current text is shown below; save again to replace it.",
                  conflict=now)


async def check_action(request: Request) -> Response:
    """The checks of a text being typed, as a fragment (nothing is saved)."""
    form = await request.form()
    post = _post_of(request)
    if isinstance(post, Response):
        return post
    return checks_fragment(request, post, _field(form, "text"))


async def regenerate_action(request: Request) -> Response:
    """One call to the configured backend for a new post, the note as the reason."""
    studio = studio_of(request)
    form = await request.form()
    post = _post_of(request)
    if isinstance(post, Response):
        return post
    try:
        async with LLMSession.open(studio.settings, studio.layout.root) as session:
            result = await regenerate_post(session, studio.reader, post, _field(form, "note"),
                                           _field(form, "version") or None)
    except StaleVersionError:
        return _conflict(request, post, None)
    except (LLMError, PersonaFoundryError) as exc:
        return editor(request, post, 502, message=f"Regenerate failed: {exc}")
    if result.problems:
        return editor(request, result.post, 422, text=result.text, problems=result.problems,
                      message="Not saved: the new post fails the checks below.")
    return editor(request, result.post, message="Regenerated and saved.")


def _slot_refs(form: FormData) -> dict[tuple[str, str], list[str]]:
    """`persona|month|slot` values grouped by calendar."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for value in form.getlist("ids"):
        parts = str(value).split("|")
        if len(parts) == 3:
            grouped.setdefault((parts[0], parts[1]), []).append(parts[2])
    return grouped


async def bulk_action(request: Request) -> Response:
    """Approve, skip or unskip a selection of slots (across personas); JSON for scripts,
    a redirect back to the calendar for forms."""
    studio = studio_of(request)
    form = await request.form()
    move = USER_MOVES.get(_field(form, "action"))
    if move is None:
        return JSONResponse({"error": "unknown action"}, 422)
    problems: list[str] = []
    statuses: dict[str, str] = {}
    for (key, month), ids in _slot_refs(form).items():
        try:
            _, path, _ = studio.reader.calendar(key, month)
        except NotFoundError as exc:
            problems.append(str(exc))
            continue
        problems += move_slots(path, ids, move, _field(form, "note") or None)
        calendar = studio.reader.calendar(key, month)[0]
        statuses.update({f"{key}|{month}|{slot.id}": slot.status for slot in calendar.slots
                         if slot.id in ids})
    if request.headers.get("accept", "").startswith("application/json"):
        return JSONResponse({"statuses": statuses, "problems": problems})
    back = _field(form, "back") or "/calendar"
    return RedirectResponse(back if back.startswith("/") and not back.startswith("//")
                            else "/calendar", 303)


async def move_action(request: Request) -> Response:
    """A drag: a slot to another day (and time) of its month."""
    studio = studio_of(request)
    form = await request.form()
    key, month, slot_id = _field(form, "persona"), _field(form, "month"), _field(form, "slot")
    try:
        post = studio.reader.post(key, month, slot_id)
        scheduled = reschedule(post.calendar_path, slot_id, _field(form, "day"),
                               _field(form, "time") or None, studio.reader.profile(key).zone,
                               post.tweet_path)
    except NotFoundError as exc:
        return JSONResponse({"error": str(exc)}, 404)
    except (MoveRefusedError, KeyError) as exc:
        return JSONResponse({"error": str(exc)}, 409)
    return JSONResponse({"scheduled_at": scheduled})


async def card_action(request: Request) -> Response:
    """Edit a card's fields (unknown keys, ours and other tools', are kept)."""
    studio = studio_of(request)
    form = await request.form()
    try:
        persona = studio.reader.persona(request.path_params["key"])
    except NotFoundError as exc:
        return not_found(request, str(exc))
    values = {name: _field(form, name) for name in CARD_FIELDS if name in form}
    tags = [tag.strip() for tag in _field(form, "tags").split(",") if tag.strip()]

    def change(card: dict[str, Any]) -> None:
        card["data"].update(values)
        if "tags" in form:
            card["data"]["tags"] = tags

    try:
        update_card_json(persona.path, change, expected_version=_field(form, "version") or None)
    except StaleVersionError:
        return persona_page(request, "Not saved: the card changed elsewhere since you opened "
                            "it; here it is now.", 409)
    return RedirectResponse(f"/persona/{persona.key}?{urlencode({'message': 'Card saved.'})}",
                            303)


async def generate_action(request: Request) -> Response:
    """Start a `tweets` run for a persona's month; off to its progress page."""
    studio = studio_of(request)
    form = await request.form()
    try:
        persona = studio.reader.persona(_field(form, "persona"))
    except NotFoundError as exc:
        return not_found(request, str(exc))
    month = _field(form, "month")
    count = _field(form, "count")
    job = studio.jobs.generate(persona.path, persona.key, month,
                               min(int(count) if count.isdigit() else 30, MAX_GENERATE_COUNT),
                               persona.language, persona.nsfw_level)
    return RedirectResponse(f"/jobs/{job.id}?{urlencode({'month': month})}", 303)


async def retry_action(request: Request) -> Response:
    """Rerun only a card's failed stages; off to the job's progress page."""
    studio = studio_of(request)
    try:
        persona = studio.reader.persona(request.path_params["key"])
    except NotFoundError as exc:
        return not_found(request, str(exc))
    job = studio.jobs.retry(persona.path, persona.key, persona.language, persona.nsfw_level)
    return RedirectResponse(f"/jobs/{job.id}", 303)
