"""Imports go one way: the model modules use ``support/``, never the reverse (STYLE.md)."""
import ast

from conftest import REPO

SUPPORT = REPO / 'code' / 'support'
# The original's utils.py: numpy-only helpers that import nothing of the package.
LEAVES = {'dltutorials.utils'}


def imported_modules(path):
    """The dltutorials modules ``path`` imports, at the top or inside functions."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from dltutorials.support import runs" imports the module ...support.runs.
            submodules = {'%s.%s' % (node.module, alias.name) for alias in node.names}
            found = {name for name in submodules
                     if (REPO / 'code' / ('/'.join(name.split('.')[1:]) + '.py')).exists()}
            modules.update(found or {node.module})
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return {module for module in modules if module.startswith('dltutorials')}


def test_the_support_package_imports_no_model_module():
    reverse = {path.name: sorted(module for module in imported_modules(path)
                                 if not module.startswith('dltutorials.support')
                                 and module not in LEAVES)
               for path in SUPPORT.glob('*.py')}
    assert {name: modules for name, modules in reverse.items() if modules} == {}


def test_checkpoints_use_the_runs_module_and_not_the_reverse():
    assert 'dltutorials.support.runs' in imported_modules(SUPPORT / 'checkpoints.py')
    assert 'dltutorials.support.checkpoints' not in imported_modules(SUPPORT / 'runs.py')


def test_the_utils_module_is_a_leaf():
    assert imported_modules(REPO / 'code' / 'utils.py') == set()
