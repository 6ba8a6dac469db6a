"""Drive the MLflow UI in a real browser: an ``mlflow server`` on a loopback port over a given
tracking store, Debian's Chromium through Playwright, and readers for what a user sees on a run
page (name, description, parameters, datasets) and in the experiment's runs table.

A plain module imported by tests (pytest does not collect it). Playwright never downloads a
browser here: it drives the system Chromium (``apt-get install -y chromium``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = os.environ.get("FOODCAST_CHROMIUM", "/usr/bin/chromium")

# Headless, offline, no state kept between launches: the browser only talks to the loopback
# server. --no-sandbox because CI runs as root, where Chromium's sandbox refuses to start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
]


# What the UI keeps in the browser's localStorage (key ``<name>_v<version>``, JSON values).
# By default a fresh profile gets the assistant panel closed: it auto-opens on a first visit
# to a loopback server and covers a third of the page. Nothing about runs is set here.
ASSISTANT_CLOSED = {
    "mlflow.assistant.panelOpen_v1": False,
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
}
# The "Model training" side of the GenAI / Model training switch, as if the user had clicked it.
MODEL_TRAINING_VIEW = {"mlflow.workflowType_v1": "machine_learning"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """End the server and the workers it forked: they share the session it was started in."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # Workers can outlive their parent for a moment; the group id is still the server's pid.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@dataclass(frozen=True)
class UIServer:
    """A running ``mlflow server``: ``url`` is its root (``http://127.0.0.1:<port>[/<prefix>]``)."""

    url: str
    port: int
    log: Path

    def run_url(self, experiment_id: str, run_id: str, tab: str | None = None) -> str:
        """The run page (``tab``: ``artifacts``, ``model-metrics``... or ``artifacts/<path>``)."""
        route = f"#/experiments/{experiment_id}/runs/{run_id}"
        return f"{self.url}/{route}" + (f"/{tab}" if tab else "")

    def experiment_url(self, experiment_id: str, tab: str | None = "runs") -> str:
        """The experiment page, by default its training runs table."""
        route = f"#/experiments/{experiment_id}"
        return f"{self.url}/{route}" + (f"/{tab}" if tab else "")


@contextmanager
def mlflow_ui(
    tracking_uri: str,
    artifact_root: str | Path,
    *,
    static_prefix: str | None = None,
    timeout: float = 90.0,
    log_dir: str | Path | None = None,
) -> Iterator[UIServer]:
    """Serve the MLflow UI over ``tracking_uri`` on a free loopback port while the block runs.

    Parameters
    ----------
    tracking_uri : str
        The backend store, e.g. ``sqlite:////tmp/x/mlflow.db``.
    artifact_root : str or Path
        Default artifact root for experiments the server would create (existing runs keep the
        artifact location recorded in the store).
    static_prefix : str, optional
        Serve the UI under this path (``/mlflow``), as behind a reverse proxy.
    timeout : float
        Seconds to wait for the server to answer.
    log_dir : str or Path, optional
        Where to keep the server's output (``mlflow-server.log``); otherwise it lives in a
        temporary directory removed with the server (its tail is in any start-up error).

    Yields
    ------
    UIServer
        Its URL; the server and its workers are stopped when the block exits.
    """
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        tracking_uri,
        "--default-artifact-root",
        str(artifact_root),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if static_prefix:
        cmd += ["--static-prefix", static_prefix]
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_RUN_ID", None)
    # No usage reports from the server or the page it serves: the test machine is offline.
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    # The UI needs no server-side jobs (GenAI evaluation, trace archival); left on, the server
    # starts a job runner and six Huey consumer pools, which on two cores doubles its start-up.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    url = f"http://127.0.0.1:{port}{static_prefix or ''}"
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="mlflow-ui-"))
        log_path = Path(log_dir) / "mlflow-server.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )
        stack.callback(_stop, proc)  # runs before the log directory goes
        deadline = time.monotonic() + timeout
        while not _answers(f"{url}/health"):
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer in {timeout:.0f}s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.25)
        yield UIServer(url=url, port=port, log=log_path)


