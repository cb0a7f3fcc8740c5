"""GUI samples from generated web pages rendered in headless Chromium: grounding, agent steps, trajectories
and InfiGUI-R1's error recovery, every screenshot taken after actions really performed in the browser.

Each sample builds a seeded site (`gui_templates`: form, list, settings, dialog or shopping, at a mobile or
desktop viewport), serves it from a loopback HTTP server and drives it with Playwright. Element boxes are
read from the DOM (`browser.observe`), in screenshot pixels. Question types (``qtypes``):

- ``ground``: click the element an instruction names; the instruction is written from one of UI-Ins'
  perspectives (appearance, function, location, intent), all four are in ``meta["instructions"]``;
- ``step``: one step of the site's task in InfiGUI-R1's agent format (goal, optional step instruction,
  earlier actions as "Step n: {json}"), the earlier actions performed for real first;
- ``trajectory``: the whole task as one multi-turn sample: after each action the next screenshot comes
  back as a ``tool`` turn; sub-goals in ``<step>`` tags;
- ``error_escape`` / ``back_on_track`` (InfiGUI-R1 error recovery): a wrong element is clicked for real;
  the first shows the screen it led to with the escape (Back) as target, the second the screen after the
  real Back, with history ``H + wrong + Back`` and the original action as target.

Targets are ``<think>..</think>`` then a ``<tool_call>`` of Qwen's ``mobile_use`` (mobile) or
``computer_use`` (desktop) function, coordinates in ORIGINAL screenshot pixels (``meta["coord_frame"]``).
Options: ``qtypes``, ``kinds``, ``platforms`` (``mobile``/``web``), ``scale`` (device pixels per CSS
pixel), ``level`` (``high``: goal only, ``low``: with the step instruction, ``mixed``).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


from mmreason.data_builders import browser
from mmreason.data_builders.common import DEFAULT_CHUNK_SIZE, SampleContext, build_dataset, phase, save_image
from mmreason.data_builders.gcot import text_turn
from mmreason.data_builders.gui_templates import DESKTOP_VIEWPORTS, KINDS, MOBILE_VIEWPORTS, ElementInfo, \
    Site, Step, make_site
from mmreason.modalities.gui import INFIGUI_STEP, INFIGUI_SYSTEM, Action, Click, Hotkey, Scroll, Swipe, \
    SystemButton, Terminate, Type, action_to_dict, mobile_use_tool, tools_block
from mmreason.modalities.gui import render_action as action_json
from mmreason.traces import render_block, render_box, render_tool_call

NAME = "gui_pages"
QTYPES = {"ground": "gui_grounding", "step": "gui_action", "trajectory": "gui_action",
          "error_escape": "gui_action", "back_on_track": "gui_action"}
PERSPECTIVES = ("appearance", "function", "location", "intent")
ROLE_WORDS = {"textbox": "text field", "searchbox": "search field", "combobox": "drop-down"}
DEFAULTS = {"qtypes": sorted(QTYPES), "kinds": list(KINDS), "platforms": ["mobile", "web"], "scale": 1,
            "level": "mixed"}


# ------------------------------------------------------------------------------------- tool schemas
def computer_use_tool(width: int, height: int) -> dict:
    """Qwen's ``computer_use`` function for desktop pages, with the screen resolution in its description."""
    actions = ("key", "hotkey", "type", "click", "double_click", "right_click", "scroll", "wait", "terminate")
    return {"type": "function", "function": {
        "name": "computer_use",
        "description": (f"Use a mouse and keyboard to interact with a computer. The screen's resolution is "
                        f"{width}x{height}. Click elements at their centre."),
        "parameters": {"type": "object", "required": ["action"], "properties": {
            "action": {"type": "string", "enum": list(actions)},
            "coordinate": {"type": "array", "description": "[x, y] in pixels from the top-left corner."},
            "keys": {"type": "array", "description": "Keys pressed together, for hotkey."},
            "text": {"type": "string", "description": "For type."},
            "direction": {"type": "string", "enum": ["up", "down"], "description": "Where the view moves."},
            "status": {"type": "string", "enum": ["success", "failure"], "description": "For terminate."},
        }}}}


