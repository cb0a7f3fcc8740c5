"""Seeded HTML sites for the GUI builder: forms, lists, settings, dialogs and shopping, each with a task.

`make_site(rng, kind, mobile)` returns a `Site`: its pages (relative file names -> HTML, linked with
relative URLs so they work under any prefix), the start page, a goal, the `Step`s that achieve it, a
description of every actionable element (`ElementInfo`, for instructions in several phrasings), and per
step the wrong-but-plausible elements that lead away from the task (for error-recovery samples).

Every element a task or an instruction may name carries ``data-key``; the builder finds it in the DOM.
Buttons have solid background colours from `PALETTE`, so a box can be checked against the pixels.
State that must survive navigation (toggles, the cart) lives in ``sessionStorage``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

PALETTE: dict[str, tuple[int, int, int]] = {
    "blue": (37, 99, 235), "green": (22, 163, 74), "red": (220, 38, 38), "orange": (234, 88, 12),
    "purple": (147, 51, 234), "teal": (13, 148, 136), "pink": (219, 39, 119), "brown": (146, 64, 14),
}
FONTS = ("DejaVu Sans", "Liberation Sans", "Liberation Serif", "DejaVu Serif")
KINDS = ("form", "list", "settings", "dialog", "shopping")
MOBILE_VIEWPORTS = ((360, 740), (393, 852), (412, 915))
DESKTOP_VIEWPORTS = ((1280, 800), (1024, 768), (1366, 768))

PEOPLE = ("Ada Moreno", "Ben Okafor", "Chloe Dubois", "Dmitri Ivanov", "Elena Rossi", "Farah Khan",
          "Gus Lindqvist", "Hana Sato", "Ivan Petrov", "Julia Novak", "Kofi Mensah", "Lena Fischer",
          "Marco Silva", "Nina Berg", "Omar Haddad", "Priya Nair", "Quinn Walsh", "Rosa Ortega", "Sam Tanaka",
          "Tara Quinn")
CITIES = ("Lisbon", "Nairobi", "Osaka", "Toronto", "Lyon", "Krakow", "Bergen", "Austin", "Porto", "Seville")
COUNTRIES = ("Portugal", "Kenya", "Japan", "Canada", "France", "Poland", "Norway", "Spain", "Brazil", "India")
PRODUCTS = ("Blue Jacket", "Trail Shoes", "Wool Scarf", "Desk Lamp", "Coffee Grinder", "Yoga Mat",
            "Water Bottle", "Backpack", "Headphones", "Sunglasses", "Rain Boots", "Notebook", "Tea Kettle",
            "Camping Tent")
SETTINGS = {"Connections": ("Wi-Fi", "Bluetooth", "Airplane mode", "Mobile data", "Hotspot"),
            "Display": ("Dark mode", "Auto brightness", "Night light", "Large text", "Reduce motion"),
            "Notifications": ("Sound", "Vibration", "Lock screen alerts", "Email digest", "Do not disturb")}
SUBPAGES = {"Privacy": ("Location", "Camera access", "Usage data"),
            "Battery": ("Battery saver", "Adaptive battery", "Show percentage"),
            "Storage": ("Auto cleanup", "Backup photos", "Offline maps")}
LISTS = {"Messages": ("conversation with", ("Reply", "Archive", "Mute")),
         "Contacts": ("contact card of", ("Call", "Message", "Favorite")),
         "Tasks": ("task assigned to", ("Complete", "Snooze", "Share"))}
DIALOGS = (("Cookies on this site", "We use cookies to improve your experience.",
            ("Accept all", "Only necessary")),
           ("Stay in the loop", "Get our weekly newsletter in your inbox.", ("Subscribe", "No thanks")),
           ("Update available", "A new version of the app is ready to install.", ("Install now", "Later")))
SECTIONS = ("News", "Sports", "Weather", "Travel", "Science", "Culture")


@dataclass(frozen=True)
class ElementInfo:
    """What an element is, for instructions: a noun phrase, what it does, why a user would want it."""

    name: str
    purpose: str
    intent: str
    color: str | None = None
    navigates: bool = False
    toggle: str | None = None  # a switch's setting: what it does depends on its state at the time


@dataclass(frozen=True)
class Step:
    """One action of a task: ``click`` the element `key`, or ``type`` `text` into it (already focused)."""

    key: str
    subgoal: str
    op: str = "click"
    text: str | None = None
    navigates: bool = False


@dataclass(frozen=True)
class Site:
    kind: str
    pages: dict[str, str]
    start: str
    goal: str
    steps: tuple[Step, ...]
    info: dict[str, ElementInfo]
    wrong: dict[int, tuple[str, ...]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- theme
@dataclass(frozen=True)
class Theme:
    primary: str
    accent: str
    font: str
    size: int
    radius: int
    pad: int
    dark: bool
    mobile: bool


def make_theme(rng: np.random.Generator, mobile: bool) -> Theme:
    names = list(PALETTE)
    primary, accent = (names[i] for i in rng.permutation(len(names))[:2])
    return Theme(primary, accent, FONTS[int(rng.integers(len(FONTS)))], int(rng.integers(14, 18)),
                 int(rng.choice([0, 4, 8, 12])), int(rng.integers(10, 18)), bool(rng.random() < 0.25), mobile)


def css_rgb(name: str) -> str:
    r, g, b = PALETTE[name]
    return f"rgb({r},{g},{b})"


def _css(t: Theme) -> str:
    bg, fg, muted, line, field_bg = (("#111827", "#f3f4f6", "#9ca3af", "#374151", "#1f2937") if t.dark else
                                     ("#ffffff", "#111827", "#6b7280", "#e5e7eb", "#ffffff"))
    p, r = t.pad, t.radius
    cols = 2 if t.mobile else 4
    return f"""