@contextmanager
def browser_page(
    viewport: tuple[int, int] = (1600, 1000), timeout_ms: float = 30_000, local_storage: dict | None = None
) -> Iterator[Page]:
    """A page of a fresh headless Chromium (system binary, throw-away profile).

    Parameters
    ----------
    viewport : (int, int)
        Width and height in CSS pixels (wide enough for the run page's side panels).
    timeout_ms : float
        Default timeout of every Playwright wait on the page.
    local_storage : dict, optional
        UI preferences to find in localStorage on every page load; default
        :data:`ASSISTANT_CLOSED`. ``{**ASSISTANT_CLOSED, **MODEL_TRAINING_VIEW}`` is a user who
        has also clicked "Model training"; ``{}`` a first visit exactly as a new user makes it.

    Yields
    ------
    playwright.sync_api.Page
    """
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} not found: apt-get install -y chromium (or set FOODCAST_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": viewport[0], "height": viewport[1]},
            locale="en-US",
            timezone_id="UTC",
        )
        try:
            context.set_default_timeout(timeout_ms)
            prefs = ASSISTANT_CLOSED if local_storage is None else local_storage
            if prefs:
                entries = json.dumps(prefs)
                context.add_init_script(
                    f"for (const [k, v] of Object.entries({entries})) localStorage.setItem(k, JSON.stringify(v));"
                )
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()


# --- What a user reads on the pages -------------------------------------------------------


@dataclass(frozen=True, order=True)
class RunRow:
    """One row of the experiment's runs table: ``level`` 0 for a top-level run, 1 for a child
    shown nested under its parent."""

    name: str
    run_id: str
    level: int


def open_run(page: Page, ui: UIServer, experiment_id: str, run_id: str, tab: str | None = None) -> None:
    """Open a run page and wait until its name is on screen (and, on the overview, its
    parameters table).

    Parameters
    ----------
    page : playwright.sync_api.Page
    ui : UIServer
    experiment_id, run_id : str
    tab : str, optional
        ``artifacts``, ``artifacts/<path>``, ``model-metrics``...; the overview if not given.
    """
    page.goto(ui.run_url(experiment_id, run_id, tab))
    wait_for_run_page(page, overview=tab is None)


def wait_for_run_page(page: Page, overview: bool = True) -> None:
    """Wait until the run page in ``page`` shows its name (and on the overview its parameters);
    ``AssertionError`` if the UI says the run does not exist (a broken link)."""
    header = page.locator("[data-testid=runs-header]").filter(has_text=re.compile(r"\S"))
    # The UI says "Page Not Found" for an unknown run or route; the server answers a bare
    # "Not Found" page to a link that left the UI (``../runs/<id>``, ``/#/`` under a prefix).
    header.or_(page.get_by_text(re.compile("Not Found"))).first.wait_for()
    if not header.count():
        said = [line for line in page.inner_text("body").splitlines() if "not" in line.lower()]
        raise AssertionError(f"{page.url}: {' '.join(said[:2])}")
    if overview:
        _section(page, "Parameters").wait_for()


def _section(page: Page, title: str):
    """The box under the ``<h4>`` heading ``title`` (``Parameters (3)`` matches ``Parameters``)."""
    heading = page.locator("h4").filter(has_text=re.compile(rf"^{re.escape(title)}( \(\d+\))?$"))
    return heading.locator("xpath=..")


def run_name(page: Page) -> str:
    """The run name in the page header."""
    return page.locator("[data-testid=runs-header]").inner_text().strip()


def _description_cut(page: Page) -> bool:
    """Whether the description's box is capped in height and its text overflows it."""
    return page.locator("[data-testid=note-editor-preview-content]").first.evaluate("""el => {
        for (let box = el.parentElement; box; box = box.parentElement) {
            if (getComputedStyle(box).maxHeight !== 'none') return box.scrollHeight > box.clientHeight;
        }
        return false;
    }""")


def _expand_description(page: Page) -> None:
    """Click "Show more" while the description is cut. The button appears only once the page
    has measured the text, and a click that lands before the page wires it does nothing: look
    at the box itself, and click again until the text fits (the page then shows "Show less",
    or no button when the whole text fits the opened box)."""
    more, less = page.get_by_text("Show more", exact=True), page.get_by_text("Show less", exact=True)
    for _ in range(20):
        if less.is_visible() or not _description_cut(page):
            return
        if more.is_visible():
            more.click()
        page.wait_for_timeout(500)
    raise AssertionError("the run description stays cut after clicking Show more")


