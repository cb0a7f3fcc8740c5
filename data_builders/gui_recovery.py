"""InfiGUI-R1's error-recovery data mined from a model's own mistakes (arXiv 2504.14239, §3.2.3): a checkpoint
is run on real agent steps, the steps it gets wrong are kept, and one of its wrong actions is performed for
real in the browser to write the recovery rows.

Each sample drives a seeded `gui_pages` site in headless Chromium up to a random step of its task and asks
the checkpoint (``model``) for the next action with InfiGUI-R1's prompt (`modalities.gui.infigui_messages`:
goal, the step instruction at level ``low``, the earlier actions in the model's frame), ``samples`` times at
``temperature``. Each answer's action (`modalities.gui.parse_action`, moved from the family's frame to
screenshot pixels) is scored by InfiGUI-R1's AndroidControl matcher (`modalities.gui.match_action`): type and
parameters, a click inside the target element enlarged 1.2x or near its centre. The paper keeps the
"prone-to-error" steps, success rate strictly between 0 and 1 (``keep=prone``); ``keep=wrong`` also keeps the
steps the model never gets right (what a weak model gives). One of the wrong actions is then done on the
page, and the sample is one of

- ``error_escape``: the screen the wrong action led to, history ``H + wrong``, target the escape (Back);
  only when the wrong action left the page (a click on a link); otherwise the sample is a back_on_track;
- ``back_on_track``: after the real Back when the wrong action left the page (history ``H + wrong + Back``),
  else the screen as the wrong action left it (history ``H + wrong``); the target is the step's correct
  action on that screen (a fresh tap on a text field whose focus the wrong action took away).

The paper's N and temperature are not given (methods notes, InfiGUI-R1 §c); ``samples=8`` at 1.0 are ours.
Wrong actions that a page cannot take (terminate, open, a key or a button other than Back), a click
outside the screen, text typed into a field, and a click on the step's own element (it did the step) are
not used. Counters in the card: ``steps_asked``, ``answers``, ``answers_right``, ``answers_no_action`` and a
``skipped_*`` per reason. ``prefill`` starts every answer with fixed text (the rollout's forced decoding), a
warm start for a checkpoint that does not yet write an action; the text after it is the model's own.
``stop`` lists the strings that end an answer (default: the tool-call syntax's, ``</tool_call>``); ``["}"]``
ends a bare action object (``{"action": ...}``, which has no nested braces) at its closing brace.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from mmreason.data_builders import browser
from mmreason.data_builders.common import DEFAULT_CHUNK_SIZE, SampleContext, build_dataset, merge_options, \
    phase, save_image
from mmreason.data_builders.gui_pages import Driver, Move, agent_row, draw_site, driving, run_until
from mmreason.data_builders.gui_templates import KINDS, Step
from mmreason.data_builders.sharding import sample_rng
from mmreason.geometry import ImageFrame
from mmreason.modalities.gui import INFIGUI_MAX_PIXELS, Action, Click, DoubleClick, Hotkey, LongPress, \
    RightClick, Scroll, Swipe, SystemButton, Type, Wait, action_from_model, action_to_dict, infigui_messages, \
    match_action, parse_action, swipe_direction

NAME = "gui_recovery"
QTYPES = ("error_escape", "back_on_track")
KEEP = ("prone", "wrong")
DEFAULTS = {"model": None, "samples": 8, "temperature": 1.0, "max_new_tokens": 256, "max_pixels": INFIGUI_MAX_PIXELS,
            "keep": "prone", "prefill": "", "stop": None, "qtypes": list(QTYPES), "kinds": list(KINDS),
            "platforms": ["mobile", "web"], "scale": 1, "level": "mixed", "device": "cpu"}
_POINTED = (Click, LongPress, DoubleClick, RightClick)

_MODELS: dict[tuple[str, str], tuple[Any, Any, str]] = {}


def _policy(path: str, device: str) -> tuple[Any, Any, str]:
    """The checkpoint, its processor and family, loaded once per process."""
    if (path, device) not in _MODELS:
        from mmreason.models.loading import detect_family, load

        model, processor = load(path)
        _MODELS[path, device] = (model.to(device).eval(), processor, detect_family(path))
    return _MODELS[path, device]


# ------------------------------------------------------------------------------------------- asking
def keep_step(right: int, total: int, keep: str) -> bool:
    """Whether a step whose answers were right `right` times of `total` is mined.

    >>> keep_step(2, 8, "prone"), keep_step(0, 8, "prone"), keep_step(0, 8, "wrong"), keep_step(8, 8, "wrong")
    (True, False, True, False)
    """
    return right < total and (right > 0 or keep == "wrong")


def ask(ctx: SampleContext, image, goal: str, subgoal: str | None, history: list[Action]) -> tuple[list, str]:
    """``samples`` answers of the checkpoint on this screen: [(completion, action in pixels or None)] and the
    family."""
    from mmreason.rollout import RolloutConfig, rollout

    opts = ctx.options
    model, processor, family = _policy(opts["model"], opts["device"])
    fd, path = tempfile.mkstemp(suffix=".png")
    os.close(fd)
    try:
        image.save(path, format="PNG")
        w, h = image.size
        messages = infigui_messages(goal, path, family=family, size=(w, h), max_pixels=int(opts["max_pixels"]),
                                    step_instruction=subgoal, history=history)
        seed = int(sample_rng(ctx.seed, ctx.index, 1).integers(2**31 - 1))
        # the prefill's tokens count as generated: the budget grows by them, so the model still has its own
        budget = int(opts["max_new_tokens"]) + len(processor.tokenizer(opts["prefill"], add_special_tokens=False).input_ids)
        stops = None if opts["stop"] is None else tuple(opts["stop"])
        config = RolloutConfig(max_turns=1, max_new_tokens=budget, max_completion_tokens=budget, do_sample=True,
                               temperature=float(opts["temperature"]), seed=seed, stop_strings=stops)
        with phase("model"):
            trajs = rollout(model, processor, [{"id": ctx.id, "messages": messages}], family, config=config,
                            group_size=int(opts["samples"]), forced={0: opts["prefill"]} if opts["prefill"] else None)
    finally:
        os.unlink(path)
    frame = ImageFrame.for_family(w, h, family, max_pixels=int(opts["max_pixels"]))
    answers = []
    for t in trajs:
        action = parse_action(t.completion).action
        answers.append((t.completion, None if action is None else action_from_model(action, family, frame)))
    return answers, family


def is_right(action: Action | None, move: Move, size: tuple[int, int]) -> bool:
    """InfiGUI-R1's AndroidControl matcher against the step's move: type and parameters."""
    boxes = [move.box] if move.box is not None else []
    return match_action(action, move.action, candidates=boxes, screen=size)[1]


# ------------------------------------------------------------------------------------------ acting
def _inside(point, size: tuple[int, int]) -> bool:
    return 0 <= point[0] < size[0] and 0 <= point[1] < size[1]


def unusable(action: Action, move: Move, drv: Driver, size: tuple[int, int]) -> str | None:
    """Why the page cannot take `action` as a recoverable wrong action (None: it can)."""
    if isinstance(action, _POINTED):
        if not _inside(action.coordinate, size):
            return "offscreen"
        box = move.box
        if box is not None and box[0] <= action.coordinate[0] <= box[2] and box[1] <= action.coordinate[1] <= box[3]:
            return "hit_target"  # on the step's own element: the step is done, nothing to recover from
        return None
    if isinstance(action, Type):
        focused = drv.page.evaluate("() => ['INPUT', 'TEXTAREA'].includes(document.activeElement.tagName)")
        return "type_into_field" if focused else None  # text typed into a field: no action takes it back
    if isinstance(action, (Swipe, Scroll)):
        return None if swipe_direction(action) in ("up", "down") else "sideways"
    if isinstance(action, SystemButton):
        return None if action.button == "Back" else "button"
    if isinstance(action, Hotkey):
        return None if tuple(k.lower() for k in action.keys) == ("alt", "left") else "hotkey"
    return None if isinstance(action, Wait) else "unperformable"


def perform(drv: Driver, action: Action) -> None:
    """Do a model's action on the page, screenshot pixels as the model's (after `action_from_model`)."""
    page = drv.page
    if isinstance(action, _POINTED):
        x, y = action.coordinate[0] / drv.s, action.coordinate[1] / drv.s
        page.mouse.click(x, y, button="right" if isinstance(action, RightClick) else "left",
                         click_count=2 if isinstance(action, DoubleClick) else 1,
                         delay=600 if isinstance(action, LongPress) else 0)
        page.wait_for_timeout(150)  # a link starts its navigation after the click returns
        page.wait_for_load_state("load")
    elif isinstance(action, (Swipe, Scroll)):
        view = swipe_direction(action)
        if isinstance(action, Swipe):  # a swipe names where the finger goes: the view moves the other way
            view = {"up": "down", "down": "up"}[view]
        drv.perform(Move(Scroll(direction=view), "scroll"))
    elif isinstance(action, Type):
        page.keyboard.type(action.text)
    elif isinstance(action, (SystemButton, Hotkey)):
        page.go_back(wait_until="load")


def correct_move(drv: Driver, site, s: int) -> Move:
    """The step's correct move on the screen as it is now; a type step whose field lost the focus starts
    with a tap on the field again."""
    step = site.steps[s]
    info = site.info[step.key]
    if step.op == "type":
        focused = drv.page.evaluate("() => document.activeElement && document.activeElement.dataset.key || null")
        if focused != step.key:
            step = Step(step.key, f"Tap the {info.name} again")
    return drv.next_move(step, info)


# -------------------------------------------------------------------------------------------- rows
def _describe(action: Action) -> str:
    from mmreason.modalities.gui import render_action

    return render_action(action, tool=None)


def _mine(ctx: SampleContext, rng, site, drv: Driver, qtype: str, shot) -> dict | None:
    opts = ctx.options
    s = int(rng.integers(len(site.steps)))
    level = opts["level"] if opts["level"] != "mixed" else ("low" if rng.random() < 0.5 else "high")
    history = run_until(site, drv, s)
    move = drv.next_move(site.steps[s], site.info[site.steps[s].key])
    obs = browser.observe(drv.page)
    size = obs.image.size
    acts = [m.action for m in history]
    answers, _ = ask(ctx, obs.image, site.goal, move.subgoal if level == "low" else None, acts)
    ctx.count("steps_asked")
    ctx.count("answers", len(answers))
    right = [is_right(a, move, size) for _, a in answers]
    ctx.count("answers_right", sum(right))
    ctx.count("answers_no_action", sum(a is None for _, a in answers))
    if not keep_step(sum(right), len(answers), opts["keep"]):
        ctx.count("skipped_always_right" if all(right) else "skipped_never_right")
        return None
    usable, why = [], []
    for (text, action), ok in zip(answers, right):
        if ok or action is None:
            continue
        reason = unusable(action, move, drv, size)
        (usable.append((text, action)) if reason is None else why.append(reason))
    if not usable:
        ctx.count("skipped_no_usable_wrong_action")
        for reason in set(why):
            ctx.count(f"wrong_{reason}")
        return None
    text, wrong = usable[int(rng.integers(len(usable)))]
    url = drv.page.url
    perform(drv, wrong)
    left = drv.page.url != url
    mined = {"model": opts["model"], "samples": len(answers), "success_rate": sum(right) / len(answers),
             "wrong_action": action_to_dict(wrong, integer=False), "wrong_completion": text, "left_page": left,
             "step_index": len(history)}
    goal = site.goal[0].lower() + site.goal[1:]
    if qtype == "error_escape" and left:
        escape = drv.back_move()
        after = browser.observe(drv.page)
        think = (f"The last action, {_describe(wrong)}, left the page the task is on; it does not help to {goal}. "
                 f"<step>{escape.subgoal}</step> I go back.")
        return agent_row(site, drv, after, shot(after.image, "screen"), acts + [wrong], escape, qtype, level, rng,
                         think=think, mined=mined, correct_subgoal=move.subgoal)
    if qtype == "error_escape":
        ctx.count("escape_not_needed")  # the wrong action stayed on the page: the row is a back_on_track
    shown = acts + [wrong]
    if left:
        escape = drv.back_move()
        drv.perform(escape)
        shown.append(escape.action)
    try:
        target = correct_move(drv, site, s)
    except RuntimeError:  # the wrong action hid the step's element (e.g. closed its dialog)
        ctx.count("skipped_unrecoverable")
        return None
    after = browser.observe(drv.page)
    info = site.info.get(target.key) if target.key else None
    where = f" The {info.name} is where I act next." if info else ""
    think = (f"The last action, {_describe(wrong)}, did not do the step. <step>{target.subgoal}</step>{where} "
             f"I do that now.")
    return agent_row(site, drv, after, shot(after.image, "screen"), shown, target, "back_on_track", level, rng,
                     think=think, mined=mined)


def make_sample(ctx: SampleContext) -> dict | None:
    opts, rng = ctx.options, ctx.rng
    qtype = opts["qtypes"][int(rng.integers(len(opts["qtypes"])))]
    site, platform, width, height = draw_site(rng, opts)
    pending = []

    def shot(image, what: str) -> str:
        target = ctx.media(what, "png")
        pending.append((image, target))
        return target[1]

    with driving(ctx, site, platform, width, height) as drv:
        row = _mine(ctx, rng, site, drv, qtype, shot)
    if row is None:
        return None
    ctx.count(row["meta"]["qtype"])
    for image, target in pending:
        save_image(image, target)
    return {"id": ctx.id, "source": NAME, **row}


def build(out_dir: str | Path, *, n: int, seed: int = 0, shard: tuple[int, int] = (0, 1), workers: int = 1,
          chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True, **options) -> Path:
    """InfiGUI-R1 error-recovery rows from the steps the checkpoint ``model`` itself gets wrong."""
    opts = merge_options(NAME, DEFAULTS, options)
    if not opts["model"]:
        raise ValueError(f"{NAME}: give the checkpoint whose mistakes are mined with --set model=DIR")
    for key, known in (("qtypes", QTYPES), ("kinds", KINDS), ("platforms", ("mobile", "web"))):
        bad = sorted(set(opts[key]) - set(known))
        if bad or not opts[key]:
            raise ValueError(f"{NAME}: unknown or empty {key} {bad}; known: {', '.join(sorted(known))}")
    if opts["stop"] is not None and (not isinstance(opts["stop"], list) or not all(isinstance(x, str) and x
                                                                              for x in opts["stop"])):
        raise ValueError(f"{NAME}: stop is a list of non-empty strings, got {opts['stop']!r}")
    if opts["keep"] not in KEEP:
        raise ValueError(f"{NAME}: keep must be one of {', '.join(KEEP)}, got {opts['keep']!r}")
    if opts["level"] not in ("high", "low", "mixed") or not float(opts["scale"]) > 0:
        raise ValueError(f"{NAME}: level must be high, low or mixed, and scale > 0")
    if int(opts["samples"]) < 1 or not float(opts["temperature"]) > 0 or int(opts["max_new_tokens"]) < 1:
        raise ValueError(f"{NAME}: need samples >= 1, temperature > 0 and max_new_tokens >= 1")
    from mmreason.models.loading import resolve_checkpoint

    opts["model"] = str(resolve_checkpoint(opts["model"]).absolute())
    try:
        return build_dataset(out_dir, name=NAME, make_sample=make_sample, n=n, seed=seed, shard=shard,
                             options=opts, workers=workers, chunk_size=chunk_size, progress=progress)
    finally:
        browser.close_shared()