def agent_system(platform: str, width: int, height: int) -> str:
    """The system prompt of an agent step: InfiGUI-R1's reasoning instructions and the action function."""
    tool = mobile_use_tool(width, height) if platform == "mobile" else computer_use_tool(width, height)
    return INFIGUI_SYSTEM + INFIGUI_STEP + tools_block([tool])


def _tool(platform: str) -> str:
    return "mobile_use" if platform == "mobile" else "computer_use"


def agent_query(goal: str, history: list[Action], subgoal: str | None) -> str:
    """InfiGUI-R1's user text: the goal, the step instruction (AndroidControl-Low) and the earlier actions.

    >>> agent_query("Open the cart", [Click((5, 7))], "Tap Cart").splitlines()[1:]
    ['Current step query: Tap Cart', 'Task progress (You have done the following operation on the current \
device): Step 1: {"action": "click", "coordinate": [5, 7]}; ']
    """
    steps = "".join(f"Step {n}: {action_json(a, tool=None)}; " for n, a in enumerate(history, 1))
    text = f"The user query: {goal}\n"
    if subgoal:
        text += f"Current step query: {subgoal}\n"
    return text + f"Task progress (You have done the following operation on the current device): {steps}"


def agent_target(platform: str, think: str | None, action: Action) -> str:
    """``<think>..</think>`` (when given) and the action as a tool call, coordinates as recorded."""
    call = render_tool_call(_tool(platform), action_to_dict(action))
    return call if think is None else render_block("think", think) + "\n" + call


# ------------------------------------------------------------------------------------------- driving
@dataclass
class Move:
    """An action performed in the browser, in screenshot pixels, with its sub-goal and target element."""

    action: Action
    subgoal: str
    key: str | None = None
    box: list | None = None  # the acted-on element's box on the screen before the action


class Driver:
    """Performs actions for real in a Playwright page; records them in screenshot pixels.

    `next_move` says what to do next for a step (a scroll while its element is not fully on screen and the
    page can still move that way, else the step's own action); `perform` does it.
    """

    def __init__(self, page, *, platform: str, width: int, height: int, scale: float):
        self.page, self.platform, self.w, self.h, self.s = page, platform, width, height, scale

    def goto(self, url: str) -> None:
        self.page.goto(url, wait_until="load")

    def _box(self, key: str) -> tuple[float, float, float, float]:
        box = browser.box_of(self.page, key)
        if box is None:
            raise RuntimeError(f"element {key!r} is not on the page {self.page.url}")
        return box

    def _scroll_move(self, down: bool, info: ElementInfo) -> Move:
        cx, word = self.w / 2 * self.s, "down" if down else "up"
        if self.platform == "mobile":  # the finger moves against the content
            y1, y2 = (0.75, 0.25) if down else (0.25, 0.75)
            act = Swipe((cx, self.h * y1 * self.s), (cx, self.h * y2 * self.s))
        else:
            act = Scroll(direction=word, coordinate=(cx, self.h / 2 * self.s))
        return Move(act, f"Scroll {word} to find the {info.name}")

    def next_move(self, step: Step, info: ElementInfo) -> Move:
        box = self._box(step.key)
        if box[1] < 0 or box[3] > self.h:
            down = box[3] > self.h
            can = self.page.evaluate("d => d ? scrollY < document.documentElement.scrollHeight - innerHeight"
                                     " - 0.5 : scrollY > 0.5", down)
            if can:
                return self._scroll_move(down, info)
        sbox = [v * self.s for v in box]
        if step.op == "type":
            return Move(Type(step.text or ""), step.subgoal, step.key, sbox)
        centre = ((box[0] + box[2]) / 2 * self.s, (box[1] + box[3]) / 2 * self.s)
        return Move(Click(centre), step.subgoal, step.key, sbox)

    def perform(self, move: Move, step: Step | None = None) -> None:
        act = move.action
        if isinstance(act, (Swipe, Scroll)):
            down = (act.direction == "down" if isinstance(act, Scroll)
                    else act.coordinate2[1] < act.coordinate[1])  # the finger moves up: the view goes down
            dy = self.h * 0.5 * (1 if down else -1)
            before = self.page.evaluate("scrollY")
            self.page.mouse.move(self.w / 2, self.h / 2)
            self.page.mouse.wheel(0, dy)
            # the wheel scrolls asynchronously: wait until the position settles where it can go
            self.page.wait_for_function(
                "([b, dy]) => { const m = document.documentElement.scrollHeight - innerHeight;"
                " return Math.abs(scrollY - Math.min(Math.max(b + dy, 0), m)) < 1; }", arg=[before, dy])
        elif isinstance(act, Type):
            self.page.keyboard.type(act.text)
        elif isinstance(act, Click):
            x, y = act.coordinate[0] / self.s, act.coordinate[1] / self.s
            if step is not None and step.navigates:
                with self.page.expect_navigation(wait_until="load"):
                    self.page.mouse.click(x, y)
            else:
                self.page.mouse.click(x, y)
        elif isinstance(act, (SystemButton, Hotkey)):
            self.page.go_back(wait_until="load")
        else:
            raise ValueError(f"the page driver cannot perform {act!r}")

    def run_step(self, step: Step, info: ElementInfo) -> list[Move]:
        """The scrolls a step needs, then its action, all performed; the moves made."""
        moves = []
        while True:
            move = self.next_move(step, info)
            self.perform(move, step)
            moves.append(move)
            if move.key is not None or len(moves) > 20:
                return moves

    def back_move(self) -> Move:
        act = SystemButton("Back") if self.platform == "mobile" else Hotkey(("alt", "left"))
        return Move(act, "Go back to the previous screen")