def read_description(page: Page) -> str:
    """The run description as the page renders it (text, expanded); ``""`` when there is none."""
    content = page.locator("[data-testid=note-editor-preview-content]")
    if not content.count():
        return ""
    _expand_description(page)
    return content.first.inner_text().strip()


def description_links(page: Page) -> list[tuple[str, str]]:
    """``(text, href)`` of every link in the rendered description, ``href`` as written."""
    content = page.locator("[data-testid=note-editor-preview-content]")
    if not content.count():
        return []
    _expand_description(page)
    return content.first.locator("a").evaluate_all(
        "els => els.map(a => [a.textContent.trim(), a.getAttribute('href')])"
    )


def description_link(page: Page, text: str):
    """The link named ``text`` in the run description, made clickable: a long description is
    shown cut to a few lines under a fade until "Show more" is clicked, as a user would."""
    _expand_description(page)
    links = page.locator("[data-testid=note-editor-preview-content] a")
    return links.filter(has_text=re.compile(rf"^\s*{re.escape(text)}\s*$")).first


def read_params(page: Page) -> dict[str, str]:
    """The run's parameters table, ``{name: value}`` as displayed."""
    rows = (
        _section(page, "Parameters")
        .locator("[role=row]")
        .evaluate_all(
            "rows => rows.map(r => Array.from(r.querySelectorAll('[role=cell]')).map(c => c.innerText.trim()))"
        )
    )
    return {cells[0]: cells[1] for cells in rows if len(cells) == 2}


def read_datasets(page: Page, keep_open: bool = False) -> list[dict]:
    """What the dataset drawer shows for each dataset of the run: opens the drawer from the
    run page's Datasets box and selects each dataset in turn.

    Returns
    -------
    list of dict
        ``name``, ``digest``, ``context`` (the tag shown next to the name), ``profile``
        (``{label: value}`` lines such as ``num rows``), ``source_type`` (``HTTP``, ``S3``,
        ``Local``, ``Hugging Face`` or ``None``), ``source`` (the URL, S3 URI or path shown,
        or ``None``) and ``href`` (the source link's target as written, or ``None``).
        With ``keep_open``, the drawer stays open on the last dataset (for a screenshot).
    """
    box = _section(page, "Datasets")
    if not box.count() or box.get_by_text("No datasets").count():
        return []
    box.locator("[role=button], a, span").filter(has_text=" (").first.click()
    drawer = page.get_by_role("dialog")
    # The drawer lists the datasets on its left ("name (digest)"), the selected one's details
    # on its right under an <h3> holding its name.
    items = drawer.locator("[role=button][aria-label$=')']")
    items.first.wait_for()
    labels = items.evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    found = []
    for i, label in enumerate(labels):
        name, _, digest = label[:-1].rpartition(" (")
        items.nth(i).click()
        drawer.locator("h3").filter(has_text=name).wait_for()
        found.append({"name": name, "digest": digest, **drawer.evaluate(_READ_DRAWER_JS)})
    if not keep_open:
        page.keyboard.press("Escape")
        drawer.wait_for(state="detached")
    return found


# The right-hand side of the dataset drawer: the context tag in the header, the profile lines
# ("num rows: <strong>1680</strong>"), "Source type: X" and "URL: <a>" / "Path: p" / "S3 URI: u".
_READ_DRAWER_JS = r"""drawer => {
  const text = el => (el ? el.innerText.trim() : null);
  const header = drawer.querySelector('h3').closest('h2');
  const lines = Array.from(drawer.querySelectorAll('span, div')).filter(el => el.children.length <= 2);
  const hint = key => {
    const el = lines.find(h => (text(h) || '').startsWith(key + ':'));
    return el ? text(el).slice(key.length + 1).trim() : null;
  };
  const profile = {};
  for (const el of drawer.querySelectorAll('span')) {
    const strong = el.querySelector(':scope > strong');
    if (strong && el.children.length === 1) {
      const label = el.innerText.slice(0, el.innerText.length - strong.innerText.length);
      profile[label.replace(/:\s*$/, '').trim()] = strong.innerText.trim();
    }
  }
  const link = drawer.querySelector('a[target=_blank][href]');
  return {
    context: text(header.querySelector('[data-component-type=tag]')),
    profile: profile,
    source_type: hint('Source type'),
    source: hint('URL') || hint('Path') || hint('S3 URI'),
    href: link ? link.getAttribute('href') : null,
  };
}"""