*{{box-sizing:border-box}} html{{scroll-behavior:auto}}
body{{margin:0;font-family:'{t.font}',sans-serif;font-size:{t.size}px;background:{bg};color:{fg};
  line-height:1.35}}
header{{display:flex;align-items:center;justify-content:space-between;padding:{p}px;
  background:{css_rgb(t.primary)};color:#fff}}
header h1{{font-size:{t.size + 4}px;margin:0}}
header nav a{{color:#fff;text-decoration:none;margin-left:{p}px}}
main{{padding:{p}px;max-width:{'100%' if t.mobile else '960px'};margin:0 auto}}
.btn{{display:inline-block;border:0;border-radius:{r}px;padding:{p // 2 + 4}px {p + 6}px;color:#fff;
  font:inherit;text-decoration:none;cursor:pointer;margin:4px 6px 4px 0}}
.field{{display:block;margin:{p}px 0}} .field span{{display:block;margin-bottom:4px;color:{muted}}}
.field input[type=text],.field textarea{{width:100%;padding:8px;border:1px solid {line};
  border-radius:{r}px;font:inherit;background:{field_bg};color:{fg}}}
.row{{display:flex;align-items:center;justify-content:space-between;padding:{p}px 0;
  border-bottom:1px solid {line}}}
.row a{{color:{fg};text-decoration:none;flex:1}}
.switch{{width:48px;height:26px;border-radius:13px;background:#9ca3af;position:relative;border:0;flex:none}}
.switch[aria-checked=true]{{background:{css_rgb(t.primary)}}}
.switch::after{{content:'';position:absolute;top:3px;left:3px;width:20px;height:20px;border-radius:50%;
  background:#fff}}
.switch[aria-checked=true]::after{{left:25px}}
.item{{display:flex;align-items:center;gap:{p}px;padding:{p}px 0;border-bottom:1px solid {line};color:{fg};
  text-decoration:none}}
.avatar{{width:40px;height:40px;border-radius:50%;flex:none}} .sub{{color:{muted};font-size:{t.size - 2}px}}
.grid{{display:grid;grid-template-columns:repeat({cols},1fr);gap:{p}px}}
.card{{border:1px solid {line};border-radius:{r}px;padding:{p // 2 + 2}px}}
.card .pic{{height:{80 if t.mobile else 110}px;border-radius:{r}px}}
.card a.title{{color:{fg};display:block;margin:6px 0}}
.price{{font-weight:bold}}
.badge{{background:#fff;color:{css_rgb(t.primary)};border-radius:10px;padding:0 7px}}
.overlay{{position:fixed;inset:0;background:rgba(0,0,0,.55);display:flex;align-items:center;
  justify-content:center}}
.dialog{{background:{bg};padding:{p + 6}px;border-radius:{r}px;width:{'88%' if t.mobile else '420px'}}}
.dialog h2{{margin-top:0}} .menu{{border:1px solid {line};border-radius:{r}px;margin-top:4px}}
.menu [role=option]{{display:block;padding:8px;cursor:pointer}} .notice{{padding:{p}px;margin:{p}px 0;
  border-left:4px solid {css_rgb(t.accent)}}} .tabs a{{margin-right:{p}px;color:{css_rgb(t.primary)}}}
"""


_STORE_JS = """
function load(k, d) { const v = sessionStorage.getItem(k); return v === null ? d : JSON.parse(v); }
function save(k, v) { sessionStorage.setItem(k, JSON.stringify(v)); }
function flip(el) { const on = el.getAttribute('aria-checked') !== 'true';
  el.setAttribute('aria-checked', on); save('sw:' + el.dataset.key, on); }
document.addEventListener('DOMContentLoaded', () => {
  for (const el of document.querySelectorAll('.switch')) {
    const v = load('sw:' + el.dataset.key, null); if (v !== null) el.setAttribute('aria-checked', v); }
  const b = document.getElementById('cart-count'); if (b) b.textContent = load('cart', []).length;
});
"""


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def page(t: Theme, title: str, body: str, *, nav: str = "", page_id: str = "") -> str:
    """A full HTML document with the theme's CSS and the shared storage script."""
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><title>{esc(title)}</title>"
            f"<style>{_css(t)}</style><script>{_STORE_JS}</script></head>"
            f"<body data-page='{esc(page_id)}'><header><h1>{esc(title)}</h1><nav>{nav}</nav></header>"
            f"<main>{body}</main></body></html>")


def button(key: str, text: str, color: str, *, href: str | None = None, onclick: str = "") -> str:
    style = f"background:{css_rgb(color)}"
    if href is not None:
        return f"<a class=btn data-key='{key}' href='{href}' style='{style}'>{esc(text)}</a>"
    return f"<button class=btn data-key='{key}' style='{style}' onclick=\"{onclick}\">{esc(text)}</button>"


def _nav(t: Theme, info: dict, links: tuple[str, ...] = ("Help", "Account")) -> tuple[str, dict[str, str]]:
    """Header links to side pages (real pages: clicking one is a plausible wrong action)."""
    parts, pages = [], {}
    for name in links:
        key = f"nav-{name.lower()}"
        parts.append(f"<a data-key='{key}' href='{name.lower()}.html'>{esc(name)}</a>")
        info[key] = ElementInfo(f"'{name}' link in the header", f"opens the {name} page",
                                f"see the {name} page", navigates=True)
        pages[f"{name.lower()}.html"] = page(t, name, f"<p>This is the {esc(name)} page.</p>",
                                             page_id=name.lower())
    return "".join(parts), pages


def _pick(rng, items, k):
    return [items[i] for i in rng.permutation(len(items))[:k]]


def _email(name: str) -> str:
    return name.lower().replace(" ", ".") + "@example.com"


# ---------------------------------------------------------------------------------------------- kinds
def _form(rng, t: Theme) -> Site:
    info: dict[str, ElementInfo] = {}
    nav, pages = _nav(t, info)
    person, city, country = _pick(rng, PEOPLE, 1)[0], _pick(rng, CITIES, 1)[0], _pick(rng, COUNTRIES, 1)[0]
    title = ["Create account", "Shipping address", "Book a table", "Contact us"][int(rng.integers(4))]
    fields = [("name", "Full name", person), ("email", "Email", _email(person)), ("city", "City", city),
              ("phone", "Phone", f"+1 555 {int(rng.integers(1000, 9999))}"),
              ("company", "Company", "Acme Ltd")]
    fields = fields[:2] + _pick(rng, fields[2:], int(rng.integers(1, 4)))
    body = []
    for fid, label, _ in fields:
        key = f"field-{fid}"
        body.append(f"<label class=field><span>{esc(label)}</span><input type=text data-key='{key}' "
                    f"placeholder='{esc(label)}'></label>")
        info[key] = ElementInfo(f"'{label}' text field", f"takes the {label.lower()}",
                                f"enter the {label.lower()}")
    opts = _pick(rng, COUNTRIES, 4)
    if country not in opts:
        opts[int(rng.integers(4))] = country
    menu = "".join(f"<span role=option data-key='opt-{i}' onclick=\"pickOpt(this)\">{esc(o)}</span>"
                   for i, o in enumerate(opts))
    body.append("<div class=field><span>Country</span><button class=btn data-key='dropdown' "
                f"style='background:{css_rgb(t.accent)}' onclick=\"toggleMenu()\">Choose country</button>"
                f"<div class=menu id=menu style='display:none'>{menu}</div></div>")
    info["dropdown"] = ElementInfo("'Choose country' drop-down", "opens the list of countries",
                                   "pick a country", t.accent)
    for i, o in enumerate(opts):
        info[f"opt-{i}"] = ElementInfo(f"'{o}' option", f"selects {o} as the country", f"choose {o}")
    body.append("<label class=field><input type=checkbox data-key='agree'> I agree to the terms</label>")
    info["agree"] = ElementInfo("'I agree to the terms' checkbox", "accepts the terms", "agree to the terms")
    body.append(button("submit", "Submit", t.primary, href="done.html"))
    info["submit"] = ElementInfo("'Submit' button", "sends the form", "send the form", t.primary,
                                 navigates=True)
    script = ("<script>function toggleMenu(){const m=document.getElementById('menu');"
              "m.style.display=m.style.display==='none'?'block':'none'}"
              "function pickOpt(o){document.querySelector('[data-key=dropdown]').textContent=o.textContent;"
              "document.getElementById('menu').style.display='none'}</script>")
    pages["index.html"] = page(t, title, "".join(body) + script, nav=nav, page_id="form")
    thanks = f"<p class=notice>Thanks, {esc(person)}! We received your form.</p>"
    pages["done.html"] = page(t, "Thank you", thanks, page_id="done")
    steps: list[Step] = []
    for fid, label, value in fields[:2] + _pick(rng, fields[2:], 1):
        steps += [Step(f"field-{fid}", f"Tap the {label} field"),
                  Step(f"field-{fid}", f"Type '{value}' as the {label.lower()}", op="type", text=value)]
    steps += [Step("dropdown", "Open the country list"),
              Step(f"opt-{opts.index(country)}", f"Choose {country}"),
              Step("agree", "Tick the terms checkbox"), Step("submit", "Submit the form", navigates=True)]
    typed = ", ".join(f"{s.subgoal.split(' as the ')[1]} {s.text}" for s in steps if s.op == "type")
    goal = f"Fill in the {title.lower()} form ({typed}, country {country}), accept the terms and submit it"
    wrong = {i: ("nav-help", "nav-account") for i, s in enumerate(steps) if s.op == "click"}
    return Site("form", pages, "index.html", goal, tuple(steps), info, wrong)


def _list(rng, t: Theme) -> Site:
    info: dict[str, ElementInfo] = {}
    nav, pages = _nav(t, info, ("Help",))
    title = list(LISTS)[int(rng.integers(len(LISTS)))]
    what, actions = LISTS[title]
    people = _pick(rng, PEOPLE, int(rng.integers(8, 15)))
    colours = list(PALETTE)
    act_colors = [t.primary, t.accent, "brown" if "brown" not in (t.primary, t.accent) else "teal"]
    items = []
    for i, person in enumerate(people):
        key = f"item-{i}"
        sub = [f"See you at {CITIES[i % len(CITIES)]}", "Thanks for the update", "Call me back",
               "Draft the report", "Lunch tomorrow?"][i % 5]
        avatar = css_rgb(colours[i % len(colours)])
        items.append(f"<a class=item data-key='{key}' href='item-{i}.html'><span class=avatar "
                     f"style='background:{avatar}'></span><span><b>{esc(person)}</b>"
                     f"<br><span class=sub>{esc(sub)}</span></span></a>")
        info[key] = ElementInfo(f"list entry for {person}", f"opens the {what} {person}",
                                f"see the {what} {person}", navigates=True)
        done = "document.getElementById('done').textContent="
        btns = "".join(button(f"act-{j}", act, act_colors[j], onclick=f"{done}'{act} done for {esc(person)}'")
                       for j, act in enumerate(actions))
        body = f"<p>The {esc(what)} {esc(person)}.</p>{btns}<p class=notice id=done>Nothing done yet</p>"
        pages[f"item-{i}.html"] = page(t, person, body, page_id=f"item-{i}")
    for j, act in enumerate(actions):
        info[f"act-{j}"] = ElementInfo(f"'{act}' button", f"does '{act.lower()}' for this entry",
                                       f"{act.lower()} it", act_colors[j])
    pages["index.html"] = page(t, title, "".join(items), nav=nav, page_id="list")
    target = int(rng.integers(len(people)))
    act = int(rng.integers(len(actions)))
    steps = (Step(f"item-{target}", f"Open the entry for {people[target]}", navigates=True),
             Step(f"act-{act}", f"Tap {actions[act]}"))
    goal = f"In {title}, open the {what} {people[target]} and tap {actions[act]}"
    others = tuple(f"item-{i}" for i in range(len(people)) if i != target)
    return Site("list", pages, "index.html", goal, steps, info, {0: others[:4] + ("nav-help",)})


def _switch_row(key: str, name: str, on: bool) -> str:
    return (f"<div class=row><span>{esc(name)}</span><button class=switch role=switch data-key='{key}' "
            f"aria-label='{esc(name)}' aria-checked='{str(on).lower()}' onclick='flip(this)'></button></div>")


def _settings(rng, t: Theme) -> Site:
    info: dict[str, ElementInfo] = {}
    nav, pages = _nav(t, info, ("Help",))
    body, state = [], {}
    for section, names in SETTINGS.items():
        body.append(f"<h3>{esc(section)}</h3>")
        for name in _pick(rng, names, 3):
            key = "sw-" + name.lower().replace(" ", "-")
            on = bool(rng.random() < 0.5)
            state[key] = (name, on)
            body.append(_switch_row(key, name, on))
            info[key] = ElementInfo(f"'{name}' switch", f"switches {name}", f"switch {name}", toggle=name)
    body.append("<h3>More</h3>")
    subs = list(SUBPAGES)
    for sub in subs:
        key = f"sub-{sub.lower()}"
        body.append(f"<div class=row><a data-key='{key}' href='{sub.lower()}.html'>{esc(sub)} &rsaquo;</a>"
                    "</div>")
        info[key] = ElementInfo(f"'{sub}' entry", f"opens the {sub} settings",
                                f"change {sub.lower()} settings", navigates=True)
        rows = []
        for name in SUBPAGES[sub]:
            skey = "sw-" + name.lower().replace(" ", "-")
            rows.append(_switch_row(skey, name, False))
            info[skey] = ElementInfo(f"'{name}' switch", f"switches {name}", f"switch {name}", toggle=name)
        pages[f"{sub.lower()}.html"] = page(t, sub, "".join(rows), page_id=sub.lower())
    pages["index.html"] = page(t, "Settings", "".join(body), nav=nav, page_id="settings")
    a, b = _pick(rng, list(state), 2)
    sub = subs[int(rng.integers(len(subs)))]
    inner = SUBPAGES[sub][int(rng.integers(3))]
    word = lambda k: "off" if state[k][1] else "on"  # noqa: E731
    steps = (Step(a, f"Turn {state[a][0]} {word(a)}"), Step(b, f"Turn {state[b][0]} {word(b)}"),
             Step(f"sub-{sub.lower()}", f"Open {sub} settings", navigates=True),
             Step("sw-" + inner.lower().replace(" ", "-"), f"Turn {inner} on"))
    goal = f"Turn {state[a][0]} {word(a)} and {state[b][0]} {word(b)}, then turn on {inner} in {sub} settings"
    others = tuple(f"sub-{s.lower()}" for s in subs if s != sub)
    return Site("settings", pages, "index.html", goal, steps, info, {2: others + ("nav-help",)})


def _dialog(rng, t: Theme) -> Site:
    info: dict[str, ElementInfo] = {}
    nav, pages = _nav(t, info)
    head, text, (yes, no) = DIALOGS[int(rng.integers(len(DIALOGS)))]
    sections = _pick(rng, SECTIONS, 4)
    tabs = "".join(f"<a data-key='tab-{i}' href='tab-{i}.html'>{esc(s)}</a>" for i, s in enumerate(sections))
    for i, s in enumerate(sections):
        info[f"tab-{i}"] = ElementInfo(f"'{s}' tab", f"opens the {s} section", f"read about {s.lower()}",
                                       navigates=True)
        more = button("read-more", "Read more", t.accent, onclick="this.textContent='Loading story'")
        pages[f"tab-{i}.html"] = page(t, s, f"<p>Latest {esc(s.lower())} stories.</p>{more}",
                                      page_id=f"tab-{i}")
    info["read-more"] = ElementInfo("'Read more' button", "loads the story", "read the story", t.accent)
    story = "".join(f"<p>{esc(s)} headline number {k + 1}.</p>" for k, s in enumerate(sections * 2))
    choice = int(rng.integers(2))
    no_color = "brown" if "brown" not in (t.primary, t.accent) else "teal"
    close = "document.getElementById('dlg').remove()"
    dialog = (f"<div class=overlay id=dlg><div class=dialog role=dialog><h2>{esc(head)}</h2>"
              f"<p>{esc(text)}</p><a data-key='learn' href='policy.html'>Learn more</a><br>"
              + button("dlg-yes", yes, t.primary, onclick=close)
              + button("dlg-no", no, no_color, onclick=close) + "</div></div>")
    info["dlg-yes"] = ElementInfo(f"'{yes}' button in the dialog", f"answers '{yes}' and closes the dialog",
                                  yes.lower(), t.primary)
    info["dlg-no"] = ElementInfo(f"'{no}' button in the dialog", f"answers '{no}' and closes the dialog",
                                 no.lower(), no_color)
    info["learn"] = ElementInfo("'Learn more' link in the dialog", "opens the policy page",
                                "read the details", navigates=True)
    pages["policy.html"] = page(t, "Policy", "<p>How we handle your data.</p>", page_id="policy")
    pages["index.html"] = page(t, "Daily Digest", f"<div class=tabs>{tabs}</div>{story}{dialog}", nav=nav,
                               page_id="home")
    sec = int(rng.integers(len(sections)))
    picked = ("dlg-yes", yes) if choice == 0 else ("dlg-no", no)
    steps = (Step(picked[0], f"Answer '{picked[1]}' in the dialog"),
             Step(f"tab-{sec}", f"Open the {sections[sec]} tab", navigates=True),
             Step("read-more", "Tap Read more"))
    goal = f"Dismiss the '{head}' dialog with '{picked[1]}', open the {sections[sec]} section and read more"
    other_tabs = tuple(f"tab-{i}" for i in range(len(sections)) if i != sec)
    return Site("dialog", pages, "index.html", goal, steps, info,
                {0: ("learn",), 1: other_tabs + ("nav-help",)})


def _shopping(rng, t: Theme) -> Site:
    info: dict[str, ElementInfo] = {}
    names = _pick(rng, PRODUCTS, int(rng.integers(6, 11)))
    colours = list(PALETTE)
    nav = ("<a data-key='cart' href='cart.html'>Cart <span class=badge id=cart-count>0</span></a>")
    info["cart"] = ElementInfo("cart link in the header", "opens the shopping cart", "see the cart",
                               navigates=True)
    cards, pages = [], {}
    for i, name in enumerate(names):
        price = f"${int(rng.integers(5, 200))}.{int(rng.integers(0, 100)):02d}"
        color = colours[(i * 3) % len(colours)]
        cards.append(f"<div class=card><div class=pic style='background:{css_rgb(color)};opacity:.35'></div>"
                     f"<a class=title data-key='title-{i}' href='product-{i}.html'>{esc(name)}</a>"
                     f"<span class=price>{price}</span><br>"
                     + button(f"add-{i}", "Add to cart", t.primary,
                              onclick=f"const c=load('cart',[]);c.push('{esc(name)}');save('cart',c);"
                                      f"document.getElementById('cart-count').textContent=c.length")
                     + "</div>")
        info[f"title-{i}"] = ElementInfo(f"title of the {name}", f"opens the {name} product page",
                                         f"look at the {name}", navigates=True)
        info[f"add-{i}"] = ElementInfo(f"'Add to cart' button for the {name}", f"adds the {name} to the cart",
                                       f"buy the {name}", t.primary)
        pages[f"product-{i}.html"] = page(t, name, f"<p>{esc(name)}, {price}. Free returns.</p>", nav=nav,
                                          page_id=f"product-{i}")
    pages["index.html"] = page(t, "Shop", f"<div class=grid>{''.join(cards)}</div>", nav=nav, page_id="shop")
    lines = ("<script>document.getElementById('lines').innerHTML=load('cart',[]).map("
             "n=>'<p>'+n+'</p>').join('')</script>")
    checkout = button("checkout", "Checkout", t.accent, href="checkout.html")
    pages["cart.html"] = page(t, "Your cart", f"<div id=lines></div>{checkout}{lines}", nav=nav,
                              page_id="cart")
    info["checkout"] = ElementInfo("'Checkout' button", "starts the checkout", "pay for the cart", t.accent,
                                   navigates=True)
    pages["checkout.html"] = page(t, "Checkout", "<p class=notice>Enter your payment details.</p>",
                                  page_id="checkout")
    k = int(rng.integers(len(names)))
    steps = (Step(f"add-{k}", f"Add the {names[k]} to the cart"),
             Step("cart", "Open the cart", navigates=True), Step("checkout", "Tap Checkout", navigates=True))
    goal = f"Add the {names[k]} to the cart, open the cart and check out"
    return Site("shopping", pages, "index.html", goal, steps, info,
                {0: tuple(f"title-{i}" for i in range(len(names)) if i != k)[:4] + (f"title-{k}",)})


_KIND_FNS = {"form": _form, "list": _list, "settings": _settings, "dialog": _dialog, "shopping": _shopping}


def make_site(rng: np.random.Generator, kind: str, mobile: bool) -> Site:
    """A seeded site of `kind` (one of `KINDS`) themed for a mobile or desktop viewport.

    >>> s = make_site(np.random.default_rng(0), "shopping", True)
    >>> s.start in s.pages and all(st.key in s.info for st in s.steps)
    True
    """
    if kind not in _KIND_FNS:
        raise ValueError(f"unknown page kind {kind!r}; known: {', '.join(KINDS)}")
    return _KIND_FNS[kind](rng, make_theme(rng, mobile))
