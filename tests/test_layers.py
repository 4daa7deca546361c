"""The file tree is the map: every module imports only from its own package or the layers
below it (docs/architecture.md), so a reader finds a behaviour by guessing the file name and
no change can quietly tie a lower layer to a higher one."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'tftransfer'
# Bottom to top. Packages in one layer may not import each other, but the modules of the
# bottom layer and the entry points of the top one may (each layer is one unit there).
LAYERS = (
    {'errors', 'files', 'tf_noise', 'config', 'runtime', 'clock', 'workdir', 'locking', 'plan',
     'multilabel', 'passes'},
    {'data', 'model'},
    {'restore'},
    {'training', 'auditing'},
    {'serving'},
    {'evaluation'},
    {'cli', 'api', '__main__', 'train', 'export', 'predict', 'evaluate', 'make_tfrecords', 'audit',
     'report', 'explain', 'inspect'},
)


def _unit(module: str) -> str:
  """'training' for tftransfer.training.loop, 'config' for tftransfer.config."""
  return module.split('.')[1] if module.count('.') else '__init__'


def _layer(unit: str) -> int:
  return next(index for index, units in enumerate(LAYERS) if unit in units)


def _imports(path: pathlib.Path) -> set[str]:
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
        'tftransfer'):
      found |= ({f'{node.module}.{alias.name}' for alias in node.names}
                if node.module == 'tftransfer' else {node.module})
    elif isinstance(node, ast.Import):
      found |= {alias.name for alias in node.names if alias.name.startswith('tftransfer.')}
  return found


def test_every_module_imports_only_its_package_and_lower_layers():
  wrong = []
  for path in sorted(PACKAGE.rglob('*.py')):
    relative = path.relative_to(PACKAGE.parent).with_suffix('')
    own = _unit('.'.join(relative.parts))
    if own == '__init__':
      continue
    for module in _imports(path):
      other = _unit(module)
      if other in (own, '__init__', '__version__'):
        continue
      shared = _layer(other) == _layer(own) in (0, len(LAYERS) - 1)
      if _layer(other) >= _layer(own) and not shared:
        wrong.append(f'{relative} imports {module}')
  assert not wrong, '\n'.join(wrong)


def test_every_unit_has_a_layer():
  units = {path.stem if path.parent == PACKAGE else path.relative_to(PACKAGE).parts[0]
           for path in PACKAGE.rglob('*.py')} - {'__init__'}
  placed = set().union(*LAYERS)
  assert units <= placed, units - placed