def open_runs_table(page: Page, ui: UIServer, experiment_id: str, search_filter: str | None = None) -> None:
    """Open the experiment's runs table in the Model training view.

    Parameters
    ----------
    page : playwright.sync_api.Page
    ui : UIServer
    experiment_id : str
    search_filter : str, optional
        What a user would type in the search box, e.g. ``attributes.run_id IN ('a', 'b')``.
    """
    query = {"workflowType": "machine_learning"}
    if search_filter:
        query["searchFilter"] = search_filter
    page.goto(f"{ui.experiment_url(experiment_id)}?{urllib.parse.urlencode(query)}")


_NAME_CELL = "[role=gridcell][col-id='attributes.`Run Name`']"


def read_runs_table(page: Page) -> list[RunRow]:
    """The runs table on ``page`` with every parent expanded, as :class:`RunRow` in display
    order (children follow their parent with ``level`` 1)."""
    name_cells = page.locator(_NAME_CELL)
    name_cells.first.wait_for()
    # Parents start collapsed; the (+) / (-) button in a parent's name cell toggles its
    # children. Click each once, and again if that collapsed it (fewer rows than before).
    toggles = name_cells.locator("button[data-component-id$='runnamecellrenderer.tsx_46']")
    for i in range(toggles.count()):
        for _ in range(2):
            before = name_cells.count()
            toggles.nth(i).click()
            page.wait_for_function(
                "([sel, n]) => document.querySelectorAll(sel).length !== n", arg=[_NAME_CELL, before]
            )
            if name_cells.count() > before:
                break
    # A child's name is indented further than its parent's (a spacer of 24 px per level).
    rows = name_cells.evaluate_all("""cells => cells.map(c => {
        const a = c.querySelector("a[href*='/runs/']");
        const pad = c.querySelector("div[style*=width]");
        return [Number(c.closest('[row-index]').getAttribute('row-index')), a.innerText.trim(),
                a.getAttribute('href').split('/runs/')[1], pad ? parseInt(pad.style.width) : 0];
    })""")
    rows.sort()
    top = min((indent for *_, indent in rows), default=0)
    return [RunRow(name=name, run_id=run_id, level=0 if indent <= top else 1) for _, name, run_id, indent in rows]


def read_artifact_preview(page: Page) -> dict:
    """The file selected in a run's Artifacts tab: its path and, for a CSV, the preview table.

    Returns
    -------
    dict
        ``path`` (shown above the preview), ``columns`` and ``rows`` (cell texts as displayed;
        both empty when the file is not shown as a table), ``iframe`` (True when the file is
        rendered in an iframe, as HTML artifacts are).
    """
    right = page.locator(".mlflow-artifact-right")
    title = right.locator("span[title]").first
    nothing = right.get_by_text("Select a file to preview")
    title.or_(nothing).first.wait_for()
    if not title.count():
        # The tab may show its placeholder a moment before the linked file gets selected.
        try:
            title.wait_for(timeout=3000)
        except PlaywrightTimeout:
            raise AssertionError(f"{page.url}: no artifact selected (the path names no file)") from None
    right.get_by_text("Previewing").or_(right.locator("iframe")).first.wait_for()
    columns = right.locator("thead .du-bois-light-table-column-title").all_inner_texts()
    rows = right.locator("tbody tr[data-row-key], tbody tr.du-bois-light-table-row").evaluate_all(
        "rows => rows.map(r => Array.from(r.querySelectorAll('td')).map(c => c.innerText.trim()))"
    )
    return {
        "path": title.get_attribute("title"),
        "columns": columns,
        "rows": rows,
        "iframe": right.locator("iframe").count() > 0,
    }


def click_to_new_tab(page: Page, link):
    """Click ``link`` (a locator) that opens a new tab, as every description link does, and
    return that tab once its page has loaded."""
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.wait_for_load_state()
    return tab
