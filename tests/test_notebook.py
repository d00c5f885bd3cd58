"""examples/notebook.ipynb, executed by nbclient in a real ipykernel against a sim server this test starts."""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# these import IPython, whose jedi raises the recursion limit for the whole process
# (to 3000); the fuzz tests' deep JSON relies on the default: put it back
_LIMIT = sys.getrecursionlimit()
try:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    pytest.importorskip("ipywidgets")
    pytest.importorskip("matplotlib")
finally:
    sys.setrecursionlimit(_LIMIT)


def _outputs(cell, kind):
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append(output.get("text", "") if kind == "text" else "")
        data = output.get("data", {})
        if kind in data:
            value = data[kind]
            texts.append(value if isinstance(value, str) else json.dumps(value))
        elif kind == "text" and "text/plain" in data:
            texts.append(data["text/plain"])
    return "".join(texts)


def _cell(notebook, fragment):
    matches = [c for c in notebook.cells if c.cell_type == "code" and fragment in c.source]
    assert matches, fragment
    return matches[0]


@pytest.mark.timeout(300)
def test_the_notebook_runs_in_a_real_kernel_and_shows_what_its_cells_did(server, monkeypatch):
    monkeypatch.setenv("REMOTEIO_HOST", server.address[0])
    monkeypatch.setenv("REMOTEIO_PORT", str(server.address[1]))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # the kernel imports this checkout's remoteio, whatever is installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}},
                                     store_widget_state=True)
    client.execute()
    table = _outputs(_cell(notebook, "server                                   #"), "text/html")
    assert "<table" in table and "BOARD7 (GPIO4)" in table and "BOARD11 (GPIO17)" in table
    assert "<td>blink</td>" in table and "<td>input</td>" in table
    assert "pressed: True" in _outputs(_cell(notebook, "presses = []"), "text")
    traced = _cell(notebook, "server.recording")
    text = _outputs(traced, "text")
    assert "button edges: ['falling', 'rising', 'falling']" in text
    assert int(re.search(r"led edges: (\d+)", text).group(1)) > 0  # the blink went on meanwhile
    assert _outputs(traced, "image/png")                           # the timing diagram
    widget = _outputs(_cell(notebook, "light = button.widget()"), "application/vnd.jupyter.widget-view+json")
    assert widget and "widget value: True" in _outputs(_cell(notebook, "print(\"widget value"), "text")
    # the state the kernel's widget ended with, as saved in the notebook: the change event set it
    states = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert states[json.loads(widget)["model_id"]]["state"]["value"] is True
    assert "green is lit: True" in _outputs(_cell(notebook, "RemoteIOFactory(host"), "text")
    assert "RemoteIOFactory" in _outputs(_cell(notebook, "RemoteIOFactory(host"), "text/html")
    assert "async read after the timed on: 0" in _outputs(_cell(notebook, "AsyncRemoteServer(host"), "text")
    assert "BOARD13 (GPIO27)" in _outputs(_cell(notebook, "server.info()"), "text/html")