# ------------------------------------------------------------------------------------- instructions
def _role_word(role: str) -> str:
    return ROLE_WORDS.get(role, role)


def _region(box, w: float, h: float) -> str:
    cx, cy = (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h
    v = "top" if cy < 1 / 3 else "middle" if cy < 2 / 3 else "bottom"
    u = "left" if cx < 1 / 3 else "" if cx < 2 / 3 else "right"
    return f"{v} {u}".strip() if v != "middle" or u else "middle"


def _above(obs: browser.Observation, i: int) -> str | None:
    """Text of the nearest element right above element `i` (overlapping it horizontally)."""
    x1, y1, x2, _ = obs.elements[i]["box"]
    best, dist = None, 1e9
    for j, e in enumerate(obs.elements):
        bx1, _, bx2, by2 = e["box"]
        if j != i and e["text"] and by2 <= y1 and min(x2, bx2) > max(x1, bx1) and y1 - by2 < dist:
            best, dist = e["text"], y1 - by2
    return best


def instructions(obs: browser.Observation, i: int, info: ElementInfo) -> dict[str, str]:
    """One instruction per UI-Ins perspective for element `i` of the observation."""
    el = obs.elements[i]
    w, h = obs.image.size
    role, text = _role_word(el["role"]), el["text"][:60]
    label = f"labelled \"{text}\"" if text else ""
    look = (f"the {info.color} {role} {label}" if info.color else f"the {role} {label}").strip()
    region = _region(el["box"], w, h)
    where = f"the {info.name} at the {region} of the screen"
    above = _above(obs, i)
    below = f", just below \"{above[:40]}\"" if above else ""
    if sum(e["text"] == el["text"] for e in obs.elements) > 1:  # the look alone would be ambiguous
        look += below or f" at the {region} of the screen"
    purpose, intent = info.purpose, info.intent
    if info.toggle and obs.checked[i] is not None:
        word = "off" if obs.checked[i] else "on"
        purpose, intent = f"turns {info.toggle} {word}", f"turn {info.toggle} {word}"
    return {"appearance": f"Click {look}", "function": f"Click the {role} that {purpose}",
            "location": f"Click {where}{below}", "intent": f"I want to {intent}"}


# ---------------------------------------------------------------------------------------------- rows
def _gui(obs: browser.Observation, platform: str, *, action: Action | None, goal: str | None,
         instruction: str | None, history: list[Action]) -> dict:
    w, h = obs.image.size
    return {"platform": platform, "width": w, "height": h, "elements": list(obs.elements),
            "action": None if action is None else action_to_dict(action, integer=False), "goal": goal,
            "instruction": instruction, "history": [action_to_dict(a, integer=False) for a in history]}


def _think_for(move: Move, goal: str, info: ElementInfo | None) -> str:
    where = ""
    if move.box is not None and info is not None:
        where = f" The {info.name} is at {render_box([round(v) for v in move.box], label=info.name)}."
    what = {"type": "type the text into the focused field", "swipe": "swipe to scroll the screen",
            "scroll": "scroll the view", "system_button": "press Back", "hotkey": "go back"}
    what = what.get(move.action.action, "click it")
    return f"The goal: {goal}. <step>{move.subgoal}</step>{where} I {what}."


def _meta(site: Site, drv: Driver, obs: browser.Observation, qtype: str, **extra) -> dict:
    return {"qtype": qtype, "kind": site.kind, "viewport": [drv.w, drv.h], "scale": drv.s,
            "coord_frame": "pixel", "image_size": list(obs.image.size), "page": obs.url.rsplit("/", 1)[-1],
            "element_keys": list(obs.keys), "element_backgrounds": list(obs.backgrounds), **extra}


def run_until(site: Site, drv: Driver, upto: int) -> list[Move]:
    """Perform steps [0, upto) with the scrolls they need; the moves made."""
    return [m for step in site.steps[:upto] for m in drv.run_step(step, site.info[step.key])]


def _ground(ctx, rng, site, drv: Driver, platform, shot) -> dict | None:
    # half the time the screen is a later one of the task, for more varied screens
    if len(site.steps) > 1 and rng.random() < 0.5:
        run_until(site, drv, int(rng.integers(1, len(site.steps))))
    obs = browser.observe(drv.page)
    cands = [i for i, k in enumerate(obs.keys) if k in site.info and obs.elements[i]["clickable"]
             and obs.elements[i]["text"]]
    if not cands:
        return None
    i = cands[int(rng.integers(len(cands)))]
    info = site.info[obs.keys[i]]
    phr = instructions(obs, i, info)
    persp = PERSPECTIVES[int(rng.integers(len(PERSPECTIVES)))]
    box = obs.elements[i]["box"]
    point = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    w, h = obs.image.size
    others = [p for p in PERSPECTIVES if p != persp]
    alt = others[int(rng.integers(len(others)))]
    where = render_box([round(v) for v in box], label=info.name)
    think = (f"The instruction names the target by its {persp}: \"{phr[persp]}\". Put by its {alt}, that is "
             f"\"{phr[alt]}\". It is the {info.name}, at {where}. I click its centre.")
    path = shot(obs.image, "screen")
    return {
        "messages": [text_turn("system", agent_system(platform, w, h)),
                     {"role": "user", "content": [{"type": "text", "text": agent_query(phr[persp], [], None)},
                                                  {"type": "screenshot", "screenshot": path}]},
                     text_turn("assistant", agent_target(platform, think, Click(point)))],
        "answer": json.dumps([round(point[0]), round(point[1])]), "task": "gui_grounding",
        "boxes": [{"label": info.name, "box": box, "image": 0}],
        "points": [{"label": info.name, "point": list(point), "image": 0}],
        "gui": _gui(obs, platform, action=Click(point), goal=None, instruction=phr[persp], history=[]),
        "meta": _meta(site, drv, obs, "ground", instructions=phr, perspective=persp, target=i,
                      target_color=info.color),
    }


def agent_row(site, drv, obs, path, history, move, qtype, level, rng, think=None, **meta) -> dict:
    """One agent-step row: the screen `obs` (saved at `path`) after the actions `history`, `move` as the
    target (with `think`, else a templated thought), the step instruction shown at ``level`` low."""
    w, h = obs.image.size
    low = level == "low" or (level == "mixed" and rng.random() < 0.5)
    info = site.info.get(move.key) if move.key else None
    boxes = [] if move.box is None or isinstance(move.action, Type) else [
        {"label": move.subgoal, "box": move.box, "image": 0}]
    think = think or _think_for(move, site.goal, info)
    query = agent_query(site.goal, history, move.subgoal if low else None)
    return {
        "messages": [text_turn("system", agent_system(drv.platform, w, h)),
                     {"role": "user", "content": [{"type": "text", "text": query},
                                                  {"type": "screenshot", "screenshot": path}]},
                     text_turn("assistant", agent_target(drv.platform, think, move.action))],
        "answer": action_json(move.action, tool=None), "task": "gui_action", "boxes": boxes,
        "gui": _gui(obs, drv.platform, action=move.action, goal=site.goal, instruction=move.subgoal,
                    history=history),
        "meta": _meta(site, drv, obs, qtype, level="low" if low else "high", subgoal=move.subgoal, **meta),
    }


def _step(ctx, rng, site, drv, platform, shot) -> dict:
    s = int(rng.integers(len(site.steps)))
    history = run_until(site, drv, s)
    move = drv.next_move(site.steps[s], site.info[site.steps[s].key])
    obs = browser.observe(drv.page)
    return agent_row(site, drv, obs, shot(obs.image, "screen"), [m.action for m in history], move, "step",
                      ctx.options["level"], rng, step_index=len(history))


def _trajectory(ctx, rng, site, drv, platform, shot) -> dict:
    turns, boxes, steps, moves = [], [], [], []
    obs = first = browser.observe(drv.page)
    w, h = first.image.size
    for step in site.steps:
        info = site.info[step.key]
        while True:
            move = drv.next_move(step, info)
            k = len(moves)
            content = [{"type": "screenshot", "screenshot": shot(obs.image, f"step{k}")}]
            if k == 0:
                content.insert(0, {"type": "text", "text": agent_query(site.goal, [], None)})
            turns.append({"role": "user" if k == 0 else "tool", "content": content})
            think = _think_for(move, site.goal, info if move.key else None)
            turns.append(text_turn("assistant", agent_target(platform, think, move.action)))
            if move.box is not None and not isinstance(move.action, Type):
                boxes.append({"label": move.subgoal, "box": move.box, "image": k})
            steps.append({"subgoal": move.subgoal, "action": action_to_dict(move.action, integer=False),
                          "key": move.key, "page": obs.url.rsplit("/", 1)[-1]})
            drv.perform(move, step)
            moves.append(move)
            obs = browser.observe(drv.page)
            if move.key is not None:
                break
    k = len(moves)
    last = shot(obs.image, f"step{k}")
    turns.append({"role": "tool", "content": [{"type": "screenshot", "screenshot": last}]})
    done = f"The task is done: {site.goal[0].lower()}{site.goal[1:]}. <step>Finish the task</step>"
    turns.append(text_turn("assistant", agent_target(platform, done, Terminate("success"))))
    return {
        "messages": [text_turn("system", agent_system(platform, w, h))] + turns,
        "answer": "success", "task": "gui_action", "boxes": boxes,
        "gui": _gui(first, platform, action=moves[0].action, goal=site.goal, instruction=moves[0].subgoal,
                    history=[]),
        "meta": _meta(site, drv, first, "trajectory", steps=steps),
    }


def _recovery(ctx, rng, site, drv, platform, shot, qtype) -> dict | None:
    s = sorted(site.wrong)[int(rng.integers(len(site.wrong)))]
    step = site.steps[s]
    history = run_until(site, drv, s)
    while (move := drv.next_move(step, site.info[step.key])).key is None:  # scroll to the step's element
        drv.perform(move, step)
        history.append(move)
    obs = browser.observe(drv.page)
    on_screen = [k for k, el in zip(obs.keys, obs.elements) if el["clickable"] and k in site.info]
    wrong = [k for k in site.wrong[s] if k in on_screen] or \
        [k for k in on_screen if site.info[k].navigates and k != step.key]
    if not wrong:
        return None
    key = wrong[int(rng.integers(len(wrong)))]
    info = site.info[key]
    bad_step = Step(key, f"Open the {info.name}", navigates=info.navigates)
    err = drv.next_move(bad_step, info)
    drv.perform(err, bad_step)
    acts = [m.action for m in history] + [err.action]
    escape = drv.back_move()
    goal = site.goal[0].lower() + site.goal[1:]
    if qtype == "error_escape":
        obs = browser.observe(drv.page)
        think = (f"The last action opened the {info.name}, which does not help to {goal}. "
                 f"<step>{escape.subgoal}</step> I go back.")
        return agent_row(site, drv, obs, shot(obs.image, "screen"), acts, escape, qtype,
                          ctx.options["level"], rng, think=think, wrong_key=key, correct_subgoal=step.subgoal)
    drv.perform(escape)
    move = drv.next_move(step, site.info[step.key])
    obs = browser.observe(drv.page)
    return agent_row(site, drv, obs, shot(obs.image, "screen"), acts + [escape.action], move, qtype,
                      ctx.options["level"], rng, wrong_key=key)


def draw_site(rng, opts: dict) -> tuple[Site, str, int, int]:
    """A seeded site of one of ``opts["kinds"]`` on one of ``opts["platforms"]``: (site, platform, width,
    height), the viewport in CSS pixels."""
    kind = opts["kinds"][int(rng.integers(len(opts["kinds"])))]
    platform = opts["platforms"][int(rng.integers(len(opts["platforms"])))]
    mobile = platform == "mobile"
    sizes = MOBILE_VIEWPORTS if mobile else DESKTOP_VIEWPORTS
    width, height = sizes[int(rng.integers(len(sizes)))]
    return make_site(rng, kind, mobile), platform, width, height


@contextlib.contextmanager
def driving(ctx: SampleContext, site: Site, platform: str, width: int, height: int) -> Iterator[Driver]:
    """The site served on the loopback server under the sample's own prefix and opened at its start page in
    a fresh browser context; its pages are dropped from the server afterwards."""
    session = browser.shared()
    prefix = f"/{ctx.id}/"
    for name, html in site.pages.items():
        session.server.put(prefix + name, html)
    mobile = platform == "mobile"
    try:
        with phase("render"), session.page(width, height, scale=ctx.options["scale"], mobile=mobile) as page:
            drv = Driver(page, platform=platform, width=width, height=height, scale=float(ctx.options["scale"]))
            drv.goto(session.server.base + prefix + site.start)
            yield drv
    finally:
        session.server.drop(prefix)


def make_sample(ctx: SampleContext) -> dict | None:
    opts, rng = ctx.options, ctx.rng
    qtype = opts["qtypes"][int(rng.integers(len(opts["qtypes"])))]
    site, platform, width, height = draw_site(rng, opts)
    pending = []  # screenshots are encoded after the browser work, so "render" and "encode" time stay apart

    def shot(image, what: str) -> str:
        target = ctx.media(what, "png")
        pending.append((image, target))
        return target[1]

    with driving(ctx, site, platform, width, height) as drv:
        if qtype == "ground":
            row = _ground(ctx, rng, site, drv, platform, shot)
        elif qtype == "step":
            row = _step(ctx, rng, site, drv, platform, shot)
        elif qtype == "trajectory":
            row = _trajectory(ctx, rng, site, drv, platform, shot)
        else:
            row = _recovery(ctx, rng, site, drv, platform, shot, qtype)
    if row is None:
        ctx.count(f"skipped_{qtype}")
        return None
    for image, target in pending:
        save_image(image, target)
    return {"id": ctx.id, "source": NAME, **row}


def preview(row: dict, root: str | Path):
    """Card tile: the first screenshot with the target box, the click point and every element's outline."""
    from PIL import Image, ImageDraw

    from mmreason import schema
    from mmreason.data_builders.card import TILE, draw_boxes

    with Image.open(Path(root) / schema.images_of(row)[0]) as im:
        im = im.convert("RGB")
        d = ImageDraw.Draw(im)
        for el in (row.get("gui") or {}).get("elements") or []:
            d.rectangle(el["box"], outline=(0, 120, 255) if el["clickable"] else (180, 180, 180), width=1)
        return draw_boxes(im, row, 0, TILE)


def build(out_dir: str | Path, *, n: int, seed: int = 0, shard: tuple[int, int] = (0, 1), workers: int = 1,
          chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True, **options) -> Path:
    """GUI grounding, agent steps, trajectories and error recovery from pages rendered in headless
    Chromium."""
    opts = {**DEFAULTS, **options}
    for key, known in (("qtypes", QTYPES), ("kinds", KINDS), ("platforms", ("mobile", "web"))):
        bad = sorted(set(opts[key]) - set(known))
        if bad or not opts[key]:
            raise ValueError(f"gui_pages: unknown or empty {key} {bad}; known: {', '.join(sorted(known))}")
    if opts["level"] not in ("high", "low", "mixed") or not float(opts["scale"]) > 0:
        raise ValueError("gui_pages: level must be high, low or mixed, and scale > 0")
    try:
        return build_dataset(out_dir, name=NAME, make_sample=make_sample, n=n, seed=seed, shard=shard,
                             options=opts, workers=workers, chunk_size=chunk_size, progress=progress,
                             preview=preview)
    finally:
        browser.close_shared()
