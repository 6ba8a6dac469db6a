"""A figure as the files a run logs: an HTML page that opens offline, and a PNG for a quick look.

The page carries plotly.js, since the MLflow UI may run without internet: gzipped and
base64-encoded (about 2.0 MB instead of 4.8 MB), unpacked by the browser's
``DecompressionStream`` (Chromium 80, Firefox 113, Safari 16.4 and later). A browser without it
shows a line saying so instead of the figure.

The PNG is drawn by plotly's ``kaleido``, which drives a Chromium (it looks for ``chromium``,
``google-chrome`` ... on ``PATH``; ``BROWSER_PATH`` names another), in a child process with a
time limit: a Chromium that hangs or is missing costs a stage at most :data:`PNG_TIMEOUT`
seconds and a warning, never the run. ``FOODCAST_PLOT_PNG=0`` skips the PNGs.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import html
import os
import re
import signal
import subprocess
import sys
from typing import Any

from plotly.offline import get_plotlyjs

PNG_SWITCH = "FOODCAST_PLOT_PNG"
PNG_TIMEOUT = 90.0  # seconds: a cold Chromium on a busy machine takes 5-10
PNG_SIZE = (1200, 550)  # CSS pixels, drawn at twice the density

# What the child process runs: plotly and kaleido only, so that it works wherever the figure
# was made (a stage under `mlflow run`, the tutorial's notebook).
_PNG_SCRIPT = """
import sys
import plotly.io as pio
fig = pio.read_json(sys.argv[1])
fig.write_image(sys.argv[2], format="png", width=int(sys.argv[3]), height=int(sys.argv[4]), scale=2)
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>html, body {{ margin: 0; height: 100%; }} #figure {{ width: 100%; height: 100%; min-height: 420px; }}</style>
</head>
<body>
<div id="figure">Drawing the figure…</div>
<script id="plotly-js" type="application/octet-stream" data-encoding="gzip+base64">{plotly_js}</script>
<script id="figure-json" type="application/json">{figure}</script>
<script>
(async () => {{
  const target = document.getElementById("figure");
  try {{
    if (typeof DecompressionStream === "undefined") {{
      throw new Error("this browser has no DecompressionStream (Chromium 80, Firefox 113, Safari 16.4 or later have)");
    }}
    const packed = atob(document.getElementById("plotly-js").textContent.trim());
    const bytes = Uint8Array.from(packed, (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    const script = document.createElement("script");
    script.textContent = await new Response(stream).text();
    document.head.appendChild(script);
    const figure = JSON.parse(document.getElementById("figure-json").textContent);
    target.textContent = "";
    await Plotly.newPlot(target, figure.data, figure.layout, {{ responsive: true, displaylogo: false }});
  }} catch (error) {{
    target.textContent = "The figure cannot be drawn here: " + error.message + ". The PNG beside this file shows it.";
  }}
}})();
</script>
</body>
</html>
"""


@functools.cache
def packed_plotly_js() -> str:
    """plotly.js of the installed plotly, gzipped (byte for byte the same each time) and in base64."""
    return base64.b64encode(gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def offline_html(fig: Any) -> str:
    """A page that draws ``fig`` with no network: plotly.js packed in (:func:`packed_plotly_js`),
    the figure's JSON beside it, the figure's title and subtitle as the page's title."""
    parts = (fig.layout.title.text, fig.layout.title.subtitle.text)
    title = re.sub(r"<[^>]*>", " ", " · ".join(p for p in parts if p)) or "plot"
    # "<" only occurs inside JSON strings, where \\u003c means the same: no "</script>" can end the block.
    figure = fig.to_json().replace("<", "\\u003c")
    return _PAGE.format(title=html.escape(title), plotly_js=packed_plotly_js(), figure=figure)


def png_wanted() -> bool:
    """Whether to draw PNGs: unless ``FOODCAST_PLOT_PNG=0``."""
    return os.environ.get(PNG_SWITCH, "1").strip() != "0"


def write_png(fig: Any, figure_json: str, path: str, timeout: float = PNG_TIMEOUT) -> str | None:
    """Draw ``fig`` to ``path`` with kaleido in a child process; why not, if it could not.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
    figure_json : str
        A file to write the figure's JSON to, for the child.
    path : str
        The PNG to write.
    timeout : float
        Seconds after which the child and its Chromium are killed.

    Returns
    -------
    str or None
        ``None`` once the PNG is written, else the reason in one line.
    """
    with open(figure_json, "w", encoding="utf-8") as f:
        f.write(fig.to_json())
    command = [sys.executable, "-c", _PNG_SCRIPT, figure_json, path, *map(str, PNG_SIZE)]
    # A session of its own: on a timeout (or an interruption of the stage), the child and the
    # Chromium it started are killed together.
    child = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(child)
        return f"kaleido did not finish in {timeout:.0f} s"
    except BaseException:
        _kill_group(child)
        raise
    if child.returncode != 0 or not os.path.isfile(path):
        lines = output.decode("utf-8", "replace").strip().splitlines()
        return f"kaleido failed ({lines[-1] if lines else f'exit status {child.returncode}'})"
    return None


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """Kill the session of ``child`` (the child and its Chromium) and reap the child; a child
    already reaped is left alone, its number being free for another process."""
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
    child.communicate()
