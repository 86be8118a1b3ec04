"""The docs cannot rot: Sphinx builds them without a warning, and every Python block runs.

Each page is one small project. A block whose first line names a file (``# chat/consumers.py``)
is that module's source: every block of a module runs into the same module, modules run in the
order they first appear, so a module is complete before another imports it, as on disk. The
other blocks are a session run afterwards against that project: top-level ``await`` works,
and each ``test_*`` function a block defines is run with the fixtures it names.
"""

import ast
import inspect
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from django.test import RequestFactory
from hypergen.context import context

import hypergen_consumers
import hypergen_consumers.testing
from hypergen_consumers.testing import ConsumerClients

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.rst"))
CODE_BLOCK = re.compile(r"^\.\. code-block:: *(\S+)\n(?:[ \t]+:.*\n)*((?:[ \t]*\n|[ \t]+.*\n)+)", re.M)
BARE_LITERAL_BLOCK = re.compile(r"^(?!\.\.).*\S::\n\n[ \t]+\S", re.M)
FILE_NAME = re.compile(r"#\s*([\w/]+)\.py\s*$")
LANGUAGES_NOT_RUN = {"console", "css", "javascript", "nginx", "text", "json"}


def code_blocks(page):
    """(language, source, line number) for every code-block of a page."""
    text = page.read_text()
    return [
        (match[1], textwrap.dedent(match[2]).strip() + "\n", text.count("\n", 0, match.start()) + 1)
        for match in CODE_BLOCK.finditer(text)
    ]


class DocsProject:
    """The modules and the session namespace one page's blocks run in."""

    def __init__(self, page):
        self.page = page
        self.modules = {}
        self.session = {"__name__": f"docs_{page.stem}"}
        self.clients = ConsumerClients()

    def module(self, dotted):
        parent = None
        for depth, part in enumerate(dotted.split(".")):
            name = ".".join(dotted.split(".")[: depth + 1])
            if name not in self.modules:
                assert name not in sys.modules, f"{self.page.name}: module {name} would shadow a real one"
                module = types.ModuleType(name)
                module.__path__ = []  # A package, so that submodules import.
                self.modules[name] = sys.modules[name] = module
                if parent is not None:
                    setattr(parent, part, module)
            parent = self.modules[name]
        return parent

    async def run(self, source, line, namespace):
        code = compile(source, f"{self.page.name}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        before = set(namespace)
        result = eval(code, namespace)
        if inspect.iscoroutine(result):
            await result
        for name in sorted(set(namespace) - before):
            if name.startswith("test_") and inspect.iscoroutinefunction(namespace[name]):
                fixtures = {"consumer_client": self.clients}
                test = namespace[name]
                await test(**{parameter: fixtures[parameter] for parameter in inspect.signature(test).parameters})

    async def run_page(self):
        modules, session = {}, []
        for language, source, line in code_blocks(self.page):
            if language != "python":
                assert language in LANGUAGES_NOT_RUN, f"{self.page.name}:{line}: unknown language {language!r}"
                continue
            file_name = FILE_NAME.match(source.splitlines()[0])
            if file_name:
                modules.setdefault(file_name[1].replace("/", "."), []).append((source, line))
            else:
                session.append((source, line))
        for dotted, blocks in modules.items():
            namespace = self.module(dotted).__dict__
            for source, line in blocks:
                await self.run(source, line, namespace)
        for source, line in session:
            await self.run(source, line, self.session)
        return len(session) + sum(map(len, modules.values()))

    def forget(self):
        for name in self.modules:
            sys.modules.pop(name, None)


def test_every_page_labels_its_code_blocks_so_none_escapes_the_runner():
    for page in PAGES:
        bare = BARE_LITERAL_BLOCK.findall(page.read_text())
        assert not bare, f"{page.name}: use '.. code-block:: <language>' instead of '::' in {bare}"


@pytest.mark.parametrize(
    "page", [page for page in PAGES if any(b[0] == "python" for b in code_blocks(page))], ids=lambda page: page.name
)
async def test_every_python_block_of_the_page_runs(page):
    project = DocsProject(page)
    try:
        with context(request=RequestFactory().get("/")):
            ran = await project.run_page()
        assert ran == sum(1 for block in code_blocks(page) if block[0] == "python")
    finally:
        await project.clients.close()
        project.forget()


def test_the_docs_build_with_sphinx_without_a_warning(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    api = (tmp_path / "api.html").read_text()
    for name in hypergen_consumers.__all__:
        documented = {f'id="hypergen_consumers.{name}"', f'id="hypergen_consumers.errors.{name}"'}
        assert any(anchor in api for anchor in documented) or f"{name}</span></code> is hypergen" in api, name
    for name in hypergen_consumers.testing.__all__:
        assert f'id="hypergen_consumers.testing.{name}"' in api, name
